"""``pipeplan plan`` and ``pipeplan demo``: solve for the optimal plan, print it and its frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from planner.resource_class import ResourceClass
from planner.cli.common import (app, check_json_with_stdout, count_option, console, finite_or_none, positive, print_json,
                                read_trace_arg, seed_option, summary_console, trace_format_option)
from planner.errors import TraceError
from planner.ilp.backends import SolverName
from planner.plan import Plan, SolveStatus, plan_to_json
from planner.traces import TraceFormat
from profiler.schema import ProfileTable

# = planner.verify.DEFAULT_MAX_SIMULATIONS, repeated: the CLI imports planner.verify lazily (a test holds them equal).
VERIFY_SIMS = 200


def _ms(value: float) -> str:
    """Milliseconds with about three significant digits, never in scientific notation."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


# Key columns stay in the main table at any width; below _WIDE_COLUMNS the secondary ones move to
# a second table under it. No column is ever cut to an ellipsis: long names fold onto a new line.
_WIDE_COLUMNS = 130
_KEY = ("stage", "variant", "hardware", "batch", "replicas", "p99 (ms)", "USD/h")
_SECONDARY = ("timeout (ms)", "util", "= fill + wait + service (ms)", "accuracy")
_LEFT = ("stage", "variant", "hardware")
# How the summary line names each objective's unit (SolverReport.objective_unit).
UNIT_LABEL = {"usd_per_hour": "USD/h", "accuracy": "accuracy", "weighted_score": "weighted score"}


def _cells(s) -> dict[str, str]:
    return {
        "stage": s.stage, "variant": s.variant, "hardware": s.hardware, "batch": str(s.batch_size),
        "timeout (ms)": _ms(s.batch_timeout_ms), "replicas": str(s.replicas), "util": f"{s.utilization:.2f}",
        "p99 (ms)": _ms(s.predicted_latency_ms),
        "= fill + wait + service (ms)": f"{_ms(s.latency_fill_ms)} + {_ms(s.latency_wait_ms)} + {_ms(s.latency_service_ms)}",
        "accuracy": f"{s.accuracy:.4f}", "USD/h": f"{s.usd_per_hour:.3f}",
    }


def _table(title: str | None, headers: tuple[str, ...], rows: list[dict[str, str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header in _LEFT else "right", overflow="fold",
                         no_wrap=header not in _LEFT)
    for row in rows:
        table.add_row(*(row[h] for h in headers))
    return table


def plan_tables(plan: Plan, width: int) -> list[Table]:
    """The plan as one table (wide terminals) or a key table plus a latency-breakdown table below it."""
    rows = [_cells(s) for s in plan.stages]
    title = f"Plan for '{plan.pipeline}'"
    if width >= _WIDE_COLUMNS:
        order = ("stage", "variant", "hardware", "batch", "timeout (ms)", "replicas", "util", "p99 (ms)",
                 "= fill + wait + service (ms)", "accuracy", "USD/h")
        return [_table(title, order, rows)]
    return [_table(title, _KEY, rows), _table(None, ("stage",) + _SECONDARY, rows)]


def plan_table(plan: Plan) -> Table:
    """The one-table form (kept for callers that render at their own width)."""
    return plan_tables(plan, _WIDE_COLUMNS)[0]


def objective_text(plan: Plan) -> str:
    """``objective min_cost = 0.425 USD/h``: the objective the solver optimised, in its own unit."""
    kind = plan.objective.get("kind", "objective")
    unit = UNIT_LABEL.get(plan.solver.objective_unit, plan.solver.objective_unit)
    return f"objective {kind} = {plan.solver.objective_value:.6g} {unit}"


def summary_line(plan: Plan, solve_time_ms: float | None) -> str:
    status = plan.solver.status
    if status is SolveStatus.OPTIMAL:
        proven = "proven optimal"
    elif status is SolveStatus.LOCAL_SEARCH:
        done = plan.provenance.get("local_search", {})
        proven = (f"[bold yellow]NOT proven optimal[/] (improved after the ILP by a local search under the simulator, "
                  f"{done.get('simulations', '?')} simulations)")
    else:
        gap = "unknown" if plan.solver.gap is None else f"{plan.solver.gap:.3g}"
        proven = f"[bold yellow]NOT proven optimal[/] ({status.value}, gap {gap})"
    timing = f" in {solve_time_ms:.1f} ms" if solve_time_ms is not None else ""
    planned = plan.provenance.get("planned_slo_ms")
    bound = (f"(SLO {plan.slo_ms:g} ms checked by the simulator, not the model: see the verification)"
             if status is SolveStatus.LOCAL_SEARCH else f"<= SLO {plan.slo_ms:g} ms" if planned is None else
             f"<= model SLO {planned:.4g} ms (SLO {plan.slo_ms:g} ms: see the verification)")
    return (f"{objective_text(plan)}, {proven} by {plan.solver.name}{timing} | cost {plan.cost_usd_per_hour:.4f} USD/h "
            f"| accuracy {plan.accuracy:.4f} ({plan.accuracy_aggregation}) | predicted p99 "
            f"{plan.predicted_p99_ms:.2f} ms {bound} at {plan.arrival_rps:g} rps")


def _rate(value: float) -> str:
    """A small expected count or share as a person reads it: 3 significant digits, '< 1e-06' below that
    (the formulas give values like 1e-252, which are 0 for any purpose)."""
    return "0" if value == 0 else "< 1e-06" if abs(value) < 1e-6 else f"{value:.3g}"


def risk_line(risk) -> str:
    """One line: the plan's expected attainment under its spot/serverless stages (a planner.plan.PlanRisk)."""

    parts = [f"{r.stage} {r.resource_class.value} x{r.replicas}: "
             + (f"{_rate(r.preemptions_per_hour)} preemptions/h, degraded {_rate(100 * r.degraded_share)}% of the time"
                if r.resource_class is ResourceClass.SPOT else
                f"{_rate(r.cold_starts_per_hour)} cold starts/h ({_rate(100 * r.cold_share)}% of batches)")
             + f", {_rate(100 * r.miss_share)}% of requests late, billed ~{r.billed_usd_per_hour:.4f} USD/h"
             for r in risk.stages]
    return (f"risk: expected {100 * risk.expected_slo_attainment:.2f}% within the SLO (x{risk.attainment_factor:.4f} "
            f"of the planned 99%) | " + "; ".join(parts))


def print_plan(plan: Plan, solve_time_ms: float | None, profiles: ProfileTable | None = None,
               to: Console | None = None) -> None:
    to = to or console
    for table in plan_tables(plan, to.width):
        to.print(table)
    to.print(summary_line(plan, solve_time_ms), highlight=False)
    if plan.risk is not None:
        to.print(risk_line(plan.risk), highlight=False)
    if profiles is not None:
        from planner.advice import collapsed_accuracy, unstable_choices

        for note in collapsed_accuracy(plan, profiles):
            to.print(f"[bold yellow]warning:[/] {note}", highlight=False)
        for note in unstable_choices(plan, profiles):
            to.print(f"[yellow]note:[/] {note}", highlight=False)


def plan_summary(plan: Plan, files: dict[str, str], frontier_points: int | None = None,
                 warnings: list[str] | None = None, verification=None) -> dict:
    """The --json summary of ``pipeplan plan`` (``verification``: a planner.verifyreport.VerifyReport)."""
    checked = None if verification is None else {
        "verified": verification.verified, "plan_sha256": verification.plan_sha256,
        "simulated_p99_ms": finite_or_none(verification.simulated_p99_ms),
        "simulated_p99_band_ms": [finite_or_none(v) for v in verification.simulated_p99_band_ms],
        "simulations": verification.simulations, "rounds": len(verification.rounds),
        "local_search_simulations": verification.local_search_simulations,
        "local_search_moves": len(verification.local_search_moves),
        "model_only_cost_usd_per_hour": verification.model_only_cost_usd_per_hour,
        "cost_saved_usd_per_hour": verification.cost_saved_usd_per_hour,
        "trace": verification.trace, "trace_generated": verification.trace_generated}
    return {
        "pipeline": plan.pipeline,
        "objective": {"kind": plan.objective.get("kind"), "value": finite_or_none(plan.solver.objective_value),
                      "unit": plan.solver.objective_unit},
        "status": plan.solver.status.value, "solver": plan.solver.name, "gap": plan.solver.gap,
        "cost_usd_per_hour": plan.cost_usd_per_hour, "accuracy": plan.accuracy,
        "predicted_p99_ms": plan.predicted_p99_ms, "slo_ms": plan.slo_ms, "arrival_rps": plan.arrival_rps,
        "stages": [{"stage": s.stage, "variant": s.variant, "hardware": s.hardware, "batch_size": s.batch_size,
                    "batch_timeout_ms": s.batch_timeout_ms, "replicas": s.replicas,
                    "predicted_latency_ms": s.predicted_latency_ms, "usd_per_hour": s.usd_per_hour}
                   for s in plan.stages],
        "frontier_points": frontier_points, "files": files, "warnings": list(warnings or ()),
        "verification": checked,
        **({} if plan.risk is None else {"risk": {
            "expected_slo_attainment": plan.risk.expected_slo_attainment,
            "attainment_factor": plan.risk.attainment_factor,
            "stages": [{"stage": r.stage, "resource_class": r.resource_class.value,
                        "preemptions_per_hour": r.preemptions_per_hour, "cold_starts_per_hour": r.cold_starts_per_hour,
                        "miss_share": r.miss_share} for r in plan.risk.stages]}}),
    }


def frontier_table(points: list[Plan]) -> Table:
    table = Table(title="Cost-accuracy frontier (each point an optimal plan)", title_justify="left")
    for header in ("point", "accuracy", "USD/h", "predicted p99 (ms)", "configuration"):
        table.add_column(header, justify="left" if header == "configuration" else "right")
    for i, p in enumerate(points):
        table.add_row(str(i), f"{p.accuracy:.4f}", f"{p.cost_usd_per_hour:.3f}", _ms(p.predicted_p99_ms),
                      ", ".join(f"{s.stage}={s.variant}@{s.hardware} b{s.batch_size} x{s.replicas}" for s in p.stages))
    return table


PARETO_HEADER = ["point", "accuracy", "cost_usd_per_hour", "predicted_p99_ms", "slo_ms", "arrival_rps",
                 "solver_status", "configuration"]


def pareto_rows(points: list[Plan]) -> list[list]:
    return [
        [i, p.accuracy, p.cost_usd_per_hour, p.predicted_p99_ms, p.slo_ms, p.arrival_rps, p.solver.status.value,
         "; ".join(f"{s.stage}={s.variant}@{s.hardware} b{s.batch_size} x{s.replicas}" for s in p.stages)]
        for i, p in enumerate(points)
    ]


@app.command()
def plan(
    spec: Path = typer.Argument(..., help="Pipeline spec (YAML)."),
    profiles: Optional[Path] = typer.Option(None, help="Profile table (CSV or Parquet); default: the spec's."),
    hardware: Optional[Path] = typer.Option(None, help="Hardware catalog (YAML); default: the spec's."),
    out: Optional[Path] = typer.Option(None, help="Write the plan here (JSON; '-' for standard output)."),
    solver: SolverName = typer.Option(SolverName.CBC, help="MILP solver."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", callback=positive,
                                               help="Seconds per solve; returns the best plan found, marked."),
    pareto: Optional[Path] = typer.Option(None, help="Also write the cost-accuracy frontier (CSV), each point an optimal plan."),
    lp: Optional[Path] = typer.Option(None, "--lp", help="Also write the program (LP format, readable constraint names)."),
    record_timing: bool = typer.Option(False, "--record-timing", help="Store solve time in the plan (the file then differs run to run)."),
    verify: Optional[Path] = typer.Option(None, "--verify", help="A trace: search for the cheapest plan whose "
                                          "simulated p99 on it meets the SLO (loosening or tightening the model's)."),
    verify_generated: bool = typer.Option(False, "--verify-generated", help="Verify as --verify does, on a trace "
                                          "generated at the spec's arrival_rps and arrival_cv (45,900 requests, "
                                          ">= 60 s)."),
    verify_out: Optional[Path] = typer.Option(None, "--verify-out", help="Write the verification report here "
                                              "(JSON; default: beside --out as NAME.verify.json)."),
    verify_rounds: int = count_option(16, "--verify-rounds", 1000,
                                      "At most this many plans solved by the verification search (ILP rounds)."),
    verify_sims: int = count_option(VERIFY_SIMS, "--verify-sims", 100_000,
                                    "At most this many distinct configurations simulated by the verification "
                                    "search in all (ILP rounds and the local search after them)."),
    verify_seed: int = seed_option("Seed of the verification simulation (and of generated or per-second count "
                                   "traces)."),
    trace_format: TraceFormat = trace_format_option("Format of the --verify trace."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of the tables."),
) -> None:
    """Find the optimal configuration for SPEC and print it."""
    from planner import io
    from planner.ilp.backends import write_lp
    from planner.optimize import frontier, make_plan, primary_program

    check_json_with_stdout(as_json, out, pareto, lp, verify_out)
    if verify and verify_generated:
        raise typer.BadParameter("give either --verify TRACE or --verify-generated, not both.")
    verifying = bool(verify or verify_generated)
    if verify_out is not None and not verifying:
        raise typer.BadParameter("--verify-out needs --verify TRACE or --verify-generated.")
    if verifying and verify_out is None and out is not None and str(out) != "-":
        verify_out = out.parent / f"{out.stem}.verify.json"
    report = None
    with io.outputs({"--out": out, "--pareto": pareto, "--lp": lp, "--verify-out": verify_out}) as files:
        request = io.load_request(spec, profiles, hardware, solver, time_limit, record_timing)
        if lp:
            program = primary_program(request)
            files.write(lp, lambda tmp: write_lp(program, tmp))
        if verifying:
            from planner.verify import generated_trace, verify_plan

            if verify:
                trace = read_trace_arg(verify, trace_format, verify_seed)
                if trace.requests == 0:
                    raise TraceError(f"{verify}: the trace has no requests; verification needs arrivals.")
            else:
                trace = generated_trace(request.spec, verify_seed)
            result, report = verify_plan(request, trace, seed=verify_seed, max_rounds=verify_rounds,
                                         trace_generated=not verify, max_simulations=verify_sims)
        else:
            result = make_plan(request)
        points = frontier(request) if pareto else None
        if out:
            files.write_text(out, plan_to_json(result))
        if pareto:
            files.write_text(pareto, io.csv_text(PARETO_HEADER, pareto_rows(points)))
        if verify_out:
            from planner.verifyreport import report_to_json

            files.write_text(verify_out, report_to_json(report))
    written = {k: str(v) for k, v in (("plan", out), ("pareto", pareto), ("lp", lp), ("verification", verify_out))
               if v is not None}
    if as_json:
        from planner.advice import collapsed_accuracy

        print_json(plan_summary(result, written, len(points) if points is not None else None,
                                collapsed_accuracy(result, request.profiles), report))
        return
    to = summary_console(files.to_stdout)
    print_plan(result, result.solver.solve_time_ms, request.profiles, to)
    if report is not None:
        print_verification(report, to)
    if out and str(out) != "-":
        to.print(f"plan written to {out}", highlight=False)
    if verify_out and str(verify_out) != "-":
        to.print(f"verification report written to {verify_out}", highlight=False)
    if lp:
        to.print(f"program written to {lp}", highlight=False)
    if pareto:
        to.print(frontier_table(points))
        to.print(f"frontier of {len(points)} optimal points written to {pareto}", highlight=False)


def print_verification(report, to: Console | None = None) -> None:
    """Print a planner.verify.VerifyReport: every plan tried, predicted next to simulated p99, and what
    the search saved against the model-only plan."""
    to = to or console
    kind = "generated" if report.trace_generated else "trace"
    table = Table(title=f"Verification on {kind} '{report.trace}' ({report.trace_requests} requests, "
                        f"{report.trace_mean_rps:.2f} rps mean; spec plans for {report.spec_arrival_rps:g} rps)",
                  title_justify="left")
    for header in ("round", "knob", "model SLO (ms)", "max util", "USD/h", "predicted p99 (ms)",
                   "simulated p99 (ms)", "within SLO", "verified", "configuration"):
        table.add_column(header, justify="left" if header in ("knob", "configuration") else "right",
                         no_wrap=header != "configuration", overflow="fold")
    for r in report.rounds:
        budget = "-" if r.move else f"{r.latency_budget_ms:.1f}"  # a local move has no model SLO
        shown = r.configuration if r.simulated else "(as an earlier round)"
        table.add_row(str(r.round), r.knob.value, budget, f"{r.max_utilization:.3f}",
                      f"{r.cost_usd_per_hour:.3f}", f"{r.predicted_p99_ms:.1f}", f"{r.simulated_p99_ms:.1f}",
                      f"{100 * r.slo_attainment:.2f}%", "yes" if r.verified else "no",
                      f"{r.move} => {shown}" if r.move else shown)
    to.print(table)
    saved = report.cost_saved_usd_per_hour
    change = (f"saves {saved:.4g} USD/h ({100 * saved / report.model_only_cost_usd_per_hour:.1f}%)" if saved > 0 else
              f"costs {-saved:.4g} USD/h more" if saved < 0 else "costs the same")
    model_only = "met" if report.model_only_verified else "missed"
    to.print(f"verified: simulated p99 {report.simulated_p99_ms:.2f} ms <= SLO {report.slo_ms:g} ms (predicted "
             f"{report.predicted_p99_ms:.2f} ms; seed {report.seed}); {len(report.rounds)} plans, "
             f"{report.simulations} simulations of at most {report.max_simulations} ({report.local_search_simulations} "
             f"by the local search, {len(report.local_search_moves)} move(s) accepted); against the model-only plan "
             f"({report.model_only_cost_usd_per_hour:.4g} "
             f"USD/h, simulated p99 {report.model_only_simulated_p99_ms:.2f} ms: {model_only} the SLO) this plan "
             f"{change}", highlight=False)
    to.print(f"{report.estimate_note}; {report.p99_sample_note}", highlight=False)


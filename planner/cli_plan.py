"""``pipeplan plan`` and ``pipeplan demo``: solve for the optimal plan, print it and its frontier."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from planner.cli_common import _fail, _load_request, _read_trace_arg, app, console
from planner.errors import PipeplanError
from planner.ilp.backends import SolverName
from planner.plan import Plan
from profiler.schema import ProfileTable


def _ms(value: float) -> str:
    """Milliseconds with about three significant digits, never in scientific notation."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"Plan for '{plan.pipeline}'", title_justify="left")
    for header in ("stage", "variant", "hardware", "batch", "timeout (ms)", "replicas", "util",
                   "p99 (ms)", "= fill + wait + service (ms)", "accuracy", "USD/h"):
        table.add_column(header, justify="right" if header not in ("stage", "variant", "hardware") else "left",
                         no_wrap=True)
    for s in plan.stages:
        table.add_row(
            s.stage, s.variant, s.hardware, str(s.batch_size), _ms(s.batch_timeout_ms),
            str(s.replicas), f"{s.utilization:.2f}", _ms(s.predicted_latency_ms),
            f"{_ms(s.latency_fill_ms)} + {_ms(s.latency_wait_ms)} + {_ms(s.latency_service_ms)}",
            f"{s.accuracy:.4f}", f"{s.usd_per_hour:.3f}",
        )
    return table


def print_plan(plan: Plan, solve_time_ms: float | None, profiles: ProfileTable | None = None) -> None:
    console.print(plan_table(plan))
    status = plan.solver.status
    proven = "proven optimal" if status == "optimal" else f"[bold yellow]NOT proven optimal[/] (time limit, gap {plan.solver.gap})"
    timing = f" in {solve_time_ms:.1f} ms" if solve_time_ms is not None else ""
    console.print(
        f"cost {plan.cost_usd_per_hour:.4f} USD/h | accuracy {plan.accuracy:.4f} ({plan.accuracy_aggregation}) | "
        f"predicted p99 {plan.predicted_p99_ms:.2f} ms <= SLO {plan.slo_ms:g} ms at {plan.arrival_rps:g} rps | "
        f"{plan.solver.name}: {proven}{timing}",
        highlight=False,
    )
    if profiles is not None:
        from planner.check import unstable_choices

        for note in unstable_choices(plan, profiles):
            console.print(f"[yellow]note:[/] {note}", highlight=False)


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
        [i, p.accuracy, p.cost_usd_per_hour, p.predicted_p99_ms, p.slo_ms, p.arrival_rps, p.solver.status,
         "; ".join(f"{s.stage}={s.variant}@{s.hardware} b{s.batch_size} x{s.replicas}" for s in p.stages)]
        for i, p in enumerate(points)
    ]


@app.command()
def plan(
    spec: Path = typer.Argument(..., help="Pipeline spec (YAML)."),
    profiles: Optional[Path] = typer.Option(None, help="Profile table (CSV or Parquet); default: the spec's."),
    hardware: Optional[Path] = typer.Option(None, help="Hardware catalog (YAML); default: the spec's."),
    out: Optional[Path] = typer.Option(None, help="Write the plan here (JSON)."),
    solver: SolverName = typer.Option(SolverName.CBC, help="MILP solver."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds per solve; returns the best plan found, marked."),
    pareto: Optional[Path] = typer.Option(None, help="Also write the cost-accuracy frontier (CSV), each point an optimal plan."),
    record_timing: bool = typer.Option(False, "--record-timing", help="Store solve time in the plan (the file then differs run to run)."),
    verify: Optional[Path] = typer.Option(None, "--verify", help="A trace: re-plan until the simulated p99 on it meets the SLO."),
    verify_seed: int = typer.Option(0, "--verify-seed", help="Seed of the verification simulation (and of per-second count traces)."),
) -> None:
    """Find the optimal configuration for SPEC and print it."""
    from planner import io
    from planner.planning import frontier, make_plan

    report = None
    try:
        request = _load_request(spec, profiles, hardware, solver, time_limit, record_timing)
        if verify:
            from planner.traces import TraceFormat
            from planner.verify import verify_plan

            trace = _read_trace_arg(verify, TraceFormat.AUTO, verify_seed)
            result, report = verify_plan(request, trace, seed=verify_seed)
        else:
            result = make_plan(request)
        points = frontier(request) if pareto else None
        if out:
            io.write_plan(result, out)
        if pareto:
            io.write_csv_atomic(pareto, PARETO_HEADER, pareto_rows(points))
    except PipeplanError as exc:
        _fail(exc)
    print_plan(result, result.solver.solve_time_ms, request.profiles)
    if report is not None:
        print_verification(report)
    if out:
        console.print(f"plan written to {out}", highlight=False)
    if pareto:
        console.print(frontier_table(points))
        console.print(f"frontier of {len(points)} optimal points written to {pareto}", highlight=False)


def print_verification(report) -> None:
    """Print a planner.verify.VerifyReport: every plan tried, predicted next to simulated p99."""
    table = Table(title=f"Verification on trace '{report.trace}' ({report.trace_requests} requests, "
                        f"{report.trace_mean_rps:.2f} rps mean; spec plans for {report.spec_arrival_rps:g} rps)",
                  title_justify="left")
    for header in ("round", "tightened", "budget (ms)", "max util", "USD/h", "predicted p99 (ms)",
                   "simulated p99 (ms)", "within SLO", "verified", "configuration"):
        table.add_column(header, justify="left" if header in ("tightened", "configuration") else "right",
                         no_wrap=header != "configuration")
    for r in report.rounds:
        table.add_row(str(r.round), r.knob.value, f"{r.latency_budget_ms:.1f}", f"{r.max_utilization:.3f}",
                      f"{r.cost_usd_per_hour:.3f}", f"{r.predicted_p99_ms:.1f}", f"{r.simulated_p99_ms:.1f}",
                      f"{100 * r.slo_attainment:.2f}%", "yes" if r.verified else "no", r.configuration)
    console.print(table)
    console.print(f"verified: simulated p99 {report.simulated_p99_ms:.2f} ms <= SLO {report.slo_ms:g} ms "
                  f"(predicted {report.predicted_p99_ms:.2f} ms; seed {report.seed}); {report.p99_sample_note}",
                  highlight=False)


def _is_pipeline_spec(path: Path) -> bool:
    """A YAML mapping with stages (catalogs and model manifests sit in configs/ too); unparseable files
    count, so that loading them reports the error."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return True
    return isinstance(data, dict) and "stages" in data


def _example_specs(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.glob("*.yaml")) if _is_pipeline_spec(p)]


def _profiles_label(request) -> str:
    """Says whether a plan rests on measured or synthetic profiles (the table's own 'synthetic' header)."""
    if request.profiles.metadata.get("synthetic", "").lower() == "true":
        return f"[bold yellow]SYNTHETIC profiles, not measured[/] ({request.sources.profiles})"
    return f"measured profiles ({request.sources.profiles})"


@app.command()
def demo(
    configs: Path = typer.Option(Path("configs"), help="Folder with the example specs (the repository's configs/); "
                                 "specs in its synthetic/ sub-folder are planned after them."),
    out: Path = typer.Option(Path("reports/demo"), help="Where to write plans and frontiers (synthetic ones "
                             "under synthetic/)."),
) -> None:
    """Plan the measured examples in CONFIGS, then the synthetic ones in CONFIGS/synthetic; write plan + Pareto
    CSV for each."""
    from planner import io
    from planner.planning import frontier, make_plan

    synthetic = configs / "synthetic"
    groups = [(configs, out, None),
              (synthetic, out / "synthetic",
               f"SYNTHETIC examples: profiles generated from a stated model, not measured (see {synthetic / 'README.md'})")]
    groups = [(target, heading, _example_specs(folder)) for folder, target, heading in groups]
    if not any(specs for *_, specs in groups):
        _fail(PipeplanError(f"{configs}: no pipeline specs found; the examples ship with the repository, not the "
                            "installed package: run from the repository root or pass --configs."))
    for target, heading, specs in groups:
        if specs and heading:
            console.rule(f"[bold yellow]{heading}[/]")
        for spec_path in specs:
            try:
                request = _load_request(spec_path, None, None, SolverName.CBC, None, False)
                result = make_plan(request)
                points = frontier(request)
                io.write_plan(result, target / f"{spec_path.stem}.plan.json")
                io.write_csv_atomic(target / f"{spec_path.stem}.pareto.csv", PARETO_HEADER, pareto_rows(points))
            except PipeplanError as exc:
                _fail(exc)
            console.print(f"[bold]{spec_path}[/]: {_profiles_label(request)}", highlight=False)
            print_plan(result, None, request.profiles)
            console.print(frontier_table(points))
            console.print(f"-> {target / (spec_path.stem + '.plan.json')} and "
                          f"{target / (spec_path.stem + '.pareto.csv')}", highlight=False)
            from planner.cli_emit import demo_emit

            demo_emit(spec_path, target / f"{spec_path.stem}.plan.json", target / f"{spec_path.stem}.emit")
            console.print()

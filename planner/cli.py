"""The ``pipeplan`` command line: parse arguments, call one library function, write, summarise."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from planner.candidates import Sources
from planner.errors import PipeplanError
from planner.ilp.backends import SolverName
from planner.plan import Plan

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Plan ML inference pipelines: the cheapest configuration that meets a p99 latency SLO.")
# Wide enough for the plan table when output is piped (rich assumes 80 columns then).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def _fail(exc: PipeplanError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def plan_table(plan: Plan) -> Table:
    table = Table(title=f"Plan for '{plan.pipeline}'", title_justify="left")
    for header in ("stage", "variant", "hardware", "batch", "timeout (ms)", "replicas", "util",
                   "p99 (ms)", "= fill + wait + service (ms)", "accuracy", "USD/h"):
        table.add_column(header, justify="right" if header not in ("stage", "variant", "hardware") else "left",
                         no_wrap=True)
    for s in plan.stages:
        table.add_row(
            s.stage, s.variant, s.hardware, str(s.batch_size), f"{s.batch_timeout_ms:.1f}",
            str(s.replicas), f"{s.utilization:.2f}", f"{s.predicted_latency_ms:.1f}",
            f"{s.latency_fill_ms:.1f} + {s.latency_wait_ms:.1f} + {s.latency_service_ms:.1f}",
            f"{s.accuracy:.4f}", f"{s.usd_per_hour:.3f}",
        )
    return table


def print_plan(plan: Plan, solve_time_ms: float | None) -> None:
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


def _load_request(spec_path: Path, profiles: Optional[Path], hardware: Optional[Path], solver: SolverName,
                  time_limit_s: Optional[float], record_timing: bool):
    from planner import io
    from planner.planning import PlanRequest

    spec = io.load_spec(spec_path)
    profiles_path, catalog_path = io.resolve_inputs(spec_path, spec, profiles, hardware)
    catalog = io.load_catalog(catalog_path)
    table = io.load_profiles(profiles_path)
    return PlanRequest(
        spec=spec, catalog=catalog, profiles=table, solver=solver, time_limit_s=time_limit_s,
        sources=Sources(str(spec_path), str(profiles_path), str(catalog_path)),
        provenance=io.provenance(spec_path, profiles_path, catalog_path, table),
        record_timing=record_timing,
    )


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
) -> None:
    """Find the optimal configuration for SPEC and print it."""
    from planner import io
    from planner.planning import frontier, make_plan

    try:
        request = _load_request(spec, profiles, hardware, solver, time_limit, record_timing)
        result = make_plan(request)
        points = frontier(request) if pareto else None
        if out:
            io.write_plan(result, out)
        if pareto:
            io.write_csv_atomic(pareto, PARETO_HEADER, pareto_rows(points))
    except PipeplanError as exc:
        _fail(exc)
    print_plan(result, result.solver.solve_time_ms)
    if out:
        console.print(f"plan written to {out}", highlight=False)
    if pareto:
        console.print(f"frontier of {len(points)} optimal points written to {pareto}", highlight=False)


@app.command()
def demo(
    configs: Path = typer.Option(Path("configs"), help="Folder with the bundled example specs."),
    out: Path = typer.Option(Path("reports/demo"), help="Where to write plans and frontiers."),
) -> None:
    """Plan every example spec in CONFIGS and write plan + Pareto CSV for each."""
    from planner import io
    from planner.planning import frontier, make_plan

    specs = sorted(configs.glob("*.yaml"))
    specs = [p for p in specs if "stages:" in p.read_text(encoding="utf-8")]
    if not specs:
        _fail(PipeplanError(f"{configs}: no pipeline specs found; run from the repository root or pass --configs."))
    for spec_path in specs:
        try:
            request = _load_request(spec_path, None, None, SolverName.CBC, None, False)
            result = make_plan(request)
            points = frontier(request)
            io.write_plan(result, out / f"{spec_path.stem}.plan.json")
            io.write_csv_atomic(out / f"{spec_path.stem}.pareto.csv", PARETO_HEADER, pareto_rows(points))
        except PipeplanError as exc:
            _fail(exc)
        print_plan(result, None)
        console.print(f"-> {out / (spec_path.stem + '.plan.json')} and a {len(points)}-point frontier\n", highlight=False)


# --- simulate / trace commands (issue 4) ---


# --- profile commands (issue 3) ---


@app.command()
def profile(
    manifest: Path = typer.Argument(..., help="Model manifest (YAML), see docs/formats.md."),
    out: Path = typer.Option(..., help="Profile table to write: .parquet or .csv."),
    quick: bool = typer.Option(False, "--quick", help="Short windows (fewer samples; more rows flagged unstable)."),
    hardware: Optional[list[str]] = typer.Option(None, "--hardware", help="Only these hardware settings of the manifest (repeatable)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Resume file; default: OUT with '.checkpoint.jsonl' appended."),
    cache_dir: Path = typer.Option(Path(".pipeplan-cache"), "--cache-dir", help="Where built and quantised variants are kept."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard the checkpoint and measure everything again."),
) -> None:
    """Measure every variant of MANIFEST per hardware setting and batch size; write the profile table.

    A rerun after a crash or Ctrl-C continues from the checkpoint; failed variants are reported
    and tried again.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from profiler.errors import ProfilerError
    from profiler.schema import ProfileSchemaError
    from profiler.session import profile_manifest
    from profiler.table_io import write_profile_table

    checkpoint = checkpoint or out.with_name(out.name + ".checkpoint.jsonl")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err_console, transient=False) as bar:
            task = bar.add_task("profiling", total=None)

            def on_progress(p) -> None:
                bar.update(task, completed=p.done, total=p.total, description=p.label[:60].ljust(60))

            result = profile_manifest(manifest, checkpoint, cache_dir, quick=quick,
                                      hardware=tuple(hardware) if hardware else None, fresh=fresh,
                                      on_progress=on_progress)
        if result.table is None:
            raise ProfilerError(f"{manifest}: no point could be measured; see the failures above "
                                f"({len(result.failures)} failed).")
        write_profile_table(result.table, out)
    except (PipeplanError, ProfilerError, ProfileSchemaError) as exc:
        _fail(exc)
    for f in result.failures:
        err_console.print(f"[yellow]failed:[/] {f.model}/{f.variant} on {f.hardware}: {f.reason}", highlight=False)
    console.print(
        f"{len(result.table.rows)} rows written to {out} ({result.measured_points} measured now, "
        f"{result.resumed_points} resumed, {result.unstable_points} unstable, {len(result.failures)} failed)",
        highlight=False,
    )


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

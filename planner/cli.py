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
from profiler.schema import ProfileTable

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Plan ML inference pipelines: the cheapest configuration that meets a p99 latency SLO.")
# Wide enough for the plan table when output is piped (rich assumes 80 columns then).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def _fail(exc: PipeplanError) -> None:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


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
                          f"{target / (spec_path.stem + '.pareto.csv')}\n", highlight=False)


# --- simulate / trace commands (issue 4) ---
from planner.sim.model import QueueMode, ServiceModel  # noqa: E402  (light imports: enums for typer)
from planner.traces import TraceFormat, TraceKind  # noqa: E402

trace_app = typer.Typer(no_args_is_help=True, help="Generate, convert and describe arrival traces.")
app.add_typer(trace_app, name="trace")


def _sim_table(result) -> Table:
    table = Table(title=f"Simulation of '{result.pipeline}' on '{result.trace}'", title_justify="left")
    for header in ("stage", "replicas", "batch", "util", "mean batch", "mean queue", "mean wait (ms)",
                   "p99 stage (ms)", "predicted p99 (ms)", "dropped items"):
        table.add_column(header, justify="left" if header == "stage" else "right", no_wrap=True)
    for s in result.stages:
        predicted = "-" if s.predicted_latency_ms is None else f"{s.predicted_latency_ms:.1f}"
        table.add_row(s.stage, str(s.replicas), str(s.batch_size), f"{s.utilization:.2f}", f"{s.mean_batch_size:.2f}",
                      f"{s.mean_queue_length:.2f}", f"{s.mean_wait_ms:.1f}", f"{s.p99_latency_ms:.1f}", predicted,
                      str(s.dropped_items))
    return table


def _read_trace_arg(path: Path, fmt: TraceFormat, seed: int, **options):
    import numpy as np

    from planner.trace_io import read_trace

    return read_trace(path, fmt, rng=np.random.default_rng(seed), **options)


@app.command()
def simulate(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="Plan (JSON) from 'pipeplan plan'."),
    trace: Path = typer.Option(..., "--trace", help="Arrival trace (pipeplan trace CSV, or see --trace-format)."),
    out: Optional[Path] = typer.Option(None, help="Write the result here (JSON)."),
    seed: int = typer.Option(0, help="Seed of the service-time and fan-out draws (same seed, same result)."),
    service: ServiceModel = typer.Option(ServiceModel.LOGNORMAL, help="Batch service time: lognormal fitted to "
                                         "the profile's p50/p99, deterministic p50, or exponential."),
    queue_mode: QueueMode = typer.Option(QueueMode.CENTRAL, "--queue-mode", help="One central FIFO per stage, or "
                                         "one FIFO per replica fed round-robin."),
    request_timeout_ms: Optional[float] = typer.Option(None, "--request-timeout-ms", help="Drop a request whose "
                                                       "item is dequeued after arrival + this."),
    slo_ms: Optional[float] = typer.Option(None, "--slo-ms", help="SLO for attainment; default the plan's."),
    requests_out: Optional[Path] = typer.Option(None, "--requests", help="Also write per-request latencies (CSV)."),
    trace_format: TraceFormat = typer.Option(TraceFormat.AUTO, "--trace-format", help="Format of --trace."),
) -> None:
    """Replay TRACE through the PLAN's batched queues and report latency, SLO attainment and per-stage load."""
    from planner import io
    from planner.sim import SimConfig, simulate as run_simulation
    from planner.sim.result import requests_csv_text, result_to_json

    try:
        plan_value = io.load_plan(plan_file)
        arrivals = _read_trace_arg(trace, trace_format, seed)
        config = SimConfig(seed=seed, service=service, queue_mode=queue_mode, request_timeout_ms=request_timeout_ms,
                           slo_ms=slo_ms)
        result = run_simulation(plan_value, arrivals, config)
        info = {"file": trace.name, "requests": arrivals.requests, "duration_ms": arrivals.duration_ms,
                "mean_rps": arrivals.mean_rps}
        if out:
            io.write_text_atomic(out, result_to_json(result, info))
        if requests_out:
            io.write_text_atomic(requests_out, requests_csv_text(result))
    except PipeplanError as exc:
        _fail(exc)
    console.print(_sim_table(result))
    s = result.summary
    fmt = lambda v: "inf" if v == float("inf") else f"{v:.2f}"
    console.print(
        f"{s.requests} requests ({s.dropped} dropped) | p50 {fmt(s.p50_ms)} / p95 {fmt(s.p95_ms)} / p99 "
        f"{fmt(s.p99_ms)} / max {fmt(s.max_ms)} ms | SLO {s.slo_ms:g} ms met by {100 * s.slo_attainment:.2f}% "
        f"| predicted p99 {result.predicted_p99_ms:.2f} ms", highlight=False)
    if out:
        console.print(f"result written to {out}", highlight=False)
    if requests_out:
        console.print(f"per-request latencies written to {requests_out}", highlight=False)


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


@trace_app.command("generate")
def trace_generate(
    kind: TraceKind = typer.Option(..., "--kind", help="Arrival process."),
    out: Path = typer.Option(..., "--out", help="Write the trace here (pipeplan trace CSV)."),
    duration_s: float = typer.Option(600.0, "--duration-s", help="Length of the trace, seconds."),
    rate_rps: float = typer.Option(10.0, "--rate-rps", help="Rate (poisson, gamma), mean rate (diurnal), low-state "
                                   "rate (mmpp), rate before the step (step) or at the start (ramp)."),
    cv: float = typer.Option(1.0, help="gamma: coefficient of variation of the gaps (0.1 .. 8)."),
    rate_high_rps: Optional[float] = typer.Option(None, "--rate-high-rps", help="mmpp: high-state rate (default 4x)."),
    mean_low_s: float = typer.Option(30.0, "--mean-low-s", help="mmpp: mean time in the low state."),
    mean_high_s: float = typer.Option(5.0, "--mean-high-s", help="mmpp: mean time in the high state."),
    amplitude: float = typer.Option(0.5, help="diurnal: relative amplitude of the sine (0 .. 1)."),
    period_s: float = typer.Option(86400.0, "--period-s", help="diurnal: period."),
    rate_after_rps: Optional[float] = typer.Option(None, "--rate-after-rps", help="step: rate after the step (default 2x)."),
    step_at_s: Optional[float] = typer.Option(None, "--step-at-s", help="step: when (default half way)."),
    rate_end_rps: Optional[float] = typer.Option(None, "--rate-end-rps", help="ramp: rate at the end (default 2x)."),
    seed: int = typer.Option(0, help="Seed (same seed, same file)."),
) -> None:
    """Generate a synthetic trace."""
    import numpy as np

    from planner import io, traces
    from planner.trace_io import trace_to_csv_text

    rng = np.random.default_rng(seed)
    try:
        if kind is TraceKind.POISSON:
            result = traces.poisson(rate_rps, duration_s, rng)
        elif kind is TraceKind.GAMMA:
            result = traces.gamma(rate_rps, cv, duration_s, rng)
        elif kind is TraceKind.MMPP:
            result = traces.mmpp(rate_rps, rate_high_rps or 4 * rate_rps, mean_low_s, mean_high_s, duration_s, rng)
        elif kind is TraceKind.DIURNAL:
            result = traces.diurnal(rate_rps, amplitude, period_s, duration_s, rng)
        elif kind is TraceKind.STEP:
            result = traces.step(rate_rps, rate_after_rps or 2 * rate_rps,
                                 duration_s / 2 if step_at_s is None else step_at_s, duration_s, rng)
        else:
            result = traces.ramp(rate_rps, rate_end_rps or 2 * rate_rps, duration_s, rng)
        from dataclasses import replace

        result = replace(result, source=f"{result.source}, seed={seed}")
        io.write_text_atomic(out, trace_to_csv_text(result))
    except PipeplanError as exc:
        _fail(exc)
    _print_trace_summary(result)
    console.print(f"trace written to {out}", highlight=False)


def _print_trace_summary(trace_value) -> None:
    from planner.traces import describe

    d = describe(trace_value)
    console.print(
        f"{d.name}: {d.requests} requests over {d.duration_s:g} s | mean {d.mean_rps:.2f} rps, peak {d.peak_rps:g} "
        f"rps (busiest second) | CV of per-second counts {d.cv_per_second:.2f}, of gaps {d.cv_interarrival:.2f} | "
        f"{100 * d.empty_seconds_fraction:.1f}% empty seconds", highlight=False)


@trace_app.command("convert")
def trace_convert(
    source: Path = typer.Argument(..., help="Trace to read."),
    out: Path = typer.Option(..., "--out", help="Write the pipeplan trace CSV here."),
    fmt: TraceFormat = typer.Option(TraceFormat.AUTO, "--format", help="Format of SOURCE."),
    unit: str = typer.Option("s", help="timestamps: unit of the numbers (s, ms, us)."),
    column: Optional[str] = typer.Option(None, help="counts: read this CSV column of per-second counts."),
    member: Optional[str] = typer.Option(None, help="counts: file inside a tar archive."),
    start_s: float = typer.Option(0.0, "--start-s", help="Keep the trace from this second on."),
    duration_s: Optional[float] = typer.Option(None, "--duration-s", help="Keep this many seconds."),
    scale: float = typer.Option(1.0, help="Multiply the rate (counts are scaled, other arrivals thinned or copied)."),
    compress: float = typer.Option(1.0, help="Play the trace this many times faster."),
    seed: int = typer.Option(0, help="Seed for placing arrivals inside seconds and for rescaling."),
) -> None:
    """Convert a real trace (timestamps, per-second counts, Azure LLM CSV) to a pipeplan trace."""
    import numpy as np

    from planner import io, traces
    from planner.trace_io import read_trace, trace_to_csv_text

    rng = np.random.default_rng(seed)
    try:
        counts = (fmt is TraceFormat.COUNTS) or (fmt is TraceFormat.AUTO and
                                                 source.name.lower().endswith((".tbz2", ".gz", ".bz2", ".tgz")))
        if counts:
            result = read_trace(source, TraceFormat.COUNTS, rng=rng, scale=scale, start_s=start_s,
                                duration_s=duration_s, column=column, member=member)
        else:
            result = read_trace(source, fmt, rng=rng, unit=unit)
            if start_s or duration_s is not None:
                result = traces.window(result, start_s, duration_s)
            if scale != 1.0:
                result = traces.rescale(result, scale, rng)
        if compress != 1.0:
            result = traces.compress_time(result, compress)
        io.write_text_atomic(out, trace_to_csv_text(result))
    except PipeplanError as exc:
        _fail(exc)
    _print_trace_summary(result)
    console.print(f"trace written to {out}", highlight=False)


@trace_app.command("describe")
def trace_describe(
    source: Path = typer.Argument(..., help="Trace to describe."),
    fmt: TraceFormat = typer.Option(TraceFormat.AUTO, "--format", help="Format of SOURCE."),
    unit: str = typer.Option("s", help="timestamps: unit of the numbers (s, ms, us)."),
    column: Optional[str] = typer.Option(None, help="counts: read this CSV column."),
    seed: int = typer.Option(0, help="Seed for placing count-trace arrivals inside seconds."),
) -> None:
    """Print a trace's mean and peak rate and burstiness (CV of per-second counts)."""
    try:
        result = _read_trace_arg(source, fmt, seed, unit=unit, column=column)
    except PipeplanError as exc:
        _fail(exc)
    _print_trace_summary(result)


# --- tune commands (issue 5) ---
from planner.tuner.policies import PolicyKind  # noqa: E402  (light import: the enum for typer)


def _tune_table(results, rows) -> Table:
    table = Table(title=f"Tuning '{results[0].summary.trace}' ({results[0].summary.requests} requests, "
                        f"{results[0].summary.duration_s:g} s)", title_justify="left")
    for header in ("policy", "cost (USD)", "cost vs oracle", "within SLO", "p99 (ms)", "accuracy",
                   "reconfigurations", "targets met"):
        table.add_column(header, justify="left" if header == "policy" else "right", no_wrap=True)
    by_policy = {r.summary.policy: r.summary for r in results}
    for row in rows:
        s = by_policy[row.policy]
        ratio = "-" if row.cost_vs_oracle != row.cost_vs_oracle else f"{row.cost_vs_oracle:.3f}x"
        table.add_row(row.policy, f"{row.total_cost_usd:.4f}", ratio, f"{100 * row.slo_attainment:.2f}%",
                      f"{s.p99_ms:.1f}", f"{row.mean_accuracy:.4f}", str(row.reconfigurations),
                      "yes" if row.meets_targets else "no")
    return table


@app.command()
def tune(
    spec: Path = typer.Argument(..., help="Pipeline spec (YAML)."),
    trace: Path = typer.Option(..., "--trace", help="Arrival trace (pipeplan trace CSV, or see --trace-format)."),
    policy: PolicyKind = typer.Option(PolicyKind.PREDICTIVE, "--policy", help="Tuning policy (ignored with --compare)."),
    out: Path = typer.Option(..., "--out", help="Folder for timeline.csv and summary.json (per policy with --compare)."),
    compare_all: bool = typer.Option(False, "--compare", help="Run every policy on the trace and compare with the oracle."),
    interval_s: int = typer.Option(10, "--interval-s", help="Seconds between tuning decisions."),
    seed: int = typer.Option(0, help="Seed of the simulation (and of placing count-trace arrivals)."),
    scale: float = typer.Option(1.0, help="Multiply the trace's rate by this."),
    trace_format: TraceFormat = typer.Option(TraceFormat.AUTO, "--trace-format", help="Format of --trace."),
    column: Optional[str] = typer.Option(None, help="counts: read this CSV column (e.g. bursty)."),
    profiles: Optional[Path] = typer.Option(None, help="Profile table; default: the spec's."),
    hardware: Optional[Path] = typer.Option(None, help="Hardware catalog; default: the spec's."),
) -> None:
    """Replay TRACE while a policy re-plans SPEC every interval; write the timeline and summary."""
    import numpy as np

    from planner import io, traces
    from planner.tuner import PlanBook, PolicySettings, TuneSettings, compare, compare_rows
    from planner.tuner.report import COMPARE_HEADER, compare_csv_rows, summary_json, timeline_header, timeline_rows

    def write(result, folder: Path) -> None:
        io.write_csv_atomic(folder / "timeline.csv", timeline_header(result), timeline_rows(result))
        io.write_text_atomic(folder / "summary.json", summary_json(result, {"trace_file": trace.name, "scale": scale}))

    try:
        request = _load_request(spec, profiles, hardware, SolverName.CBC, None, False)
        if column and trace_format is TraceFormat.AUTO:
            trace_format = TraceFormat.COUNTS
        arrivals = _read_trace_arg(trace, trace_format, seed, column=column)
        if scale != 1.0:
            arrivals = traces.rescale(arrivals, scale, np.random.default_rng(seed))
        settings = TuneSettings(policy=PolicySettings(interval_s=interval_s), seed=seed)
        kinds = tuple(PolicyKind) if compare_all else (policy,)
        results = compare(PlanBook(request), arrivals, kinds, settings,
                          on_result=lambda r: write(r, out / r.summary.policy if compare_all else out))
        rows = compare_rows(results)
        if compare_all:
            io.write_csv_atomic(out / "compare.csv", COMPARE_HEADER, compare_csv_rows(rows))
    except PipeplanError as exc:
        _fail(exc)
    console.print(_tune_table(results, rows))
    console.print(f"timeline.csv and summary.json written to {out}" + (" (one folder per policy; compare.csv)"
                                                                      if compare_all else ""), highlight=False)


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
    early_stop: bool = typer.Option(False, "--early-stop", help="Stop a batch sweep when throughput gains < 5% over 4 steps."),
    isolate: bool = typer.Option(True, "--isolate/--in-process", help="Run the models in a worker process, so a "
                                 "runtime crash or hang fails one variant, not the run (default), or in this process."),
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
                                      on_progress=on_progress, early_stop=early_stop or None, isolate=isolate)
        if result.table is None:
            raise ProfilerError(f"{manifest}: no point could be measured; see the failures above "
                                f"({len(result.failures)} failed).")
        write_profile_table(result.table, out)
    except (PipeplanError, ProfilerError, ProfileSchemaError) as exc:
        _fail(exc)
    for f in result.failures:
        err_console.print(f"[yellow]failed:[/] {f.model}/{f.variant} on {f.hardware}: {f.reason}", highlight=False)
    console.print(
        f"{len(result.table.rows)} rows written to {out} ({result.measured_rounds} point-rounds measured now, "
        f"{result.resumed_rounds} resumed, {result.unstable_points} unstable, {len(result.failures)} failed)",
        highlight=False,
    )


from enum import Enum  # noqa: E402  (kept inside the profile block)


class ImportFormat(str, Enum):
    PERF_ANALYZER = "perf-analyzer"
    MODEL_ANALYZER = "model-analyzer"


@app.command("profile-import")
def profile_import(
    kind: ImportFormat = typer.Argument(..., help="perf-analyzer (-f CSV) or model-analyzer (metrics-model-inference.csv)."),
    csv_path: Path = typer.Argument(..., help="The CSV to import."),
    out: Path = typer.Option(..., help="Profile table to write: .parquet or .csv."),
    hardware: str = typer.Option(..., help="Hardware catalog name these numbers were measured on, e.g. gpu-t4."),
    accuracy: Optional[float] = typer.Option(None, help="Accuracy of every imported variant."),
    accuracy_of: Optional[list[str]] = typer.Option(None, "--accuracy-of", help="VARIANT=ACCURACY (repeatable; model-analyzer)."),
    model: Optional[str] = typer.Option(None, help="Model name (perf-analyzer)."),
    variant: Optional[str] = typer.Option(None, help="Variant name (perf-analyzer)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="The -b batch size of the run (perf-analyzer)."),
    concurrency: Optional[float] = typer.Option(None, help="Take this concurrency level; default: the lowest measured."),
) -> None:
    """Turn perf_analyzer or Model Analyzer measurements into a profile table."""
    from profiler.errors import ProfilerError
    from profiler.imports import import_model_analyzer, import_perf_analyzer
    from profiler.table_io import write_profile_table

    try:
        try:
            text = csv_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfilerError(f"{csv_path}: cannot read the file ({exc}).") from None
        if kind is ImportFormat.PERF_ANALYZER:
            if None in (model, variant, batch_size, accuracy):
                raise ProfilerError("perf-analyzer import needs --model, --variant, --batch-size and --accuracy "
                                    "(the CSV does not record them).")
            table = import_perf_analyzer(text, str(csv_path), model, variant, hardware, batch_size, accuracy, concurrency)
        else:
            pairs = dict(item.split("=", 1) for item in accuracy_of or () if "=" in item)
            if accuracy is None and not pairs:
                raise ProfilerError("model-analyzer import needs --accuracy or --accuracy-of VARIANT=VALUE.")
            values = {k: float(v) for k, v in pairs.items()} if pairs else accuracy
            table = import_model_analyzer(text, str(csv_path), hardware, values, concurrency)
        write_profile_table(table, out)
    except (PipeplanError, ProfilerError, ValueError) as exc:
        _fail(exc)
    console.print(f"{len(table.rows)} rows imported to {out}", highlight=False)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

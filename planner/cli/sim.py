"""``pipeplan simulate`` and the ``pipeplan trace`` sub-app (generate, convert, describe)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from planner.cli.common import _fail, _read_trace_arg, app, console
from planner.errors import PipeplanError
from planner.sim.config import QueueMode, ServiceModel  # light imports: enums for typer
from planner.traces import TraceFormat, TraceKind

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
                           slo_ms=slo_ms, keep_requests=requests_out is not None)
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
    from planner.io.traces import trace_to_csv_text

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
    from planner.io.traces import read_trace, trace_to_csv_text

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

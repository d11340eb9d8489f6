"""``pipeplan simulate`` and the ``pipeplan trace`` sub-app (generate, convert, describe)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from planner.resource_class import ResourceClass
from planner.cli.common import (app, check_json_with_stdout, console, finite_or_none, non_negative, positive,
                                print_json, read_trace_arg, seed_option, summary_console, trace_format_option)
from planner.errors import TraceError
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
    out: Optional[Path] = typer.Option(None, help="Write the result here (JSON; '-' for standard output)."),
    seed: int = seed_option("Seed of the service-time and fan-out draws (same seed, same result)."),
    service: ServiceModel = typer.Option(ServiceModel.LOGNORMAL, help="Batch service time: lognormal fitted to "
                                         "the profile's p50/p99, deterministic p50, or exponential."),
    queue_mode: QueueMode = typer.Option(QueueMode.CENTRAL, "--queue-mode", help="One central FIFO per stage, or "
                                         "one FIFO per replica fed round-robin."),
    request_timeout_ms: Optional[float] = typer.Option(None, "--request-timeout-ms", callback=positive,
                                                       help="Drop a request whose item is dequeued after arrival + this."),
    slo_ms: Optional[float] = typer.Option(None, "--slo-ms", callback=positive, help="SLO for attainment; default the plan's."),
    requests_out: Optional[Path] = typer.Option(None, "--requests", help="Also write per-request latencies (CSV)."),
    trace_format: TraceFormat = trace_format_option("Format of --trace."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of the tables."),
    resource_classes: bool = typer.Option(True, "--resource-classes/--no-resource-classes",
                                          help="Model the plan's spot preemptions (seeded by --seed) and serverless "
                                          "cold starts; --no-resource-classes: every replica always up and warm "
                                          "(the latency model's assumption)."),
    hardware: Optional[Path] = typer.Option(None, "--hardware", help="Take the spot/serverless terms from this "
                                            "hardware catalog (YAML) instead of the plan's (every stage's hardware "
                                            "must be in it)."),
) -> None:
    """Replay TRACE through the PLAN's batched queues and report latency, SLO attainment and per-stage load."""
    from planner import io
    from planner.sim import SimConfig, simulate as run_simulation
    from planner.sim.classes import has_classes, simulate_classes
    from planner.sim.result import requests_csv_text, result_to_json

    check_json_with_stdout(as_json, out, requests_out)
    with io.outputs({"--out": out, "--requests": requests_out}) as files:
        plan_value = io.load_plan(plan_file) if hardware is None else io.load_plan_on_catalog(plan_file, hardware)
        arrivals = read_trace_arg(trace, trace_format, seed)
        if arrivals.requests == 0:
            raise TraceError(f"{trace}: the trace has no requests; there is nothing to simulate.")
        config = SimConfig(seed=seed, service=service, queue_mode=queue_mode, request_timeout_ms=request_timeout_ms,
                           slo_ms=slo_ms, keep_requests=requests_out is not None)
        classes = resource_classes and has_classes(plan_value)
        result = (simulate_classes if classes else run_simulation)(plan_value, arrivals, config)
        info = {"file": trace.name, "requests": arrivals.requests, "duration_ms": arrivals.duration_ms,
                "mean_rps": arrivals.mean_rps}
        if out:
            files.write_text(out, result_to_json(result, info))
        if requests_out:
            files.write_text(requests_out, requests_csv_text(result))
    s = result.summary
    if as_json:
        print_json({
            "pipeline": result.pipeline, "trace": str(trace), "requests": s.requests, "dropped": s.dropped,
            "p50_ms": finite_or_none(s.p50_ms), "p95_ms": finite_or_none(s.p95_ms), "p99_ms": finite_or_none(s.p99_ms),
            "max_ms": finite_or_none(s.max_ms), "slo_ms": s.slo_ms, "slo_attainment": finite_or_none(s.slo_attainment),
            "predicted_p99_ms": finite_or_none(result.predicted_p99_ms),
            **({} if result.resources is None else {"preemptions": result.resources.preemptions,
                                                    "cold_starts": result.resources.cold_starts}),
            "files": {k: str(v) for k, v in (("result", out), ("requests", requests_out)) if v is not None}})
        return
    to = summary_console(files.to_stdout)
    to.print(_sim_table(result))
    fmt = lambda v: "inf" if v == float("inf") else f"{v:.2f}"
    to.print(
        f"{s.requests} requests ({s.dropped} dropped) | p50 {fmt(s.p50_ms)} / p95 {fmt(s.p95_ms)} / p99 "
        f"{fmt(s.p99_ms)} / max {fmt(s.max_ms)} ms | SLO {s.slo_ms:g} ms met by {100 * s.slo_attainment:.2f}% "
        f"| predicted p99 {result.predicted_p99_ms:.2f} ms", highlight=False)
    if result.resources is not None:
        to.print(_classes_line(result.resources, s.slo_attainment), highlight=False)
    if out and str(out) != "-":
        to.print(f"result written to {out}", highlight=False)
    if requests_out and str(requests_out) != "-":
        to.print(f"per-request latencies written to {requests_out}", highlight=False)


def _classes_line(events, attainment: float) -> str:
    """One line: the run's preemptions and cold starts per spot/serverless stage (a planner.sim.result.ClassEvents)."""

    parts = [f"{e.stage} {e.resource_class.value} x{e.instances}: "
             + (f"{e.preemptions} preemptions" if e.resource_class is ResourceClass.SPOT else
                f"{e.cold_starts} cold starts in {e.batches} batches") for e in events.stages]
    return (f"resource classes: {events.preemptions} preemptions, {events.cold_starts} cold starts | "
            + "; ".join(parts) + f" | {100 * attainment:.2f}% within the SLO with them")


@trace_app.command("generate")
def trace_generate(
    kind: TraceKind = typer.Option(..., "--kind", help="Arrival process."),
    out: Path = typer.Option(..., "--out", help="Write the trace here (pipeplan trace CSV; '-' for standard output)."),
    duration_s: float = typer.Option(600.0, "--duration-s", callback=positive, help="Length of the trace, seconds."),
    rate_rps: float = typer.Option(10.0, "--rate-rps", callback=non_negative,
                                   help="Rate (poisson, gamma), mean rate (diurnal), low-state rate (mmpp), rate "
                                   "before the step (step) or at the start (ramp)."),
    cv: float = typer.Option(1.0, callback=positive, help="gamma: coefficient of variation of the gaps (0.1 .. 8)."),
    rate_high_rps: Optional[float] = typer.Option(None, "--rate-high-rps", callback=positive,
                                                  help="mmpp: high-state rate (default 4x)."),
    mean_low_s: float = typer.Option(30.0, "--mean-low-s", callback=positive, help="mmpp: mean time in the low state."),
    mean_high_s: float = typer.Option(5.0, "--mean-high-s", callback=positive, help="mmpp: mean time in the high state."),
    amplitude: float = typer.Option(0.5, callback=non_negative, help="diurnal: relative amplitude of the sine (0 .. 1)."),
    period_s: float = typer.Option(86400.0, "--period-s", callback=positive, help="diurnal: period."),
    rate_after_rps: Optional[float] = typer.Option(None, "--rate-after-rps", callback=non_negative,
                                                   help="step: rate after the step (default 2x)."),
    step_at_s: Optional[float] = typer.Option(None, "--step-at-s", callback=non_negative, help="step: when (default half way)."),
    rate_end_rps: Optional[float] = typer.Option(None, "--rate-end-rps", callback=non_negative,
                                                 help="ramp: rate at the end (default 2x)."),
    seed: int = seed_option("Seed (same seed, same file)."),
) -> None:
    """Generate a synthetic trace."""
    from dataclasses import replace

    import numpy as np

    from planner.traces import GeneratorParams, generate

    params = GeneratorParams(rate_rps=rate_rps, duration_s=duration_s, cv=cv, rate_high_rps=rate_high_rps,
                             mean_low_s=mean_low_s, mean_high_s=mean_high_s, amplitude=amplitude, period_s=period_s,
                             rate_after_rps=rate_after_rps, step_at_s=step_at_s, rate_end_rps=rate_end_rps)
    def make():
        made = generate(kind, params, np.random.default_rng(seed))
        return replace(made, source=f"{made.source}, seed={seed}")

    _write_trace(out, make)


def _write_trace(out: Path, make) -> None:
    """Make the trace inside ``--out``'s atomic writer (nothing written if making it fails), then say so."""
    from planner import io
    from planner.io.traces import trace_to_csv_text

    with io.outputs({"--out": out}) as files:
        result = make()
        line = _trace_summary(result)
        files.write_text(out, trace_to_csv_text(result))
    to = summary_console(files.to_stdout)
    to.print(line, highlight=False)
    if str(out) != "-":
        to.print(f"trace written to {out}", highlight=False)


def _trace_summary(trace_value) -> str:
    from planner.traces import describe

    d = describe(trace_value)
    if d.requests == 0:
        return f"{d.name}: no requests over {d.duration_s:g} s"
    return (f"{d.name}: {d.requests} requests over {d.duration_s:g} s | mean {d.mean_rps:.2f} rps, peak {d.peak_rps:g} "
            f"rps (busiest second) | CV of per-second counts {d.cv_per_second:.2f}, of gaps {d.cv_interarrival:.2f} | "
            f"{100 * d.empty_seconds_fraction:.1f}% empty seconds")


@trace_app.command("convert")
def trace_convert(
    source: Path = typer.Argument(..., help="Trace to read."),
    out: Path = typer.Option(..., "--out", help="Write the pipeplan trace CSV here ('-' for standard output)."),
    fmt: TraceFormat = trace_format_option("Format of SOURCE."),
    unit: str = typer.Option("s", help="timestamps: unit of the numbers (s, ms, us)."),
    column: Optional[str] = typer.Option(None, help="counts: read this CSV column of per-second counts."),
    member: Optional[str] = typer.Option(None, help="counts: file inside a tar archive."),
    start_s: float = typer.Option(0.0, "--start-s", callback=non_negative, help="Keep the trace from this second on."),
    duration_s: Optional[float] = typer.Option(None, "--duration-s", callback=positive, help="Keep this many seconds."),
    scale: float = typer.Option(1.0, callback=positive, help="Multiply the rate (counts are scaled, other arrivals thinned or copied)."),
    compress: float = typer.Option(1.0, callback=positive, help="Play the trace this many times faster."),
    seed: int = seed_option("Seed for placing arrivals inside seconds and for rescaling."),
) -> None:
    """Convert a real trace (timestamps, per-second counts, Azure LLM CSV) to a pipeplan trace."""
    import numpy as np

    from planner.io.traces import read_window

    _write_trace(out, lambda: read_window(source, fmt, np.random.default_rng(seed), unit=unit, start_s=start_s,
                                          duration_s=duration_s, scale=scale, compress=compress, column=column,
                                          member=member))


@trace_app.command("describe")
def trace_describe(
    source: Path = typer.Argument(..., help="Trace to describe."),
    fmt: TraceFormat = trace_format_option("Format of SOURCE."),
    unit: str = typer.Option("s", help="timestamps: unit of the numbers (s, ms, us)."),
    column: Optional[str] = typer.Option(None, help="counts: read this CSV column."),
    seed: int = seed_option("Seed for placing count-trace arrivals inside seconds."),
) -> None:
    """Print a trace's mean and peak rate and burstiness (CV of per-second counts)."""
    result = read_trace_arg(source, fmt, seed, unit=unit, column=column)
    console.print(_trace_summary(result), highlight=False)

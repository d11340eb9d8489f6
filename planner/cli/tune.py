"""``pipeplan tune``: replay a trace while a policy re-plans, and compare policies with the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from planner.cli.common import app, console, finite_or_none, positive, print_json, read_trace_arg, seed_option, trace_format_option
from planner.errors import TraceError
from planner.traces import TraceFormat
from planner.tuner.policies import PolicyKind  # light import: the enum for typer

MAX_INTERVAL_S = 10_000_000  # the longest trace (planner.traces.MAX_TRACE_DURATION_S)


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
    out: Path = typer.Option(..., "--out", help="Folder for timeline.csv and summary.json (per policy with --compare); "
                             "created if absent, inside an existing folder."),
    compare_all: bool = typer.Option(False, "--compare", help="Run every policy on the trace and compare with the oracle."),
    interval_s: int = typer.Option(10, "--interval-s", min=1, max=MAX_INTERVAL_S, help="Seconds between tuning decisions."),
    seed: int = seed_option("Seed of the simulation (and of placing count-trace arrivals)."),
    scale: float = typer.Option(1.0, callback=positive, help="Multiply the trace's rate by this."),
    trace_format: TraceFormat = trace_format_option("Format of --trace."),
    column: Optional[str] = typer.Option(None, help="counts: read this CSV column (e.g. bursty)."),
    profiles: Optional[Path] = typer.Option(None, help="Profile table; default: the spec's."),
    hardware: Optional[Path] = typer.Option(None, help="Hardware catalog; default: the spec's."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of the table."),
) -> None:
    """Replay TRACE while a policy re-plans SPEC every interval; write the timeline and summary.

    With --compare each policy's two files are written as soon as it finishes (a later failure keeps
    them), and compare.csv once all have run.
    """
    import numpy as np

    from planner import io, traces
    from planner.tuner import PlanBook, PolicySettings, TuneSettings, compare, compare_rows
    from planner.tuner.report import COMPARE_HEADER, compare_csv_rows, summary_json, timeline_header, timeline_rows

    io.OutputSet({}, folders={"--out": out}, stdout_ok=False)  # checks --out before any work

    def write(result) -> None:
        folder = out / result.summary.policy if compare_all else out
        with io.outputs({}, folders={"--out": out}, stdout_ok=False) as files:
            files.write_text(folder / "timeline.csv", io.csv_text(timeline_header(result), timeline_rows(result)))
            files.write_text(folder / "summary.json", summary_json(result, {"trace_file": trace.name, "scale": scale}))

    request = io.load_request(spec, profiles, hardware)
    if column and trace_format is TraceFormat.AUTO:
        trace_format = TraceFormat.COUNTS
    arrivals = read_trace_arg(trace, trace_format, seed, column=column)
    if scale != 1.0:
        arrivals = traces.rescale(arrivals, scale, np.random.default_rng(seed))
    settings = TuneSettings(policy=PolicySettings(interval_s=interval_s), seed=seed)
    kinds = tuple(PolicyKind) if compare_all else (policy,)
    try:
        results = compare(PlanBook(request), arrivals, kinds, settings, on_result=write)
    except TraceError as exc:
        text = str(exc)
        raise TraceError(text if text.startswith(str(trace)) else f"{trace}: {text}") from None
    rows = compare_rows(results)
    if compare_all:
        with io.outputs({}, folders={"--out": out}, stdout_ok=False) as files:
            files.write_text(out / "compare.csv", io.csv_text(COMPARE_HEADER, compare_csv_rows(rows)))
    if as_json:
        print_json({"trace": str(trace), "out": str(out), "policies": [
            {"policy": r.policy, "total_cost_usd": r.total_cost_usd, "cost_vs_oracle": finite_or_none(r.cost_vs_oracle),
             "slo_attainment": r.slo_attainment, "mean_accuracy": r.mean_accuracy,
             "reconfigurations": r.reconfigurations, "meets_targets": r.meets_targets} for r in rows]})
        return
    console.print(_tune_table(results, rows))
    console.print(f"timeline.csv and summary.json written to {out}" + (" (one folder per policy; compare.csv)"
                                                                      if compare_all else ""), highlight=False)

"""``pipeplan tune``: replay a trace while a policy re-plans, and compare policies with the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from planner.cli.common import _fail, _load_request, _read_trace_arg, app, console
from planner.errors import PipeplanError
from planner.ilp.backends import SolverName
from planner.traces import TraceFormat
from planner.tuner.policies import PolicyKind  # light import: the enum for typer


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

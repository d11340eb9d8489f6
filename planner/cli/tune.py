"""``pipeplan tune``: replay a trace while a policy re-plans, and compare policies with the oracle."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from planner.cli.common import app, console, finite_or_none, non_negative, positive, print_json, read_trace_arg, seed_option, trace_format_option
from planner.errors import TraceError
from planner.traces import TraceFormat
from planner.limits import MAX_INTERVAL_S
from planner.tuner.settings import ForecasterKind, PolicyKind  # light: the enums for typer


def _utilization_cap(value: Optional[float]) -> Optional[float]:
    """A utilisation cap in (0, 1), as the spec's max_utilization."""
    if value is not None and not (math.isfinite(value) and 0 < value < 1):
        raise typer.BadParameter(f"found {value!r}; give a share in (0, 1), e.g. 0.9.")
    return value


def _tune_table(results, rows) -> Table:
    table = Table(title=f"Tuning '{results[0].summary.trace}' ({results[0].summary.requests} requests, "
                        f"{results[0].summary.duration_s:g} s)", title_justify="left")
    unit = rows[0].objective_unit
    table.add_column("policy", justify="left", no_wrap=True, min_width=max(len(r.policy) for r in rows))
    for header in ("cost (USD)", "cost vs oracle", "within SLO", "p99 (ms)", "accuracy", f"objective ({unit})",
                   "vs oracle", rows[0].constraint, "reconfig.", "targets met"):
        table.add_column(header, justify="right")
    by_policy = {r.summary.policy: r.summary for r in results}
    for row in rows:
        s = by_policy[row.policy]
        held = "-" if row.constraint == "none" else (
            "held" if row.constraint_margin >= 0 else f"missed by {-row.constraint_margin:.4g}")
        table.add_row(row.policy, f"{row.total_cost_usd:.4f}", f"{row.cost_vs_oracle:.3f}x",
                      f"{100 * row.slo_attainment:.2f}%", f"{s.p99_ms:.1f}", f"{row.mean_accuracy:.4f}",
                      f"{row.objective_value:.4g}", f"{-100 * row.shortfall_vs_oracle:+.1f}%", held,
                      str(row.reconfigurations), "yes" if row.meets_targets else "no")
    return table


@app.command()
def tune(
    spec: Path = typer.Argument(..., help="Pipeline spec (YAML)."),
    trace: Path = typer.Option(..., "--trace", help="Arrival trace (pipeplan trace CSV, or see --trace-format)."),
    policy: Optional[PolicyKind] = typer.Option(None, "--policy", help="Tuning policy (ignored with --compare) "
                                                "[default: burst if the catalog has serverless hardware, else "
                                                "predictive]."),
    out: Path = typer.Option(..., "--out", help="Folder for timeline.csv and summary.json (per policy with --compare); "
                             "created if absent, inside an existing folder."),
    compare_all: bool = typer.Option(False, "--compare", help="Run every policy on the trace and compare with the oracle."),
    interval_s: Optional[int] = typer.Option(None, "--interval-s", min=1, max=MAX_INTERVAL_S, help="Seconds between "
                                             "tuning decisions [default: the spec's tuner.interval_s, else 10]."),
    seed: int = seed_option("Seed of the simulation (and of placing count-trace arrivals)."),
    scale: float = typer.Option(1.0, callback=positive, help="Multiply the trace's rate by this."),
    trace_format: TraceFormat = trace_format_option("Format of --trace."),
    column: Optional[str] = typer.Option(None, help="counts: read this CSV column (e.g. bursty)."),
    profiles: Optional[Path] = typer.Option(None, help="Profile table; default: the spec's."),
    hardware: Optional[Path] = typer.Option(None, help="Hardware catalog; default: the spec's."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of the table."),
    margin: Optional[float] = typer.Option(None, "--margin", min=0.0, max=10.0, callback=non_negative,
                                           help="predictive: plan this share above the forecast peak rate "
                                                "[default: the spec's tuner.margin, else 0]."),
    grid_step: Optional[float] = typer.Option(None, "--grid-step", max=10.0, callback=positive, help="Plans are cached "
                                              "on a rate grid of this relative step; a rate is planned at the next "
                                              "grid point up [default: tuner.grid_step, else 0.05]."),
    peak_window_s: Optional[int] = typer.Option(None, "--peak-window-s", min=1, max=3600, help="Window (s) of an "
                                                "interval's peak rate, which the predictive policy forecasts and the "
                                                "oracle plans for [default: tuner.peak_window_s, else 10]."),
    max_utilization: Optional[float] = typer.Option(None, "--max-utilization", callback=_utilization_cap,
                                                    help="The utilisation cap of the tuner's plans, below 1 "
                                                         "[default: tuner.max_utilization, else 0.97]."),
    switch_hysteresis: Optional[float] = typer.Option(None, "--switch-hysteresis", min=0.0, callback=non_negative,
                                                      help="predictive: switch configuration only when the objective "
                                                           "gains more than this (in the objective's unit) "
                                                           "[default: tuner.switch_hysteresis, else 0]."),
    switch_amortize_s: Optional[float] = typer.Option(None, "--switch-amortize-s", callback=positive, help="predictive: "
                                                      "spread a switch's cost (old replicas kept while new ones load) "
                                                      "over this many seconds [default: tuner.switch_amortize_s, "
                                                      "else 300]."),
    forecaster: ForecasterKind = typer.Option(ForecasterKind.PEAK, "--forecaster", help="predictive: forecaster."),
    lookback: Optional[int] = typer.Option(None, "--lookback", min=1, help="predictive: intervals of history the "
                                           "forecaster reads; default: as many as its horizon (start-up + 1 interval)."),
    burst_slots: Optional[int] = typer.Option(None, "--burst-slots", min=1, max=100_000, help="burst: serverless "
                                              "instances per stage (at most the entry's max_concurrency) "
                                              "[default: tuner.burst_slots, else 32]."),
    spill_share: Optional[float] = typer.Option(None, "--spill-share", min=0.0, max=100.0, callback=non_negative,
                                                help="burst: spill a request to serverless when it would wait this "
                                                     "share of the SLO for a VM [default: tuner.spill_share_of_slo, "
                                                     "else 0.1]."),
    uncap_throughput: bool = typer.Option(True, "--uncap-throughput/--keep-throughput",
                                          help="Plan rows whose measured throughput is capped by the offered load "
                                               "from batch size / latency instead (a note names them)."),
) -> None:
    """Replay TRACE while a policy re-plans SPEC every interval; write the timeline and summary.

    With --compare each policy's two files are written as soon as it finishes (a later failure keeps
    them), and compare.csv once all have run.
    """
    import numpy as np

    from planner import io, traces
    from dataclasses import replace

    from planner.tuner import ForecastSettings, PlanBook, TuneSettings, compare, compare_rows
    from planner.tuner.settings import SettingOverrides, resolve, utilization_cap
    from planner.tuner.capacity import uncap_request
    from planner.tuner.registry import available_kinds, default_policy
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
    notes: tuple = ()
    if uncap_throughput:
        request, notes = uncap_request(request)
    given = SettingOverrides(interval_s=interval_s, peak_window_s=peak_window_s, margin=margin,
                             max_utilization=max_utilization, switch_hysteresis=switch_hysteresis,
                             switch_amortize_s=switch_amortize_s, grid_step=grid_step, burst_slots=burst_slots,
                             spill_share_of_slo=spill_share)
    section = request.spec.tuner
    policy_settings = resolve(section, given, ForecastSettings(kind=forecaster, lookback=lookback))
    spec_cap = request.spec.max_utilization if "max_utilization" in request.spec.model_fields_set else None
    cap = utilization_cap(section, given, spec_cap)
    if cap != request.spec.max_utilization:
        request = replace(request, spec=request.spec.model_copy(update={"max_utilization": cap}))
    settings = TuneSettings(policy=policy_settings, seed=seed)
    if policy is None:
        policy = default_policy(request)
    # The oracle runs beside a single policy too: 'targets met' compares with it either way.
    kinds = available_kinds(request) if compare_all else tuple(dict.fromkeys((PolicyKind.ORACLE, policy)))

    def done(result) -> None:
        if compare_all or result.summary.policy == policy.value:
            write(result)

    try:
        results = compare(PlanBook(request, step=policy_settings.grid_step), arrivals, kinds, settings, on_result=done)
    except TraceError as exc:
        text = str(exc)
        raise TraceError(text if text.startswith(str(trace)) else f"{trace}: {text}") from None
    rows = compare_rows(request.spec, results)
    from planner.advice import collapsed_accuracy

    distinct = {id(plan): plan for result in results for plan in result.plans}.values()  # plans are shared
    warnings = list(dict.fromkeys(note for plan in distinct for note in collapsed_accuracy(plan, request.profiles)))
    if compare_all:
        with io.outputs({}, folders={"--out": out}, stdout_ok=False) as files:
            files.write_text(out / "compare.csv", io.csv_text(COMPARE_HEADER, compare_csv_rows(rows)))
    if as_json:
        print_json({"trace": str(trace), "out": str(out), "notes": list(notes), "warnings": warnings, "policies": [
            {"policy": r.policy, "total_cost_usd": r.total_cost_usd, "cost_vs_oracle": finite_or_none(r.cost_vs_oracle),
             "slo_attainment": r.slo_attainment, "mean_accuracy": r.mean_accuracy,
             "reconfigurations": r.reconfigurations, "meets_targets": r.meets_targets} for r in rows]})
        return
    for note in notes:
        console.print(f"note: {note}", highlight=False)
    for note in warnings:
        console.print(f"[bold yellow]warning:[/] {note}", highlight=False)
    console.print(_tune_table(results, rows))
    console.print(f"timeline.csv and summary.json written to {out}" + (
        " (one folder per policy; compare.csv)" if compare_all else f" (for {policy.value}; the oracle is shown for "
                                                                     "reference)"), highlight=False)

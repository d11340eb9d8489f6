"""Figures of runs: the latency CDF of simulated and measured requests, and the tuner timeline.

One pure function per figure, each returning a matplotlib Figure.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from planner.plan import Plan
from planner.report.figures_plan import CHOSEN, SLO_COLOR, plan_label
from planner.report.inputs import RequestLatencies, TunerRun

RUN_COLORS = ("#1f77b4", "#ff7f0e")


def latency_cdf_figure(runs: Sequence[RequestLatencies], plan: Plan) -> Figure:
    """Empirical CDF of end-to-end latency per run (dropped requests never arrive, so a curve with
    drops tops out below 1), the SLO as a vertical line and each run's p99 marked at 0.99."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for run, color in zip(runs, RUN_COLORS * len(runs)):
        values = run.latency_ms
        done = np.sort(values[~np.isnan(values)])
        share = np.arange(1, done.size + 1) / max(values.size, 1)
        ax.plot(done, share, drawstyle="steps-post", color=color,
                label=f"{run.label}: {values.size} requests" + (f", {run.dropped} dropped" if run.dropped else ""))
        p99 = run.p99_ms()
        if np.isfinite(p99):
            ax.plot([p99], [0.99], linestyle="none", marker="o", color=color, label=f"{run.label} p99 {p99:.4g} ms")
        else:
            ax.annotate(f"{run.label}: p99 not reached (over 1% dropped)", (0.02, 0.9), xycoords="axes fraction",
                        fontsize=8, color=color)
    ax.axhline(0.99, color="#bbbbbb", linestyle=":", linewidth=1, label="_p99 level")
    ax.axvline(plan.slo_ms, color=SLO_COLOR, linewidth=1.5, label=f"SLO {plan.slo_ms:g} ms")
    ax.axvline(plan.predicted_p99_ms, color=CHOSEN, linestyle="--", linewidth=1,
               label=f"predicted p99 {plan.predicted_p99_ms:.4g} ms")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("end-to-end latency (ms)")
    ax.set_ylabel("share of requests completed within (0-1)")
    ax.set_title(f"Latency CDF of {plan_label(plan)}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


_TIMELINE_ROWS = ("arrival rate (requests/s)", "replicas (target)", "cost rate (USD/h)", "SLO misses (requests)")


def tuner_timeline_figure(runs: Sequence[TunerRun], pipeline: str) -> Figure:
    """One column per policy, one row per quantity: arrival and planned rate, replicas per stage,
    cost rate, and requests that missed the SLO, per tuning interval."""
    fig = Figure(figsize=(min(3.2 * len(runs) + 1.5, 17), 8), layout="constrained")
    axes = fig.subplots(len(_TIMELINE_ROWS), len(runs), sharex=True, sharey="row", squeeze=False)
    for col, run in enumerate(runs):
        rate, replicas, cost, misses = axes[:, col]
        # A step per interval, closed at the last interval's end.
        t = np.append(run.time_s, run.time_s[-1] + run.interval_s) if run.time_s.size else run.time_s
        held = lambda v: np.append(v, v[-1]) if v.size else v
        rate.step(t, held(run.arrival_rps), where="post", color="#1f77b4", label="arrived")
        rate.step(t, held(run.planned_rps), where="post", color="#ff7f0e", linestyle="--", label="planned for")
        for stage, counts in run.replicas.items():
            replicas.step(t, held(counts), where="post", label=stage)
        cost.step(t, held(run.cost_usd_per_hour), where="post", color="#2ca02c", label="cost rate")
        misses.bar(run.time_s, run.slo_misses, width=run.interval_s, align="edge", color=CHOSEN, label="late or dropped")
        rate.set_title(f"{run.policy}\n{run.total_cost_usd:.4g} USD, {100 * run.slo_attainment:.2f}% within SLO",
                       fontsize=9)
        misses.set_xlabel("time (s)")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    for row, label in zip(axes, _TIMELINE_ROWS):
        row[0].set_ylabel(label, fontsize=8)
        row[-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    most = max((float(r.slo_misses.max()) for r in runs if r.slo_misses.size), default=0.0)
    axes[3][0].set_ylim(0, max(1.0, most * 1.1))  # shared row: an empty panel still reads "0 misses"
    axes[1][0].yaxis.get_major_locator().set_params(integer=True)
    trace = runs[0].trace if runs else ""
    fig.suptitle(f"Tuner timeline of '{pipeline}' on trace '{trace}' (SLO {runs[0].slo_ms:g} ms, "
                 f"one decision every {runs[0].interval_s:g} s)" if runs else f"Tuner timeline of '{pipeline}'",
                 fontsize=10)
    return fig

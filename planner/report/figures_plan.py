"""Figures of one plan: the cost-accuracy frontier, the per-stage latency breakdown, the profile
curves it was chosen from, and the what-if sweeps. One pure function per figure, each returning a
matplotlib Figure (object-oriented API, no pyplot state); saving is planner.report.render's job.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
from matplotlib.transforms import blended_transform_factory

from planner.plan import Plan
from planner.report.inputs import FrontierPoint
from planner.report.whatif import AXIS_LABEL, WhatIfKind, WhatIfSweep
from profiler.schema import ProfileTable

CHOSEN = "#d62728"
FADED = "#7f7f7f"
SLO_COLOR = "#000000"
TERM_COLORS = {"fill": "#9ecae1", "wait": "#fdae6b", "service": "#3182bd"}
INFEASIBLE = "#d62728"


def plan_label(plan: Plan) -> str:
    """'pipeline' at N rps under a p99 SLO of M ms: what was planned, for titles."""
    return f"'{plan.pipeline}' at {plan.arrival_rps:g} requests/s, p99 SLO {plan.slo_ms:g} ms"


def frontier_figure(points: Sequence[FrontierPoint], plan: Plan) -> Figure:
    """Accuracy against cost of every optimal frontier point, the chosen plan marked, the others faded."""
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ordered = sorted(points, key=lambda p: p.cost_usd_per_hour)
    others = [p for p in ordered if not (math.isclose(p.cost_usd_per_hour, plan.cost_usd_per_hour, rel_tol=1e-6)
                                         and math.isclose(p.accuracy, plan.accuracy, rel_tol=1e-6))]
    if ordered:
        ax.plot([p.cost_usd_per_hour for p in ordered], [p.accuracy for p in ordered], color=FADED, alpha=0.35,
                drawstyle="steps-post", linewidth=1, label="_frontier")
    ax.plot([p.cost_usd_per_hour for p in others], [p.accuracy for p in others], linestyle="none", marker="o",
            color=FADED, alpha=0.45, label="other optimal points (frontier)")
    ax.plot([plan.cost_usd_per_hour], [plan.accuracy], linestyle="none", marker="*", markersize=16, color=CHOSEN,
            label="chosen plan")
    ax.annotate(f"chosen: {plan.cost_usd_per_hour:.4g} USD/h, accuracy {plan.accuracy:.4f}",
                (plan.cost_usd_per_hour, plan.accuracy), textcoords="offset points", xytext=(8, -14), fontsize=8,
                color=CHOSEN)
    objective = plan.objective
    if objective.get("kind") == "max_accuracy":
        ax.axvline(objective["budget_usd_per_hour"], color=SLO_COLOR, linestyle="--", linewidth=1,
                   label=f"budget {objective['budget_usd_per_hour']:g} USD/h")
    if objective.get("kind") == "min_cost" and objective.get("min_accuracy"):
        ax.axhline(objective["min_accuracy"], color=SLO_COLOR, linestyle="--", linewidth=1,
                   label=f"accuracy floor {objective['min_accuracy']:g}")
    ax.set_xlabel("cost (USD/h)")
    ax.set_ylabel(f"pipeline accuracy ({plan.accuracy_aggregation} over stages)")
    ax.set_title(f"Cost-accuracy frontier of {plan_label(plan)}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _stage_starts_ms(plan: Plan) -> dict[str, float]:
    """When each stage starts on the p99 timeline: the latest finish of the stages it runs after."""
    finish: dict[str, float] = {}
    starts: dict[str, float] = {}
    pending = list(plan.stages)
    while pending:
        for s in list(pending):
            if all(p in finish for p in s.after):
                starts[s.stage] = max((finish[p] for p in s.after), default=0.0)
                finish[s.stage] = starts[s.stage] + s.predicted_latency_ms
                pending.remove(s)
    return starts


def stage_breakdown_figure(plan: Plan) -> Figure:
    """Each stage's p99 as stacked fill + wait + service bars, placed where the stage starts on the
    longest path (so parallel branches overlap), against the end-to-end SLO and the predicted p99.
    The bars end at the slowest path's sum of stage p99s; the predicted end-to-end p99 (the path
    rule, planner.estimate.paths) is at most that, since stage tails do not all coincide."""
    fig = Figure(figsize=(7.5, 1.2 + 0.55 * len(plan.stages)), layout="constrained")
    ax = fig.add_subplot()
    starts = _stage_starts_ms(plan)
    names = [s.stage for s in plan.stages]
    y = np.arange(len(names))
    for term in ("fill", "wait", "service"):
        widths = [getattr(s, f"latency_{term}_ms") for s in plan.stages]
        lefts = [starts[s.stage] + sum(getattr(s, f"latency_{t}_ms") for t in ("fill", "wait", "service")
                                       [:("fill", "wait", "service").index(term)]) for s in plan.stages]
        ax.barh(y, widths, left=lefts, color=TERM_COLORS[term], edgecolor="white", height=0.6,
                label={"fill": "batch fill", "wait": "queueing wait", "service": "service (batch p99)"}[term])
    ax.axvline(plan.slo_ms, color=SLO_COLOR, linewidth=1.5, label=f"SLO {plan.slo_ms:g} ms")
    ax.axvline(plan.predicted_p99_ms, color=CHOSEN, linestyle="--", linewidth=1,
               label=f"predicted p99 {plan.predicted_p99_ms:.4g} ms")
    ax.set_yticks(y, [f"{s.stage}\n{s.variant}@{s.hardware} b{s.batch_size} x{s.replicas}" for s in plan.stages],
                  fontsize=8)
    ax.invert_yaxis()
    bars_end_ms = max(starts[s.stage] + s.predicted_latency_ms for s in plan.stages)
    ax.set_xlim(0, max(plan.slo_ms, plan.predicted_p99_ms, bars_end_ms) * 1.08)
    ax.set_xlabel("time from arrival, p99 (ms)")
    ax.set_title(f"Per-stage p99 latency of {plan_label(plan)}", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28 if len(names) < 3 else -0.18), ncol=5,
              frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return fig


def profile_curves_figure(profiles: ProfileTable, plan: Plan) -> Figure:
    """p99 latency and throughput against batch size for every variant and hardware of each stage's
    model; rows flagged unstable get a red cross, the plan's choice a star."""
    models = list(dict.fromkeys(s.model for s in plan.stages))
    fig = Figure(figsize=(9, 0.6 + 2.8 * len(models)), layout="constrained")
    axes = fig.subplots(len(models), 2, squeeze=False)
    for (ax_lat, ax_thr), model in zip(axes, models):
        rows = [r for r in profiles.rows if r.model == model]
        keys = sorted({(r.variant, r.hardware) for r in rows})
        for variant, hardware in keys:
            series = sorted((r for r in rows if (r.variant, r.hardware) == (variant, hardware)),
                            key=lambda r: r.batch_size)
            b = [r.batch_size for r in series]
            line, = ax_lat.plot(b, [r.latency_p99_ms for r in series], marker=".", linewidth=1,
                                label=f"{variant} @ {hardware}")
            ax_thr.plot(b, [r.throughput_rps for r in series], marker=".", linewidth=1, color=line.get_color(),
                        label=f"{variant} @ {hardware}")
        unstable = [r for r in rows if r.stable is False]
        for ax, value in ((ax_lat, "latency_p99_ms"), (ax_thr, "throughput_rps")):
            ax.plot([r.batch_size for r in unstable], [getattr(r, value) for r in unstable], linestyle="none",
                    marker="x", markersize=8, color=CHOSEN, label=f"unstable row ({len(unstable)})")
            chosen = [s for s in plan.stages if s.model == model]
            index = profiles.index()
            picks = [index[(s.model, s.variant, s.hardware, s.batch_size)] for s in chosen
                     if (s.model, s.variant, s.hardware, s.batch_size) in index]
            ax.plot([r.batch_size for r in picks], [getattr(r, value) for r in picks], linestyle="none", marker="*",
                    markersize=13, markerfacecolor="none", markeredgecolor="black", label="chosen by the plan")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            sizes = sorted({r.batch_size for r in rows})
            ax.set_xticks(sizes, [str(b) for b in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("batch size (items)")
            ax.grid(alpha=0.3, which="both")
        stages = ", ".join(s.stage for s in plan.stages if s.model == model)
        ax_lat.set_ylabel("batch p99 latency (ms)")
        ax_thr.set_ylabel("throughput, one replica (items/s)")
        ax_lat.set_title(f"model '{model}' (stage {stages}): latency", fontsize=9)
        ax_thr.set_title(f"model '{model}': throughput", fontsize=9)
        ax_thr.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"Profiles behind the plan of {plan_label(plan)}", fontsize=10)
    return fig


_WHATIF_TITLE = {
    WhatIfKind.SLO: "What a tighter or looser SLO costs",
    WhatIfKind.LOAD: "What more load costs",
    WhatIfKind.ACCURACY_FLOOR: "What a higher accuracy floor costs",
}


def whatif_figure(sweep: WhatIfSweep, plan: Plan) -> Figure:
    """Cost (and accuracy, right axis) of the optimal re-solve at each value of one input; points
    with no plan are drawn as red crosses along the bottom; the current plan is a star."""
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    x = np.array([p.value for p in sweep.points])
    cost = np.array([p.plan.cost_usd_per_hour if p.plan else np.nan for p in sweep.points])
    accuracy = np.array([p.plan.accuracy if p.plan else np.nan for p in sweep.points])
    ax.plot(x, cost, marker="o", color="#1f77b4", label="cost of the optimal plan")
    acc_ax = ax.twinx()
    acc_ax.plot(x, accuracy, marker="s", markersize=4, linestyle=":", color="#2ca02c", label="its accuracy")
    acc_ax.set_ylabel(f"pipeline accuracy ({plan.accuracy_aggregation})", color="#2ca02c")
    known = accuracy[np.isfinite(accuracy)]
    if known.size:  # an accuracy is a fraction: never an axis above 1 (matplotlib pads flat lines past it)
        low = float(known.min())
        acc_ax.set_ylim(max(0.0, low - max(0.02, 0.1 * (1.0 - low))), 1.0)
    bottom = blended_transform_factory(ax.transData, ax.transAxes)
    missing = [p for p in sweep.points if p.plan is None]
    reasons = sorted({p.reason.removeprefix("No plan: ") for p in missing})
    ax.plot([p.value for p in missing], [0.04] * len(missing), transform=bottom, linestyle="none", marker="X",
            markersize=10, color=INFEASIBLE, label="no plan (infeasible)" + (f": {'; '.join(reasons)}" if reasons else ""))
    ax.axvline(sweep.current_value, color=SLO_COLOR, linestyle="--", linewidth=1, label="current value")
    ax.plot([sweep.current_value], [plan.cost_usd_per_hour], linestyle="none", marker="*", markersize=15, color=CHOSEN,
            label="current plan")
    if sweep.kind is WhatIfKind.LOAD:
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.minorticks_off()
    ax.set_xlabel(AXIS_LABEL[sweep.kind])
    ax.set_ylabel("cost (USD/h)")
    finite = cost[np.isfinite(cost)]
    top = max([plan.cost_usd_per_hour, *finite.tolist()])
    ax.set_ylim(0, top * 1.15)
    ax.set_title(f"{_WHATIF_TITLE[sweep.kind]}: {plan_label(plan)}\neach point: {sweep.objective}, re-solved",
                 fontsize=9)
    ax.grid(alpha=0.3)
    handles = ax.get_legend_handles_labels()
    extra = acc_ax.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="upper center",
              bbox_to_anchor=(0.5, -0.15), ncol=3, frameon=False)
    return fig

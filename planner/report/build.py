"""build_report: typed inputs -> a Report (figures as SVG/PNG bytes, the HTML page, the explanation).

Pure apart from the solver calls of the what-ifs and the explanation; the writer is
planner.io.report.write_report. Sections whose inputs are missing are left out with a note that
says which option or value would add them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from matplotlib.figure import Figure

from planner.optimize import PlanRequest, frontier
from planner.plan import Plan
from planner.report import figures_plan as fp
from planner.report import figures_runs as fr
from planner.report.explain import Explanation, check_matches, explain
from planner.report.html import render_html
from planner.report.inputs import FrontierPoint, RequestLatencies, TunerRun
from planner.report.render import png_bytes, svg_bytes
from planner.report.whatif import WhatIfSweep, accuracy_floor_sweep, load_sweep, slo_sweep
from profiler.schema import ProfileTable


@dataclass(frozen=True)
class ReportInputs:
    """Everything a report can show; only ``plan`` is required."""

    plan: Plan
    # The spec, catalog and profiles the plan was made from: the what-ifs, the explanation and (unless
    # ``profiles`` is given) the profile curves need them.
    request: PlanRequest | None = None
    profiles: ProfileTable | None = None
    frontier: tuple[FrontierPoint, ...] | None = None  # None: computed from ``request`` when there is one
    simulated: RequestLatencies | None = None
    measured: RequestLatencies | None = None
    tuner: tuple[TunerRun, ...] = ()
    notes: tuple[str, ...] = ()  # shown at the top of the page (e.g. inputs that changed since planning)


@dataclass(frozen=True)
class ReportFigure:
    name: str  # file stem: figures/<name>.svg and .png
    title: str
    caption: str
    svg: bytes
    png: bytes


@dataclass(frozen=True)
class Report:
    plan: Plan
    explanation: Explanation | None
    sweeps: tuple[WhatIfSweep, ...]
    figures: tuple[ReportFigure, ...]
    notes: tuple[str, ...]
    html: str


def frontier_points(plans: list[Plan]) -> tuple[FrontierPoint, ...]:
    """Frontier plans (planner.optimize.frontier) as the points the frontier figure draws."""
    return tuple(FrontierPoint(p.accuracy, p.cost_usd_per_hour, p.predicted_p99_ms,
                               "; ".join(f"{s.stage}={s.variant}@{s.hardware} b{s.batch_size} x{s.replicas}"
                                         for s in p.stages)) for p in plans)


def _rendered(name: str, title: str, caption: str, make: Callable[[], Figure]) -> ReportFigure:
    fig = make()
    return ReportFigure(name, title, caption, svg_bytes(fig), png_bytes(fig))


def build_report(inputs: ReportInputs) -> Report:
    """Every figure the inputs allow, the explanation, the what-ifs, and the HTML page."""
    plan, request = inputs.plan, inputs.request
    if request is not None:
        check_matches(request, plan)
    notes = list(inputs.notes)
    figures: list[ReportFigure] = []
    points = inputs.frontier
    if points is None and request is not None:
        points = frontier_points(frontier(request))
    if points is not None:
        figures.append(_rendered("frontier", "Cost-accuracy frontier",
                                 "Each point is an optimal plan at a rising accuracy floor; the chosen plan is the star.",
                                 lambda: fp.frontier_figure(points, plan)))
    else:
        notes.append("No frontier: pass --pareto FILE (from 'pipeplan plan --pareto') or the spec (--spec).")
    figures.append(_rendered("breakdown", "Per-stage p99 latency",
                             "Each stage's predicted p99 as batch fill + queueing wait + service, placed where the "
                             "stage starts on the slowest path; the SLO is the black line.",
                             lambda: fp.stage_breakdown_figure(plan)))
    explanation = explain(request, plan) if request is not None else None
    sweeps: tuple[WhatIfSweep, ...] = ()
    if request is not None:
        lowest = min((p.accuracy for p in points), default=None) if points else None
        sweeps = (slo_sweep(request), load_sweep(request), accuracy_floor_sweep(request, plan, lowest=lowest))
        for sweep in sweeps:
            name = f"whatif-{sweep.kind.value.replace('_', '-')}"
            figures.append(_rendered(name, f"What-if: {sweep.kind.value.replace('_', ' ')}",
                                     f"Each point re-solves the plan ({sweep.objective}) with only this input "
                                     "changed; crosses mark values with no feasible plan.",
                                     lambda sweep=sweep: fp.whatif_figure(sweep, plan)))
    else:
        notes.append("No what-ifs or explanation: they re-solve the plan and need the spec, profiles and hardware "
                     "catalog it was made from (--spec, --profiles, --hardware).")
    runs = [r for r in (inputs.simulated, inputs.measured) if r is not None]
    if runs:
        figures.append(_rendered("latency-cdf", "End-to-end latency CDF",
                                 "Share of requests completed within each latency; the SLO is the black line and "
                                 "each run's p99 is marked at 0.99.", lambda: fr.latency_cdf_figure(runs, plan)))
    else:
        notes.append("No latency CDF: pass --sim REQUESTS.csv (from 'pipeplan simulate --requests') and/or "
                     "--measured REQUESTS.csv.")
    if inputs.tuner:
        figures.append(_rendered("tuner-timeline", "Tuner timeline",
                                 "Per tuning interval and policy: arrival and planned rate, target replicas per "
                                 "stage, cost rate and requests that missed the SLO.",
                                 lambda: fr.tuner_timeline_figure(inputs.tuner, plan.pipeline)))
    profiles = inputs.profiles or (request.profiles if request is not None else None)
    if profiles is not None:
        figures.append(_rendered("profiles", "Profile curves",
                                 "Batch p99 latency and one replica's throughput per variant and hardware; red "
                                 "crosses mark rows the profiler flagged unstable, stars the plan's choices.",
                                 lambda: fp.profile_curves_figure(profiles, plan)))
    else:
        notes.append("No profile curves: pass --profiles or the spec.")
    html = render_html(plan, explanation, sweeps, [(f.name, f.title, f.caption, f.svg) for f in figures], notes)
    return Report(plan, explanation, sweeps, tuple(figures), tuple(notes), html)

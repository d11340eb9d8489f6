"""Figures checked through their Figure objects: the data in the artists, labels with units, the SLO line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.estimate.paths import longest_path_ms
from planner.optimize import frontier
from planner.report import frontier_points
from planner.report.figures_plan import frontier_figure, profile_curves_figure, stage_breakdown_figure, whatif_figure
from planner.report.figures_runs import latency_cdf_figure, tuner_timeline_figure
from planner.report.inputs import RequestLatencies, TunerRun
from planner.report.render import png_bytes, svg_bytes
from planner.report.whatif import load_sweep, slo_sweep
from planner.sim.run import quantile


def line(ax, label):
    found = [l for l in ax.get_lines() if l.get_label().startswith(label)]
    assert found, f"no line labelled {label!r} in {[l.get_label() for l in ax.get_lines()]}"
    return found[0]


def test_frontier_marks_the_chosen_plan_and_fades_the_others(ocr):
    request, plan = ocr
    points = frontier_points(frontier(request))
    fig = frontier_figure(points, plan)
    ax = fig.axes[0]
    chosen = line(ax, "chosen plan")
    assert chosen.get_xdata()[0] == plan.cost_usd_per_hour and chosen.get_ydata()[0] == plan.accuracy
    others = line(ax, "other optimal points")
    assert len(others.get_xdata()) == len(points) - 1  # the chosen plan is on the frontier
    assert others.get_alpha() < 0.6
    assert line(ax, "budget").get_xdata()[0] == plan.objective["budget_usd_per_hour"]
    assert ax.get_xlabel() == "cost (USD/h)" and "accuracy" in ax.get_ylabel()
    assert "'ocr'" in ax.get_title() and "700 ms" in ax.get_title()


def test_breakdown_bars_are_fill_wait_service_against_the_slo(video):
    request, plan = video
    ax = stage_breakdown_figure(plan).axes[0]
    bars = {c.get_label(): [p.get_width() for p in c.patches] for c in ax.containers}
    assert bars["batch fill"] == pytest.approx([s.latency_fill_ms for s in plan.stages])
    assert bars["queueing wait"] == pytest.approx([s.latency_wait_ms for s in plan.stages])
    assert bars["service (batch p99)"] == pytest.approx([s.latency_service_ms for s in plan.stages])
    # A stage starts where its parent ends: the last bar ends at the slowest path's sum of stage
    # p99s, and the predicted end-to-end p99 (the path rule) is drawn as its own line, at most that.
    service = next(c for c in ax.containers if c.get_label() == "service (batch p99)")
    bars_end = max(p.get_x() + p.get_width() for p in service.patches)
    assert bars_end == pytest.approx(longest_path_ms(request.spec, {s.stage: s.predicted_latency_ms for s in plan.stages}))
    assert line(ax, "predicted p99").get_xdata()[0] == pytest.approx(plan.predicted_p99_ms)
    assert plan.predicted_p99_ms <= bars_end * (1 + 1e-9) and ax.get_xlim()[1] >= bars_end
    assert line(ax, "SLO").get_xdata()[0] == plan.slo_ms
    assert "(ms)" in ax.get_xlabel()


def test_profile_curves_mark_every_unstable_row(ocr):
    request, plan = ocr
    fig = profile_curves_figure(request.profiles, plan)
    models = list(dict.fromkeys(s.model for s in plan.stages))
    assert len(fig.axes) == 2 * len(models)
    for k, model in enumerate(models):
        ax_lat, ax_thr = fig.axes[2 * k], fig.axes[2 * k + 1]
        unstable = [r for r in request.profiles.rows if r.model == model and r.stable is False]
        marks = line(ax_lat, "unstable row")
        assert sorted(zip(marks.get_xdata(), marks.get_ydata())) == sorted((r.batch_size, r.latency_p99_ms)
                                                                         for r in unstable)
        assert len(line(ax_thr, "unstable row").get_xdata()) == len(unstable)
        assert ax_lat.get_ylabel() == "batch p99 latency (ms)" and "(items/s)" in ax_thr.get_ylabel()
        assert ax_lat.get_xlabel() == "batch size (items)"
    assert any(r.stable is False for r in request.profiles.rows)  # the example does exercise the marking


def test_whatif_points_are_optimal_resolves_and_infeasible_ones_are_shown(ocr):
    request, plan = ocr
    sweep = load_sweep(request)
    at_plan = next(p for p in sweep.points if math.isclose(p.value, plan.arrival_rps))
    assert at_plan.plan.cost_usd_per_hour == pytest.approx(plan.cost_usd_per_hour)
    assert at_plan.plan.accuracy == pytest.approx(plan.accuracy)
    missing = [p for p in sweep.points if p.plan is None]
    assert missing and all(p.reason for p in missing)  # 4x the load does not fit the 0.4 USD/h budget
    ax = whatif_figure(sweep, plan).axes[0]
    cost = line(ax, "cost of the optimal plan").get_ydata()
    assert [math.isnan(c) for c in cost] == [p.plan is None for p in sweep.points]
    crosses = line(ax, "no plan")
    assert list(crosses.get_xdata()) == [p.value for p in missing]
    assert line(ax, "current plan").get_ydata()[0] == plan.cost_usd_per_hour
    assert ax.get_xlabel() == "arrival rate (requests/s)" and ax.get_ylabel() == "cost (USD/h)"


def test_a_looser_slo_never_costs_more_under_min_cost(video):
    request, _ = video
    costs = [p.plan.cost_usd_per_hour for p in slo_sweep(request).points if p.plan is not None]
    assert costs == sorted(costs, reverse=True)


def test_latency_cdf_has_the_slo_and_each_p99(ocr):
    _, plan = ocr
    rng = np.random.default_rng(3)
    simulated = RequestLatencies("simulated", rng.gamma(4.0, 40.0, 2000))
    measured_values = rng.gamma(4.0, 45.0, 1000)
    measured_values[:5] = np.nan
    measured = RequestLatencies("measured", measured_values)
    ax = latency_cdf_figure([simulated, measured], plan).axes[0]
    assert line(ax, "SLO").get_xdata()[0] == plan.slo_ms
    curve = line(ax, "measured: 1000 requests, 5 dropped")
    assert curve.get_ydata()[-1] == pytest.approx(995 / 1000)  # drops never complete
    p99 = line(ax, "simulated p99")
    assert p99.get_xdata()[0] == quantile(simulated.latency_ms, 0.99) and p99.get_ydata()[0] == 0.99
    assert ax.get_xlabel() == "end-to-end latency (ms)"


def _run(policy: str, replicas: list[int]) -> TunerRun:
    n = len(replicas)
    return TunerRun(policy, "step", 10.0, 400.0, np.arange(n) * 10.0, np.full(n, 5.0), np.full(n, 6.0),
                    {"a": np.array(replicas, float), "b": np.ones(n)}, np.full(n, 0.5), np.array([0, 3] + [0] * (n - 2), float),
                    1.0, 0.99)


def test_tuner_timeline_has_a_panel_per_quantity_and_a_column_per_policy():
    runs = [_run("oracle", [1, 2, 3]), _run("reactive", [2, 2, 2])]
    fig = tuner_timeline_figure(runs, "video")
    assert len(fig.axes) == 4 * 2
    rows = [fig.axes[i * 2: i * 2 + 2] for i in range(4)]
    labels = [r[0].get_ylabel() for r in rows]
    assert labels == ["arrival rate (requests/s)", "replicas (target)", "cost rate (USD/h)", "SLO misses (requests)"]
    assert list(line(rows[1][0], "a").get_ydata()) == [1, 2, 3, 3]  # closed at the end of the last interval
    misses = rows[3][1].containers[0]
    assert [p.get_height() for p in misses.patches] == [0, 3, 0]
    assert [ax.get_title().split("\n")[0] for ax in rows[0]] == ["oracle", "reactive"]


def test_rendering_is_deterministic_and_undated(video):
    _, plan = video
    one, two = stage_breakdown_figure(plan), stage_breakdown_figure(plan)
    assert svg_bytes(one) == svg_bytes(two)
    assert png_bytes(one) == png_bytes(two)
    assert b"<dc:date>" not in svg_bytes(one)

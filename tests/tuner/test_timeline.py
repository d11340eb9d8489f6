"""The timeline records every deployed configuration in full: replaying its rows reproduces the run."""

from __future__ import annotations

from dataclasses import replace

import pytest

from planner.tuner import PlanBook, PlaybackPolicy, PolicyKind, TuneSettings, tune
from planner.tuner.planbook import StageKey
from planner.tuner.replay import tune_policy
from tests.fixtures import burst_trace, video_request


def _plan_of_row(book: PlanBook, row):
    """The plan a timeline row describes: its configuration pinned, its replicas and batch timeouts."""
    pin = tuple((s.stage, StageKey(s.variant, s.hardware, s.batch_size)) for s in row.stages)
    base = book.pinned_capped(row.planned_rps, pin)
    assert base is not None
    by = {s.stage: s for s in row.stages}
    stages = tuple(replace(s, replicas=by[s.stage].replicas, batch_timeout_ms=by[s.stage].batch_timeout_ms,
                           usd_per_hour=s.usd_per_hour * by[s.stage].replicas / s.replicas) for s in base.stages)
    return replace(base, stages=stages)


@pytest.mark.parametrize("kind", [PolicyKind.PREDICTIVE, PolicyKind.REACTIVE])
def test_replaying_the_timeline_rows_reproduces_the_run(kind):
    book = PlanBook(video_request())
    trace = burst_trace()
    settings = TuneSettings(seed=3)
    result = tune(book, trace, kind, settings)
    assert result.summary.reconfigurations > 0  # something to replay
    plans = tuple(_plan_of_row(book, row) for row in result.timeline)
    again = tune_policy(book, trace, lambda c, v: PlaybackPolicy("timeline", plans), settings)
    for a, b in zip(result.timeline, again.timeline):
        assert a.stages == b.stages  # configurations, batch timeouts as deployed, replicas, serving
        assert a.cost_usd == pytest.approx(b.cost_usd, rel=1e-12)
        assert a.requests == b.requests and (a.slo_attainment == b.slo_attainment or a.requests == 0)
    assert again.summary.total_cost_usd == pytest.approx(result.summary.total_cost_usd, rel=1e-12)
    assert again.summary.slo_attainment == result.summary.slo_attainment

"""IPA's world (benchmarks/ipa_world.py) read from ../shared/data/ipa: its logged decisions replayed reproduce its score."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from planner.io.traces import read_trace
from planner.traces import TraceFormat
from planner.tuner import PlanBook, PlaybackPolicy, TuneSettings, tune_policy
from planner.tuner.capacity import uncap_request

REPO = Path(__file__).resolve().parents[2]
IPA = REPO.parent / "shared" / "data" / "ipa"
SEGMENTS = REPO.parent / "shared" / "data" / "traces" / "twitter" / "ipa_segments_damped8.csv"
pytestmark = [pytest.mark.shared_data,
              pytest.mark.skipif(not (IPA / "runs").exists() or not SEGMENTS.exists(),
                                 reason=f"IPA data not present at {IPA} / {SEGMENTS}")]


@pytest.fixture(scope="module")
def world():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import ipa_world
    return ipa_world


def test_ipa_decisions_replayed_reproduce_its_logged_score(world):
    request = world.request(IPA)
    steps = world.decisions(IPA, "bursty")
    assert len(steps) == 120 and set(steps[0].stages) == {"yolo", "resnet-human"}
    plans = world.decision_plans(PlanBook(request), steps)
    trace = read_trace(SEGMENTS, TraceFormat.COUNTS, rng=np.random.default_rng(0), column="bursty")
    result = tune_policy(PlanBook(request), trace, lambda c, v: PlaybackPolicy("ipa", plans), TuneSettings(seed=0))
    logged = world.logged_score(IPA, "bursty")
    assert result.summary.objective_value == pytest.approx(logged.objective(), abs=0.01)
    assert result.summary.mean_cost_usd_per_hour == pytest.approx(logged.mean_cores, abs=0.01)


def test_ipas_profiles_are_capped_at_the_offered_load_and_re_planned(world):
    request, notes = uncap_request(world.request(IPA))
    assert notes and all(19.0 <= n.offered_rps <= 20.5 for n in notes)
    by = {r.key: r for r in request.profiles.rows}
    fast = by[("yolo", "yolov5n", "cpu-8", 8)]
    assert fast.throughput_rps == pytest.approx(8 * 1000.0 / fast.latency_p50_ms) and fast.throughput_rps > 40
    assert ("yolo", "yolov5n", "cpu-8", 64) not in by  # could not fill at 20 rps
    assert by[("yolo", "yolov5n", "cpu-1", 1)].throughput_rps < 16  # service-bound: kept as measured

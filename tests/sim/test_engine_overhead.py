"""The engine's per-visit overhead (SimConfig.engine_overhead_ms): a pure delay before each stage visit."""

from __future__ import annotations

import numpy as np
import pytest

from planner.errors import SpecError
from planner.sim import Engine, ServiceModel, SimConfig, simulate
from planner.traces import Trace, poisson
from tests.fixtures import plan_of, random_plan, stage


def test_at_near_zero_load_each_visit_adds_the_overhead_once():
    # A diamond: the longest path visits three stages, so the end-to-end latency grows by 3 h.
    plan = plan_of(stage("a", p50_ms=2.0, p99_ms=2.0), stage("b", after=("a",), p50_ms=5.0, p99_ms=5.0),
                   stage("c", after=("a",), p50_ms=1.0, p99_ms=1.0, fanout=3.0),
                   stage("d", after=("b", "c"), p50_ms=1.0, p99_ms=1.0))
    trace = Trace(np.arange(20) * 1000.0, 20000.0, name="sparse")
    for engine in (Engine.FAST, Engine.EVENTS):
        bare = simulate(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC, engine=engine)).latency_ms
        with_h = simulate(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC, engine=engine,
                                                 engine_overhead_ms=1.5)).latency_ms
        np.testing.assert_allclose(bare, 8.0)
        np.testing.assert_allclose(with_h, 8.0 + 3 * 1.5)


@pytest.mark.parametrize("seed", range(4))
def test_both_engines_agree_with_an_overhead(seed):
    rng = np.random.default_rng(seed)
    plan = random_plan(rng)
    trace = poisson(30.0, 20.0, rng)
    runs = [simulate(plan, trace, SimConfig(seed=seed, engine=e, engine_overhead_ms=0.7)) for e in (Engine.FAST,
                                                                                                     Engine.EVENTS)]
    np.testing.assert_allclose(runs[0].latency_ms, runs[1].latency_ms, rtol=1e-9, atol=1e-9)


def test_overhead_zero_is_the_plain_simulator():
    rng = np.random.default_rng(9)
    plan = random_plan(rng)
    trace = poisson(30.0, 10.0, rng)
    a = simulate(plan, trace, SimConfig(seed=1)).latency_ms
    b = simulate(plan, trace, SimConfig(seed=1, engine_overhead_ms=0.0)).latency_ms
    assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_overhead_is_refused(bad):
    plan = plan_of(stage("a"))
    with pytest.raises(SpecError, match="engine_overhead_ms"):
        simulate(plan, Trace(np.arange(3) * 10.0, 30.0, name="t"), SimConfig(engine_overhead_ms=bad))


def test_the_latency_model_adds_the_overhead_to_each_stage():
    import dataclasses

    from planner.ilp.backends import SolverName
    from planner.optimize import make_plan
    from planner import io
    from tests.fixtures import CONFIGS

    request = io.load_request(CONFIGS / "digits.yaml", None, None, SolverName.CBC)
    spec = request.spec.model_copy(update={"arrival_rps": 40.0, "slo_ms": 50.0})
    bare = make_plan(dataclasses.replace(request, spec=spec))
    fixed = [dataclasses.replace(s, variant=s.variant) for s in bare.stages]
    with_h = make_plan(dataclasses.replace(request, spec=spec.model_copy(update={"engine_overhead_ms": 2.0})))
    assert [(s.variant, s.batch_size, s.replicas) for s in with_h.stages] == \
        [(s.variant, s.batch_size, s.replicas) for s in fixed]
    for a, b in zip(bare.stages, with_h.stages):
        assert b.predicted_latency_ms == pytest.approx(a.predicted_latency_ms + 2.0)
    assert with_h.predicted_p99_ms == pytest.approx(bare.predicted_p99_ms + 2.0 * len(bare.stages))


def test_the_spec_refuses_a_negative_overhead():
    from pydantic import ValidationError

    from tests.fixtures import make_spec

    with pytest.raises(ValidationError, match="engine_overhead_ms"):
        make_spec(stages=[{"name": "a", "model": "m"}], slo_ms=10, arrival_rps=1, engine_overhead_ms=-1)

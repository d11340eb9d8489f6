"""The one batching kernel: its compiled twins (built at install, and numba's JIT) are bit-identical to
it, with time-varying windows, several configurations and request deadlines; and the interpreted kernel
runs where numba is absent."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from planner.sim import SimConfig, aot, jit, simulate
from planner.sim.config import ReplicaWindow, Schedule, ServiceModel, StageSchedule, prepare
from planner.sim.engine import run_stages
from planner.sim.schedule import stage_models
from planner.traces import poisson
from tests.fixtures import assert_same_run, plan_of, random_plan, stage


def _random_schedule(plan, config, rng):
    """Per stage: the plan's configuration and a second one (other batch size and timeout), windows
    with random ready and stop times, and one replica that never stops."""
    models = stage_models(plan, config)
    other = stage_models(plan_of(*[stage(s.stage, after=s.after, batch=int(rng.choice([1, 2, 4])), timeout_ms=3.0,
                                         fanout=s.fanout, p50_ms=4.0, p99_ms=9.0, per_item_ms=1.0)
                                   for s in plan.stages]), config)
    stages = []
    for s in plan.stages:
        windows = [ReplicaWindow(0, 0.0, 0.0)]
        for _ in range(int(rng.integers(1, 5))):
            ready = float(rng.uniform(0, 6000))
            stop = float(ready + rng.uniform(100, 6000)) if rng.random() < 0.6 else float("inf")
            windows.append(ReplicaWindow(int(rng.integers(2)), ready, ready, stop))
        stages.append(StageSchedule(s.stage, (models[s.stage], other[s.stage]), tuple(windows)))
    return Schedule(tuple(stages))


def _random_case(seed: int, case: int):
    """A random plan, trace, service model and deadline (every other case), and a random schedule."""
    rng = np.random.default_rng(seed)
    plan = random_plan(rng)
    trace = poisson(float(rng.uniform(20, 150)), 8.0, rng)
    config = SimConfig(seed=case, service=list(ServiceModel)[case % 3],
                       request_timeout_ms=None if case % 2 else float(rng.uniform(30, 150)))
    return prepare(plan, trace, config), _random_schedule(plan, config, rng)


@pytest.mark.skipif(not jit.AVAILABLE, reason="numba is not installed")
@pytest.mark.parametrize("case", range(12))
def test_the_compiled_kernel_is_bit_identical_to_the_interpreted_one(case):
    prep, schedule = _random_case(500 + case, case)
    python = run_stages(prep, schedule, use_jit=False)
    compiled = run_stages(prep, schedule, use_jit=True)
    assert_same_run(compiled.raw, python.raw)
    for a, b in zip(compiled.batch_window, python.batch_window):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(compiled.last_end_ms, python.last_end_ms):
        np.testing.assert_array_equal(a, b)
    assert compiled.raw.tallies == python.raw.tallies


def test_without_numba_the_interpreted_kernel_runs_and_gives_the_same_result(monkeypatch):
    plan = plan_of(stage("a", batch=4, timeout_ms=5.0, replicas=2), stage("b", after=("a",), fanout=1.5, replicas=2))
    trace = poisson(100.0, 20.0, np.random.default_rng(9))
    expected = simulate(plan, trace, SimConfig(seed=5))
    monkeypatch.setattr(jit, "AVAILABLE", False)
    monkeypatch.setattr(jit, "_compiled", None)
    monkeypatch.setitem(sys.modules, "numba", None)  # any `import numba` now fails
    got = simulate(plan, trace, SimConfig(seed=5))
    assert got.summary == expected.summary and got.stages == expected.stages
    np.testing.assert_array_equal(got.latency_ms, expected.latency_ms)


_BUILT = importlib.util.find_spec(aot.MODULE) is not None
_NUMBA = importlib.util.find_spec("numba") is not None


@pytest.mark.skipif(not (_BUILT and _NUMBA), reason="needs the kernel built at install (planner.sim.aot) and numba")
@pytest.mark.parametrize("case", range(6))
def test_the_kernel_built_at_install_is_bit_identical_to_numbas_jit(case, monkeypatch):
    prep, schedule = _random_case(700 + case, case)
    runs = []
    for compiled in (jit.ahead_of_time(), jit.numba_jit()):
        assert compiled is not None
        monkeypatch.setattr(jit, "_compiled", compiled)
        runs.append(run_stages(prep, schedule, use_jit=True))
    assert_same_run(runs[0].raw, runs[1].raw)
    for a, b in zip(runs[0].batch_window, runs[1].batch_window):
        np.testing.assert_array_equal(a, b)
    assert runs[0].raw.tallies == runs[1].raw.tallies


@pytest.mark.skipif(not _BUILT, reason="needs the kernel built at install (planner.sim.aot)")
def test_a_kernel_built_from_another_kernel_source_is_not_used(monkeypatch, caplog):
    assert jit.ahead_of_time() is not None  # built from this kernel.py
    monkeypatch.setattr(aot, "kernel_digest", lambda: 12345)
    assert jit.ahead_of_time() is None
    assert "another version of planner/sim/kernel.py" in caplog.text

"""The schedule simulator (time-varying replicas) and the reconfiguration model that builds its input."""

from __future__ import annotations

import math
import numpy as np
import pytest

from planner.errors import SpecError
from planner.sim import ServiceModel, SimConfig, simulate
from planner.sim.config import prepare
from planner.sim.schedule import (MeteredBatches, ReplicaWindow, Schedule, StageSchedule, constant_schedule, run_schedule,
                                  simulate_schedule, stage_models)
from planner.traces import gamma, poisson
from planner.tuner.planbook import PlanBook, plan_pin
from planner.tuner.deployment import Deployment
from tests.fixtures import one_stage_request, plan_at, video_request


@pytest.mark.parametrize("rate, service", [(10.0, ServiceModel.LOGNORMAL), (160.0, ServiceModel.LOGNORMAL),
                                           (40.0, ServiceModel.DETERMINISTIC), (40.0, ServiceModel.EXPONENTIAL)])
def test_a_constant_schedule_reproduces_the_plain_simulator_exactly(rate, service):
    plan = plan_at(video_request(), rate)
    trace = gamma(rate, 2.0, 120.0, np.random.default_rng(7))
    config = SimConfig(seed=5, service=service)
    plain = simulate(plan, trace, config)
    scheduled, _ = simulate_schedule(plan, constant_schedule(plan, config), trace, config)
    assert np.array_equal(plain.latency_ms, scheduled.latency_ms, equal_nan=True)
    assert plain.summary == scheduled.summary
    assert plain.stages == scheduled.stages


def _one_stage(windows, plan, config=SimConfig(seed=1)):
    models = stage_models(plan, config)
    name = plan.stages[0].stage
    return Schedule((StageSchedule(name, (models[name],), tuple(windows)),))


def test_windows_serve_only_between_ready_and_stop_and_finish_their_batch():
    plan = plan_at(one_stage_request(), 30.0)
    trace = poisson(30.0, 20.0, np.random.default_rng(2))
    config = SimConfig(seed=1)
    windows = [ReplicaWindow(0, 0.0, 0.0), ReplicaWindow(0, 0.0, 5000.0), ReplicaWindow(0, 0.0, 0.0, 8000.0)]
    run = run_schedule(prepare(plan, trace, config), _one_stage(windows, plan, config))
    starts, ends = run.raw.stages[0].batch_start_ms, run.raw.stages[0].batch_end_ms
    owner = run.batch_window[0]
    assert starts[owner == 1].min() >= 5000.0  # not before it is ready
    assert starts[owner == 2].max() < 8000.0  # no batch started at or after its stop
    assert run.last_end_ms[0][2] == ends[owner == 2].max()
    assert np.isfinite(run.raw.completion_ms).all()  # every request served (conservation)


def test_a_schedule_with_every_replica_stopped_is_refused():
    plan = plan_at(one_stage_request(), 10.0)
    trace = poisson(10.0, 10.0, np.random.default_rng(2))
    with pytest.raises(SpecError, match="no replica can serve"):
        run_schedule(prepare(plan, trace, SimConfig()), _one_stage([ReplicaWindow(0, 0.0, 0.0, 2000.0)], plan))


def test_scale_up_waits_for_startup_plus_load_and_scale_down_stops_at_once():
    request = one_stage_request()
    big = plan_at(request, 60.0)
    small = PlanBook(request).pinned(10.0, plan_pin(big))  # the same configuration, fewer replicas
    stage = small.stages[0]
    delay_ms = 1000.0 * (stage.startup_s + stage.load_time_s)
    assert delay_ms == 25_000.0 and big.stages[0].replicas > small.stages[0].replicas
    d = Deployment()
    d.apply(0.0, small, initial=True)
    change = d.apply(100_000.0, big)
    assert change.launched == big.stages[0].replicas - small.stages[0].replicas
    new = [w for w in d.windows[stage.stage] if w.launch_ms == 100_000.0]
    assert all(w.ready_ms == 100_000.0 + delay_ms for w in new)
    assert d.serving(stage.stage, 100_000.0 + delay_ms - 1) == small.stages[0].replicas
    assert d.serving(stage.stage, 100_000.0 + delay_ms) == big.stages[0].replicas
    change = d.apply(200_000.0, small)
    assert change.stopped == big.stages[0].replicas - small.stages[0].replicas
    assert d.serving(stage.stage, 200_000.0) == small.stages[0].replicas


def test_a_configuration_switch_is_make_before_break():
    request = one_stage_request()
    plan, other = plan_at(request, 10.0), plan_at(request, 60.0)
    stage = plan.stages[0]
    assert stage.batch_size != other.stages[0].batch_size  # the premise: another configuration
    d = Deployment()
    d.apply(0.0, plan, initial=True)
    change = d.apply(50_000.0, other)
    assert change.switched_stages == (stage.stage,)
    ready = 50_000.0 + 1000.0 * (stage.startup_s + stage.load_time_s)
    old = [w for w in d.windows[stage.stage] if w.config == 0]
    assert all(w.stop_ms == ready for w in old)  # old replicas serve until the new ones are ready
    assert d.serving(stage.stage, ready - 1) == stage.replicas
    # the oracle reconfigures for free: ready and stopped at the decision time
    d2 = Deployment()
    d2.apply(0.0, plan, initial=True)
    d2.apply(50_000.0, other, instant=True)
    assert all(w.stop_ms == 50_000.0 for w in d2.windows[stage.stage] if w.config == 0)
    assert all(w.ready_ms == 50_000.0 for w in d2.windows[stage.stage] if w.config == 1)


def test_cost_is_charged_from_launch_to_the_end_of_the_last_batch():
    plan = plan_at(one_stage_request(), 10.0)
    d = Deployment()
    d.apply(0.0, plan, initial=True)
    name = plan.stages[0].stage
    per_hour = plan.stages[0].usd_per_hour
    ends = [-math.inf] * len(d.windows[name])
    none = MeteredBatches.empty()
    assert math.isclose(d.stage_cost_usd(name, d.schedule().stage(name), ends, none, 0.0, 3_600_000.0, 3_600_000.0),
                        per_hour)
    d.windows[name][0].stop_ms = 1_800_000.0
    ends[0] = 1_900_000.0  # its last batch ran past the stop: charged until it ended
    expected = per_hour / plan.stages[0].replicas * (1.9 / 3.6) + per_hour * (plan.stages[0].replicas - 1) / plan.stages[0].replicas
    assert math.isclose(d.stage_cost_usd(name, d.schedule().stage(name), ends, none, 0.0, 3_600_000.0, 3_600_000.0),
                        expected)

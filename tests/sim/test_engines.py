"""Simulator properties: the two engines agree exactly, requests are conserved, batching and timeouts
are honoured, near-zero load gives the sum of service times, and runs are deterministic."""

from __future__ import annotations

from tests.fixtures import assert_same_run, plan_of, random_plan, stage

import heapq

import numpy as np
import pytest

from planner.errors import SpecError
from planner.plan import Plan, ServiceCurve, StagePlan
from planner.sim import Engine, QueueMode, ServiceModel, SimConfig, simulate
from planner.sim import jit
from planner.sim.events import Arrival, EventKey, EventLoop, Kind, Waiting, run_events
from planner.sim.config import prepare, stage_draws
from planner.sim.engine import run_fast
from planner.sim.result import result_to_json
from planner.traces import Trace, poisson


@pytest.mark.parametrize("case", range(24))
def test_fast_engine_matches_event_loop_exactly(case):
    rng = np.random.default_rng(1000 + case)
    plan = random_plan(rng)
    trace = poisson(float(rng.uniform(20, 120)), 8.0, rng)
    config = SimConfig(seed=case, service=list(ServiceModel)[case % 3], queue_mode=list(QueueMode)[(case // 3) % 2],
                       request_timeout_ms=None if case % 4 < 2 else float(rng.uniform(30, 150)))
    prep = prepare(plan, trace, config)
    ref = run_events(prep)
    for use_jit in [False, True] if jit.AVAILABLE else [False]:
        assert_same_run(run_fast(prep, use_jit=use_jit), ref)


def test_heap_key_orders_time_then_kind_then_sequence():
    keys = [EventKey(5.0, Kind.WAKE, 0), EventKey(5.0, Kind.ARRIVAL, 1), EventKey(5.0, Kind.ARRIVAL, 2),
            EventKey(5.0, Kind.BATCH_DONE, 3), EventKey(4.0, Kind.WAKE, 4), EventKey(5.0, Kind.BATCH_DONE, 5)]
    heap = []
    for k in keys:
        heapq.heappush(heap, (k, None))
    popped = [heapq.heappop(heap)[0] for _ in keys]
    assert [(k.time_ms, Kind(k.priority), k.seq) for k in popped] == [
        (4.0, Kind.WAKE, 4), (5.0, Kind.BATCH_DONE, 3), (5.0, Kind.BATCH_DONE, 5), (5.0, Kind.ARRIVAL, 1),
        (5.0, Kind.ARRIVAL, 2), (5.0, Kind.WAKE, 0)]


def test_simultaneous_arrivals_join_the_queue_by_request_then_item_whatever_their_push_order():
    plan = plan_of(stage("a", batch=4, timeout_ms=1.0))
    loop = EventLoop(prepare(plan, Trace(np.array([0.0, 0.0, 0.0]), 1.0), SimConfig()))
    loop.arrived = [Arrival(0, 2, 0), Arrival(0, 0, 1), Arrival(0, 1, 0), Arrival(0, 0, 0)]
    loop.join_arrivals(5.0)
    assert list(loop.queues[0][0].waiting) == [Waiting(0, 0, 5.0), Waiting(1, 0, 5.0), Waiting(2, 1, 5.0),
                                               Waiting(3, 2, 5.0)]


def test_completion_before_arrival_at_same_instant_lets_the_freed_replica_take_the_newcomer():
    # Item 0 arrives at 0 and is served until 10 (deterministic); item 1 arrives exactly at 10.
    # With batch 2 and no timeout, the replica that frees at 10 takes item 1 at once.
    plan = plan_of(stage("a", batch=2, timeout_ms=0.0, p50_ms=10.0, p99_ms=10.0))
    trace = Trace(np.array([0.0, 10.0]), 20.0)
    for engine in Engine:
        r = simulate(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC, engine=engine, keep_detail=True))
        np.testing.assert_array_equal(r.detail[0].start_ms, [0.0, 10.0])


def _check_conservation(plan: Plan, trace: Trace, config: SimConfig) -> None:
    prep = prepare(plan, trace, config)
    result = simulate(plan, trace, config)
    assert result.summary.completed + result.summary.dropped == trace.requests
    index = {s.name: i for i, s in enumerate(prep.stages)}
    for s in result.stages:
        run = result.detail[index[s.stage]]
        served = run.batch >= 0
        assert s.items == run.request.size
        assert int(run.batch_items.sum()) == int(served.sum()) == s.items - s.dropped_items
        assert np.all(np.bincount(run.request, minlength=trace.requests)[np.unique(run.request)]
                      == stage_draws(prep, index[s.stage]).items_per_request[np.unique(run.request)])
    if config.request_timeout_ms is None:
        assert result.summary.dropped == 0
        for s in result.stages:
            expected = int(stage_draws(prep, index[s.stage]).items_per_request.sum())
            assert s.items == expected


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_requests_and_items_are_conserved(timeout):
    rng = np.random.default_rng(7)
    plan = plan_of(stage("a", batch=4, timeout_ms=5.0, replicas=2, p50_ms=8.0),
                   stage("b", after=("a",), fanout=2.5, batch=8, timeout_ms=10.0, replicas=3, p50_ms=6.0),
                   stage("c", after=("a",), replicas=2, p50_ms=9.0), stage("d", after=("b", "c"), batch=2, timeout_ms=3.0))
    trace = poisson(150.0, 30.0, rng)
    _check_conservation(plan, trace, SimConfig(seed=3, request_timeout_ms=timeout, keep_detail=True))


def test_near_zero_load_latency_is_the_sum_of_service_times_on_the_longest_path():
    plan = plan_of(stage("a", p50_ms=7.0, p99_ms=9.0), stage("b", after=("a",), p50_ms=5.0, p99_ms=6.0),
                   stage("c", after=("a",), p50_ms=11.0, p99_ms=15.0), stage("d", after=("b", "c"), p50_ms=2.0))
    trace = Trace(np.arange(50) * 1000.0, 50_000.0)  # one request a second, far apart
    r = simulate(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC))
    np.testing.assert_allclose(r.latency_ms, 7.0 + 11.0 + 2.0, rtol=1e-12)


def test_near_zero_load_latency_adds_each_batch_timeout_and_partial_batch_service():
    plan = plan_of(stage("a", batch=4, timeout_ms=3.0, p50_ms=7.0, per_item_ms=1.0),
                   stage("b", after=("a",), batch=8, timeout_ms=5.0, p50_ms=4.0, per_item_ms=0.5))
    trace = Trace(np.arange(20) * 500.0, 10_000.0)
    for engine in Engine:
        r = simulate(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC, engine=engine))
        # a lone item waits the full timeout, then is served at the batch-1 profile point
        np.testing.assert_allclose(r.latency_ms, 3.0 + 7.0 + 5.0 + 4.0, rtol=1e-12)


def test_near_zero_load_lognormal_latency_has_the_profile_median():
    plan = plan_of(stage("a", p50_ms=10.0, p99_ms=30.0), stage("b", after=("a",), p50_ms=5.0, p99_ms=5.0))
    trace = Trace(np.arange(4000) * 1000.0, 4_000_000.0)
    r = simulate(plan, trace, SimConfig(seed=1, service=ServiceModel.LOGNORMAL))
    assert np.median(r.latency_ms) == pytest.approx(15.0, rel=0.03)
    assert np.quantile(r.latency_ms - 5.0, 0.99) == pytest.approx(30.0, rel=0.1)


@pytest.mark.parametrize("mode", list(QueueMode))
def test_a_batch_never_exceeds_its_size_and_replicas_never_overlap(mode):
    rng = np.random.default_rng(11)
    plan = plan_of(stage("a", batch=8, timeout_ms=4.0, replicas=3, p50_ms=20.0, per_item_ms=2.0),
                   stage("b", after=("a",), fanout=3.0, batch=4, timeout_ms=2.0, replicas=2, p50_ms=5.0))
    trace = poisson(400.0, 20.0, rng)
    r = simulate(plan, trace, SimConfig(seed=2, queue_mode=mode, keep_detail=True))
    for s, run in zip(r.stages, r.detail):
        assert run.batch_items.max() <= s.batch_size
        assert s.max_batch_size <= s.batch_size
        # at most `replicas` batches in service at any instant
        events = np.concatenate([np.c_[run.batch_start_ms, np.ones(run.batch_start_ms.size)],
                                 np.c_[run.batch_end_ms, -np.ones(run.batch_end_ms.size)]])
        events = events[np.lexsort((events[:, 1], events[:, 0]))]  # ends before starts at the same time
        assert np.cumsum(events[:, 1]).max() <= s.replicas


def test_batch_timeout_is_honoured_when_replicas_are_free():
    rng = np.random.default_rng(5)
    timeout = 6.0
    plan = plan_of(stage("a", batch=8, timeout_ms=timeout, replicas=50, p50_ms=5.0))
    trace = poisson(200.0, 20.0, rng)
    r = simulate(plan, trace, SimConfig(seed=1, keep_detail=True))
    run = r.detail[0]
    first = np.array([run.ready_ms[run.batch == k].min() for k in range(run.batch_items.size)])
    oldest_wait = run.batch_start_ms - first
    partial = run.batch_items < 8
    # with replicas always free: a partial batch leaves exactly at the timeout, a full one no later
    np.testing.assert_allclose(oldest_wait[partial], timeout, atol=1e-9)
    assert np.all(oldest_wait[~partial] <= timeout + 1e-9)
    # and it takes every item that arrived in the meantime (none is left behind in a partial batch)
    for k in np.flatnonzero(partial)[:50]:
        waiting = (run.ready_ms <= run.batch_start_ms[k]) & ((run.batch > k) | (run.batch < 0))
        assert not waiting.any()


def test_request_timeout_is_honoured_and_drops_are_counted():
    rng = np.random.default_rng(3)
    timeout = 80.0
    plan = plan_of(stage("a", batch=2, timeout_ms=2.0, replicas=1, p50_ms=12.0, p99_ms=30.0),
                   stage("b", after=("a",), replicas=1, p50_ms=8.0))
    trace = poisson(150.0, 20.0, rng)  # overloaded: stage a serves ~150 items/s at best
    r = simulate(plan, trace, SimConfig(seed=4, request_timeout_ms=timeout, keep_detail=True))
    assert r.summary.dropped > 0
    for run in r.detail:
        served = run.batch >= 0
        deadline = trace.arrival_ms[run.request] + timeout
        assert np.all(run.start_ms[served] < deadline[served])  # nothing starts after its deadline
    dropped = np.isnan(r.latency_ms)
    assert dropped.sum() == r.summary.dropped
    assert r.summary.slo_attainment <= 1 - dropped.mean() + 1e-12
    # a generous timeout drops nothing and changes nothing
    loose = simulate(plan, trace, SimConfig(seed=4, request_timeout_ms=1e12))
    none = simulate(plan, trace, SimConfig(seed=4))
    np.testing.assert_array_equal(loose.latency_ms, none.latency_ms)


def test_same_seed_same_bytes_other_seed_other_result():
    rng = np.random.default_rng(9)
    plan = plan_of(stage("a", batch=4, timeout_ms=5.0, replicas=2), stage("b", after=("a",), fanout=1.5, replicas=2))
    trace = poisson(100.0, 20.0, rng)
    one = result_to_json(simulate(plan, trace, SimConfig(seed=5)))
    two = result_to_json(simulate(plan, trace, SimConfig(seed=5)))
    other = result_to_json(simulate(plan, trace, SimConfig(seed=6)))
    assert one == two
    assert one != other


def test_fractional_fanout_sends_that_many_items_on_average():
    plan = plan_of(stage("a", p50_ms=1.0), stage("b", after=("a",), fanout=2.4, replicas=4, p50_ms=1.0),
                   stage("c", after=("a",), fanout=0.3, p50_ms=1.0))
    trace = poisson(50.0, 200.0, np.random.default_rng(1))
    r = simulate(plan, trace, SimConfig(seed=1))
    by = {s.stage: s for s in r.stages}
    assert by["b"].items / trace.requests == pytest.approx(2.4, rel=0.03)
    assert by["c"].items / trace.requests == pytest.approx(0.3, rel=0.05)
    assert r.summary.dropped == 0


def test_central_queue_waits_less_than_per_replica_queues():
    trace = poisson(300.0, 100.0, np.random.default_rng(2))
    plan = plan_of(stage("a", replicas=4, p50_ms=10.0, p99_ms=25.0))
    central = simulate(plan, trace, SimConfig(seed=1, queue_mode=QueueMode.CENTRAL))
    split = simulate(plan, trace, SimConfig(seed=1, queue_mode=QueueMode.PER_REPLICA))
    assert central.stages[0].mean_wait_ms < split.stages[0].mean_wait_ms


def test_plan_without_a_service_point_for_its_batch_size_is_rejected_with_a_fix():
    bad = stage("a", batch=4)
    bad = StagePlan(**{**bad.__dict__, "service_ms_by_batch": ServiceCurve((1,), (1.0,), (2.0,))})
    with pytest.raises(SpecError, match="service_ms_by_batch has no entry for batch_size 4.*pipeplan plan"):
        simulate(plan_of(bad), Trace(np.array([0.0]), 1.0))


def test_utilisation_matches_offered_work():
    # deterministic service 5 ms, 100 rps on 2 replicas: utilisation = 100 * 5 / 1000 / 2 = 0.25
    trace = poisson(100.0, 400.0, np.random.default_rng(4))
    r = simulate(plan_of(stage("a", replicas=2, p50_ms=5.0)), trace, SimConfig(service=ServiceModel.DETERMINISTIC))
    assert r.stages[0].utilization == pytest.approx(0.25 * trace.mean_rps / 100.0, rel=1e-3)
    # Little's law: mean queue length = arrival rate x mean wait
    s = r.stages[0]
    assert s.mean_queue_length == pytest.approx(trace.requests / r.span_ms * s.mean_wait_ms, rel=1e-9)


def test_a_partial_batch_between_profiled_sizes_is_served_at_the_interpolated_time():
    # profiled at 1, 2, 4, 8 with p50 = 10 + 2 (b - 1): a batch of 3 is served in 14 ms (ServiceCurve.at),
    # halfway between 12 ms at 2 and 16 ms at 4, not in the 16 ms of the next profiled size
    plan = plan_of(stage("a", batch=8, timeout_ms=5.0, p50_ms=10.0, p99_ms=10.0, per_item_ms=2.0))
    trace = Trace(np.array([0.0, 0.0, 0.0]), 10.0)
    assert plan.stages[0].service_ms_by_batch.at(3).p50_ms == 14.0
    for engine in Engine:
        r = simulate(plan, trace, SimConfig(service=ServiceModel.DETERMINISTIC, engine=engine))
        np.testing.assert_allclose(r.latency_ms, 5.0 + 14.0, rtol=1e-12)

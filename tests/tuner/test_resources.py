"""Resource classes: the catalog format, spot preemptions, serverless cold starts and spill, the burst policy."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from planner.errors import SpecError
from planner.resources import expand_profiles, vm_hardware
from planner.sim import kernel
from planner.sim.config import SimConfig
from planner.sim.schedule import (Preemptible, constant_schedule,
                                  simulate_schedule, with_preemptions)
from planner.spec import Hardware, HardwareCatalog, ResourceClass
from planner.tuner import PlanBook, PolicyKind, TuneSettings, compare, tune
from planner.tuner.registry import available_kinds, default_policy
from tests.fixtures import FUNCTION_ENTRY, SPOT_ENTRY, burst_trace, classes_request, one_stage_request, plan_at

SPOT, FUNCTION = SPOT_ENTRY, FUNCTION_ENTRY


def test_an_entry_without_class_is_on_demand_and_existing_catalogs_are_unchanged():
    h = Hardware.model_validate({"name": "cpu", "kind": "cpu", "cores": 2, "usd_per_hour": 0.1,
                                 "spot_usd_per_hour": 0.04})
    assert h.resource_class is ResourceClass.ON_DEMAND and h.preemptions_per_ms == 0.0
    request = one_stage_request()
    assert expand_profiles(request.profiles, request.catalog) is request.profiles


def test_class_fields_are_checked():
    spot = Hardware.model_validate(SPOT)
    assert spot.resource_class is ResourceClass.SPOT and math.isclose(spot.preemptions_per_ms, 1 / 3.6e6)
    fn = Hardware.model_validate(FUNCTION)
    assert math.isclose(fn.usd_per_hour, 0.36)  # busy all hour at usd_per_second
    with pytest.raises(ValidationError, match="needs \\['replacement_s'\\]"):
        Hardware.model_validate({k: v for k, v in SPOT.items() if k != "replacement_s"})
    with pytest.raises(ValidationError, match="class on_demand but sets \\['cold_start_ms'\\]"):
        Hardware.model_validate({"name": "x", "kind": "cpu", "cores": 1, "usd_per_hour": 1, "cold_start_ms": 10})
    with pytest.raises(ValidationError, match="usd_per_second or usd_per_request"):
        Hardware.model_validate({**{k: v for k, v in FUNCTION.items() if k not in ("usd_per_second", "usd_per_request")},
                                 "usd_per_hour": 0.3})
    with pytest.raises(ValidationError, match="profile_as 'nope'"):
        HardwareCatalog.model_validate({"schema_version": 1, "hardware": [{**SPOT, "profile_as": "nope"}]})


def test_profile_as_copies_the_rows_and_serverless_is_no_base():
    request = classes_request()
    names = {r.hardware for r in request.profiles.rows}
    assert names == {"cpu", "cpu-spot", "fn"}
    assert vm_hardware(request.spec.model_copy(update={"hardware": None}), request.catalog) == ("cpu", "cpu-spot")


def _spot_plan(rps: float):
    request = classes_request()
    return make_spot(request, rps)


def make_spot(request, rps):
    spot = request.spec.model_copy(update={"hardware": ("cpu-spot",), "arrival_rps": rps})
    from planner.optimize import make_plan
    return make_plan(replace(request, spec=spot))


def test_preemptions_are_seeded_poisson_and_replaced_after_the_delay():
    plan = _spot_plan(20.0)
    schedule = constant_schedule(plan)
    model = Preemptible(rate_per_ms=10 / 3.6e6, replacement_ms=60_000.0)  # 10 per replica-hour
    hours = 10.0
    a, drawn = with_preemptions(schedule, {plan.stages[0].stage: (model,)}, hours * 3.6e6, seed=3)
    b, again = with_preemptions(schedule, {plan.stages[0].stage: (model,)}, hours * 3.6e6, seed=3)
    assert a == b and drawn == again
    replicas = plan.stages[0].replicas
    expected = 10 * hours * replicas  # a little less: replicas are down during replacement
    assert 0.7 * expected < drawn.count < 1.1 * expected
    windows = a.stages[0].replicas
    assert len(windows) == replicas + drawn.count
    replacements = [w for w in windows if w.launch_ms > 0]
    assert all(w.ready_ms == w.launch_ms + 60_000.0 for w in replacements)
    stopped_at = sorted(w.stop_ms for w in windows if math.isfinite(w.stop_ms))
    assert stopped_at == sorted(w.launch_ms for w in replacements)  # each preemption launches its replacement


def test_preemptions_cost_attainment_in_simulation_and_the_formula_says_so():
    from planner.traces import poisson

    plan = _spot_plan(20.0)
    stage = plan.stages[0]
    trace = poisson(20.0, 3600.0, np.random.default_rng(5))
    config = SimConfig(seed=1)
    clean, _ = simulate_schedule(plan, constant_schedule(plan), trace, config)
    model = Preemptible(rate_per_ms=6 / 3.6e6, replacement_ms=120_000.0)  # harsh: 6/h, 2 min to replace
    preempted, drawn = with_preemptions(constant_schedule(plan), {stage.stage: (model,)}, trace.duration_ms, seed=2)
    hit, _ = simulate_schedule(plan, preempted, trace, config)
    assert drawn.count > 0 and hit.summary.slo_attainment < clean.summary.slo_attainment
    risk = plan.risk  # the catalog's 1/h, 60 s: small, but not zero
    assert [s.stage for s in risk.stages] == [stage.stage]
    q = 1.0 * 60 / 3600 / (1 + 60 / 3600)
    assert math.isclose(risk.stages[0].down_share, q)
    assert 0 < risk.stages[0].degraded_share <= 1 - (1 - q) ** stage.replicas + 1e-12
    assert plan_at(one_stage_request(), 20.0).risk is None


def _kernel(arr, windows, cold_ms, warm_ms, spill_ms, service_ms=10.0, vm_batch=1, vm_timeout_ms=0.0):
    """Two configurations (0: a VM of batch ``vm_batch``, 1: serverless, batch 1), deterministic
    service ``service_ms`` at any batch; (starts, owners)."""
    n = len(arr)
    takes, starts, ends, owner = [0] * n, [0.0] * n, [0.0] * n, [0] * n
    w = len(windows)
    width = vm_batch + 1
    base = [0.0] + [service_ms] * vm_batch + [0.0] + [service_ms] * vm_batch
    count = kernel.fifo_windows(
        arr, [], False, [], 0, 1, kernel.DETERMINISTIC, [vm_batch, 1], [vm_timeout_ms, 0.0], base,
        [0.0] * (2 * width), width, [c for c, _ in windows], [r for _, r in windows], [math.inf] * w,
        sorted(range(w), key=lambda i: (windows[i][1], i)), [0.0, cold_ms], [0.0, warm_ms], [0.0, spill_ms],
        takes, starts, ends, owner, [], [0.0] * w, [0.0] * w, [0] * w)
    return starts[:count], owner[:count]


def test_cold_start_is_paid_on_first_use_and_after_keep_warm():
    # one serverless instance only: first batch cold, the next warm, one after a long idle cold again
    starts, _ = _kernel([0.0, 20.0, 10_000.0], [(1, 0.0)], cold_ms=500.0, warm_ms=1000.0, spill_ms=0.0)
    assert starts == [500.0, 510.0, 10_500.0]  # 20 waits for the warm instance (busy to 510)


def test_the_queue_spills_to_serverless_only_when_the_head_would_wait_longer_than_spill():
    # a VM (window 0) and a warm-able serverless instance (window 1); three requests at once
    arr = [0.0, 0.0, 0.0, 100.0]
    starts, owner = _kernel(arr, [(0, 0.0), (1, 0.0)], cold_ms=0.0, warm_ms=1000.0, spill_ms=15.0)
    # the VM serves 0 at 0; request 1 would wait 10 ms for it (< 15: waits); request 2 would wait 20 (spills)
    assert owner == [0, 0, 1, 0] and starts == [0.0, 10.0, 0.0, 100.0]
    # with every term 0 the rule is the plain one: an idle instance takes the next head at once
    _, plain = _kernel(arr, [(0, 0.0), (1, 0.0)], cold_ms=0.0, warm_ms=0.0, spill_ms=0.0)
    assert plain[:2] == [0, 1]


def test_a_vm_forming_a_batch_is_not_a_vm_the_head_waits_for():
    # an idle VM with batch 4 and a 50 ms timeout, spill after 15 ms: lone requests wait for the
    # batch on the VM (its planned batching delay), they do not spill
    arr = [0.0, 200.0]
    starts, owner = _kernel(arr, [(0, 0.0), (1, 0.0)], cold_ms=0.0, warm_ms=1000.0, spill_ms=15.0, vm_batch=4,
                            vm_timeout_ms=50.0)
    assert owner == [0, 0] and starts == [50.0, 250.0]
    # a VM busy for 100 ms more than the threshold: the head spills
    starts, owner = _kernel([0.0, 0.0, 0.0, 0.0, 1.0], [(0, 0.0), (1, 0.0)], cold_ms=0.0, warm_ms=1000.0,
                            spill_ms=15.0, service_ms=100.0, vm_batch=4, vm_timeout_ms=50.0)
    assert owner == [0, 1] and starts == [0.0, 1.0]


def test_burst_needs_a_serverless_entry_and_absorbs_a_burst_the_vms_cannot():
    assert PolicyKind.BURST not in available_kinds(one_stage_request())
    with pytest.raises(SpecError, match="serverless entry"):
        tune(PlanBook(one_stage_request()), burst_trace(), PolicyKind.BURST)
    request = classes_request()
    assert PolicyKind.BURST in available_kinds(request)
    results = {r.summary.policy: r.summary for r in compare(PlanBook(request), burst_trace(),
                                                             (PolicyKind.ORACLE, PolicyKind.PREDICTIVE,
                                                              PolicyKind.BURST), TuneSettings(seed=0))}
    burst, predictive = results["burst"], results["predictive"]
    assert burst.serverless_share > 0 and burst.serverless_cost_usd > 0
    assert burst.slo_attainment > predictive.slo_attainment
    assert burst.preemptions == 0  # the base is on-demand


def test_the_default_policy_is_burst_with_serverless_hardware_else_predictive():
    assert default_policy(one_stage_request()) is PolicyKind.PREDICTIVE
    assert default_policy(classes_request()) is PolicyKind.BURST


def test_the_burst_base_is_sized_for_the_break_even_quantile_of_per_second_rates():
    from planner.tuner.burst import BurstPolicy, break_even_quantile, serverless_book
    from planner.tuner.forecast import interval_peaks_rps
    from planner.tuner.policies import Observation
    from planner.tuner.registry import make_policy
    from planner.tuner.settings import BaseSizing, BurstSettings, PolicySettings

    request = classes_request()
    book = PlanBook(request)
    vm, pool = book.plan(20.0), serverless_book(book).plan(20.0)
    q = break_even_quantile(vm, pool, request.catalog, request.spec.max_utilization)
    # c_vm / c_fn by hand: USD/h per request/s on VMs (at the cap) against functions (per busy second + per item)
    hw = {h.name: h for h in request.catalog.hardware}
    c_vm = sum(s.usd_per_hour * s.fanout / (request.spec.max_utilization * s.capacity_items_per_s) for s in vm.stages)
    c_fn = sum(3600 * s.fanout * (hw[s.hardware].usd_per_second * s.service_ms_by_batch.p50_ms[0] / 1000
                                  + (hw[s.hardware].usd_per_request or 0.0)) for s in pool.stages)
    assert 0.0 < q < 1.0 and q == pytest.approx(1.0 - c_vm / c_fn)
    counts = np.zeros(300)
    counts[::10] = 200.0  # a one-second burst every 10 s over a quiet base
    counts += 5.0
    policy = make_policy(PolicyKind.BURST, book, counts, PolicySettings())
    first = float(interval_peaks_rps(counts, 10, PolicySettings().peak_window_s)[0])  # the initial plans' rate
    expected = break_even_quantile(book.plan(first), serverless_book(book).plan(first), request.catalog,
                                   request.spec.max_utilization)
    assert isinstance(policy, BurstPolicy) and policy.base_quantile == pytest.approx(expected)
    for k in range(12):
        arrivals = np.concatenate([np.sort(np.random.default_rng(k).uniform(1000.0 * t, 1000.0 * (t + 1), int(c)))
                                   for t, c in enumerate(counts[10 * k:10 * (k + 1)], start=10 * k)])
        policy.tell(Observation(10_000.0 * k, 10_000.0 * (k + 1), arrivals))
    assert policy.base.forecast_rate_rps(7.0) == pytest.approx(5.0)  # the bursts (1 s in 10) do not move it
    forecast = make_policy(PolicyKind.BURST, book, counts, PolicySettings(burst=BurstSettings(base=BaseSizing.FORECAST)))
    assert forecast.base_quantile == 0.5


def test_a_spot_base_is_preempted_in_the_replay():
    request = classes_request()
    spot = replace(request, spec=request.spec.model_copy(update={"hardware": ("cpu-spot",)}))
    catalog = spot.catalog.model_copy(update={"hardware": tuple(
        h.model_copy(update={"preemptions_per_hour": 100.0}) if h.name == "cpu-spot" else h
        for h in spot.catalog.hardware)})
    result = tune(PlanBook(replace(spot, catalog=catalog)), burst_trace(), PolicyKind.STATIC_PEAK)
    assert result.summary.preemptions > 0

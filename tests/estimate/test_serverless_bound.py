"""Serverless options: max_concurrency bounds the instances, and each is priced at what it bills at its load."""

from __future__ import annotations

import math

from planner.estimate.candidates import build_candidates
from planner.recheck import recheck
from tests.fixtures import FUNCTION_ENTRY, classes_request, plan_on


def _fn_options(rps: float):
    request = classes_request()
    spec = request.spec.model_copy(update={"hardware": ("fn",), "arrival_rps": rps})
    return [o for s in build_candidates(spec, request.catalog, request.profiles).stages for o in s.options]


def test_no_option_runs_more_functions_than_the_entrys_max_concurrency():
    cap = FUNCTION_ENTRY["max_concurrency"]  # 8
    assert {o.replicas for o in _fn_options(10.0)} == {4}  # idle instances are free: the scan's fastest is kept
    assert max(o.replicas for o in _fn_options(120.0)) == cap  # the scan stops at the cap, not at max_replicas (64)
    assert _fn_options(240.0) == []  # a load only more than 8 instances carry: no function option


def test_a_serverless_option_costs_what_it_bills_at_the_planned_load():
    for rps in (10.0, 120.0):
        for o in _fn_options(rps):
            busy_instances = o.load_items_per_s / (o.capacity_items_per_s / o.replicas)  # = utilization x replicas
            billed = 3600.0 * (FUNCTION_ENTRY["usd_per_second"] * busy_instances
                               + FUNCTION_ENTRY["usd_per_request"] * o.load_items_per_s)
            assert math.isclose(o.usd_per_hour, billed, rel_tol=1e-12)
            assert math.isclose(busy_instances, o.utilization * o.replicas, rel_tol=1e-9)
    # ten times the load bills ten times as much; a VM's replicas cost the same busy or idle
    low, high = (min(o.usd_per_hour for o in _fn_options(r)) for r in (10.0, 100.0))
    assert math.isclose(high / low, 10.0, rel_tol=0.05)


def test_a_plan_with_a_serverless_stage_passes_the_recheck_at_its_billed_cost():
    request = classes_request()
    plan = plan_on(request, "fn", 10.0)
    assert plan.stages[0].usd_per_hour < FUNCTION_ENTRY["usd_per_second"] * 3600.0  # below busy-all-hour
    spec = request.spec.model_copy(update={"hardware": ("fn",), "arrival_rps": 10.0})
    assert recheck(plan, spec, request.catalog, request.profiles) == []


def test_a_capped_serverless_entry_keeps_its_fewer_instance_options_for_the_unit_limit():
    # Priced per use, a function's options cost the same at any instance count, so cost no longer
    # orders their units: the pruning must compare the instances themselves on a capped kind, or
    # only the largest counts survive and the unit row is unsatisfiable (9 units needed of 6).
    from dataclasses import replace

    from planner.optimize import make_plan
    from planner.resources import expand_profiles
    from planner.spec import HardwareCatalog
    from tests.fixtures import model_misranked_request

    base = model_misranked_request()
    fn = {"name": "fn", "kind": "cpu", "cores": 2, "class": "serverless", "profile_as": "cpu",
          "usd_per_second": 0.0001, "usd_per_request": 1e-6, "cold_start_ms": 5.0, "max_concurrency": 16,
          "keep_warm_s": 60, "max_units": 6}
    catalog = HardwareCatalog.model_validate({"schema_version": 1, "hardware": [
        *(h.model_dump(by_alias=True, exclude_none=True) for h in base.catalog.hardware), fn]})
    spec = base.spec.model_copy(update={"hardware": ("fn",), "slo_ms": base.spec.slo_ms * 3})
    request = replace(base, spec=spec, catalog=catalog, profiles=expand_profiles(base.profiles, catalog))
    plan = make_plan(request)
    assert sum(s.replicas for s in plan.stages) <= 6 and {s.hardware for s in plan.stages} == {"fn"}

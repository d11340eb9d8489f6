"""A serverless entry's max_concurrency bounds the replicas (instances) the planner may give a stage."""

from __future__ import annotations

from planner.estimate.candidates import build_candidates
from tests.fixtures import FUNCTION_ENTRY, classes_request


def _fn_replicas(rps: float) -> set[int]:
    request = classes_request()
    spec = request.spec.model_copy(update={"hardware": ("fn",), "arrival_rps": rps})
    return {o.replicas for s in build_candidates(spec, request.catalog, request.profiles).stages for o in s.options}


def test_no_option_runs_more_functions_than_the_entrys_max_concurrency():
    cap = FUNCTION_ENTRY["max_concurrency"]  # 8
    assert _fn_replicas(10.0) == {1, 2, 3, 4}  # below the cap: the usual scan
    assert max(_fn_replicas(120.0)) == cap  # the scan stops at the cap, not at max_replicas (64)
    assert _fn_replicas(240.0) == set()  # a load only more than 8 instances carry: no function option

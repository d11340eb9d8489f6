"""Huge or tiny finite inputs end in a clear infeasibility, never a hang, OverflowError or ZeroDivisionError."""

from __future__ import annotations

import pytest

from planner.errors import InfeasibleError
from planner.optimize import PlanRequest, make_plan
from planner.limits import MAX_ARRIVAL_RPS, MAX_FANOUT
from profiler.schema import ProfileRow, ProfileTable
from tests.fixtures import linear_profile, make_catalog, make_spec

CATALOG = make_catalog([{"name": "cpu", "kind": "cpu", "cores": 2, "usd_per_hour": 0.1}])


def _request(arrival_rps=10.0, fanout=1.0, max_utilization=0.9, tiny_throughput=False) -> PlanRequest:
    stages = [{"name": f"s{i}", "model": f"m{i}", "after": [f"s{i - 1}"] if i else [],
               "fanout": fanout if i == 1 else 1.0} for i in range(4)]
    rows = [r for i in range(4) for r in linear_profile(f"m{i}", "v0", "cpu", [1, 2, 4], 2.0, 1.0, 0.9)]
    if tiny_throughput:
        r = rows[0]
        rows[0] = ProfileRow(r.model, r.variant, r.hardware, r.batch_size, r.latency_p50_ms, r.latency_p99_ms, 1e-300,
                             r.accuracy)
        rows = [row for row in rows if not (row.model == "m0" and row.batch_size > 1)]
    spec = make_spec(stages=stages, slo_ms=500.0, arrival_rps=arrival_rps, max_utilization=max_utilization,
                     batch_sizes=[1] if tiny_throughput else [1, 2, 4], max_replicas=64)
    return PlanRequest(spec=spec, catalog=CATALOG, profiles=ProfileTable(tuple(rows)))


# The spec refuses arrival_rps above MAX_ARRIVAL_RPS and fanout above MAX_FANOUT (tests/cli/test_edge.py);
# the largest values it accepts must still end in a clear infeasibility, fast.
@pytest.mark.parametrize("kwargs", [
    {"arrival_rps": MAX_ARRIVAL_RPS}, {"fanout": MAX_FANOUT}, {"arrival_rps": MAX_ARRIVAL_RPS, "fanout": MAX_FANOUT},
    {"max_utilization": 1e-9}, {"tiny_throughput": True}],
    ids=["arrival_rps=max", "fanout=max", "both=max", "max_utilization=1e-9", "throughput=1e-300"])
def test_extreme_inputs_are_infeasible_with_a_message(kwargs):
    with pytest.raises(InfeasibleError) as info:
        make_plan(_request(**kwargs))
    assert str(info.value)

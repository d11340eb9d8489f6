"""Known queueing results reproduced within a confidence band (independent replications).

Waiting time in queue, batch size 1, central FIFO:
M/M/1: Wq = rho / (mu - lambda);  M/D/1: Wq = rho / (2 mu (1 - rho));  M/M/c: Wq = C(c, a) / (c mu - lambda).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.estimate.latency import erlang_c
from planner.sim import ServiceModel, SimConfig, simulate
from planner.traces import poisson
from tests.fixtures import plan_of, stage

REPLICATIONS = 8
DURATION_S = 60.0


def _mean_waits(rate_rps: float, mean_service_ms: float, replicas: int, service: ServiceModel) -> np.ndarray:
    # EXPONENTIAL uses the profile p50 as the median: mean = p50 / ln 2.
    p50 = mean_service_ms * math.log(2.0) if service is ServiceModel.EXPONENTIAL else mean_service_ms
    plan = plan_of(stage("s", replicas=replicas, p50_ms=p50, p99_ms=p50))
    waits = []
    for rep in range(REPLICATIONS):
        trace = poisson(rate_rps, DURATION_S, np.random.default_rng(100 + rep))
        waits.append(simulate(plan, trace, SimConfig(seed=rep, service=service)).stages[0].mean_wait_ms)
    return np.array(waits)


def _assert_in_band(waits: np.ndarray, expected: float) -> None:
    mean = waits.mean()
    half_width = 4.0 * waits.std(ddof=1) / math.sqrt(waits.size)  # ~4 sigma: a false alarm is very rare
    assert abs(mean - expected) <= half_width + 0.01 * expected, (mean, expected, half_width)


def test_mm1_mean_wait():
    lam, mean_s = 0.7, 1.0  # per ms; rho = 0.7
    waits = _mean_waits(lam * 1000, mean_s, 1, ServiceModel.EXPONENTIAL)
    _assert_in_band(waits, lam * mean_s / (1 / mean_s - lam))


def test_md1_mean_wait():
    lam, mean_s = 0.8, 1.0
    rho = lam * mean_s
    waits = _mean_waits(lam * 1000, mean_s, 1, ServiceModel.DETERMINISTIC)
    _assert_in_band(waits, rho / (2 * (1 / mean_s) * (1 - rho)))


@pytest.mark.parametrize("servers", [2, 4])
def test_mmc_mean_wait(servers):
    mean_s = 1.0
    lam = 0.75 * servers / mean_s
    waits = _mean_waits(lam * 1000, mean_s, servers, ServiceModel.EXPONENTIAL)
    _assert_in_band(waits, erlang_c(servers, lam * mean_s) / (servers / mean_s - lam))

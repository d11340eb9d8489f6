"""The latency model of one pipeline stage: pure functions, times in milliseconds.

A stage is one central FIFO queue feeding ``replicas`` identical servers with dynamic batching: a
free replica takes up to ``batch_size`` queued items at once if that many wait, otherwise it waits
until the oldest queued item has waited ``batch_timeout_ms`` (0 = take what is there). Its p99
latency, as seen by one pipeline request, is the sum of three terms:

1. **Batch fill** ``fill_ms = batch_timeout_ms``. The first item of a batch that finds an idle
   replica waits at most the timeout for the batch to fill; later items wait less. The planner sets
   the timeout to a quantile of the time that ``batch_size - 1`` further Poisson arrivals take at the
   stage's load (a Gamma(b-1, rate) quantile), so the bound is tight at the planned load.
2. **Queueing** ``wait_ms``: batches are treated as customers of a GI/G/c queue with c = replicas
   (the Allen-Cunneen approximation): the probability of waiting is Erlang C at utilisation rho,
   the conditional wait is roughly exponential with mean
   ``(ca2 + cs2) / 2 * E[S] / (c * (1 - rho))``, so the q-quantile wait is that mean times
   ``ln(C / (1 - q))`` when C > 1 - q, else 0. For Poisson arrivals and exponential service this is
   exact M/M/c. Batches of b items arriving as a renewal process of rate lambda have
   ``ca2 = cv^2 / b``; a request fanning out into k items makes arrivals k times burstier.
   Service variability ``cs2`` is fitted from the profile's p50 and p99 (lognormal).
3. **Service** ``service_ms = latency_p99_ms`` of a full batch from the profile.

Partial batches (the timeout fired first) are served at the full batch's cost, so the model is
conservative: the effective throughput of a replica is ``throughput_rps * E[batch] / batch_size``,
with ``E[batch] = E[min(b, 1 + Poisson(lambda * timeout))]``. A request whose stage sees k > 1
items completes when all k are done, so each term is taken at the item quantile ``q ** (1 / k)``.
The end-to-end p99 is the longest path of stage p99s through the DAG (a conservative sum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from scipy import stats

Z_99 = 2.3263478740408408  # standard normal 0.99 quantile, for the lognormal fit


@dataclass(frozen=True)
class StageLatency:
    """The three p99 terms of one stage, milliseconds."""

    fill_ms: float
    wait_ms: float
    service_ms: float

    @property
    def total_ms(self) -> float:
        return self.fill_ms + self.wait_ms + self.service_ms


def erlang_c(servers: int, offered_erlangs: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C); 1.0 when unstable."""
    if offered_erlangs <= 0:
        return 0.0
    if offered_erlangs >= servers:
        return 1.0
    blocking = 1.0  # Erlang B by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))
    for k in range(1, servers + 1):
        blocking = offered_erlangs * blocking / (k + offered_erlangs * blocking)
    rho = offered_erlangs / servers
    return blocking / (1.0 - rho * (1.0 - blocking))


def item_quantile(fanout: float, quantile: float = 0.99) -> float:
    """The per-item quantile whose k-fold maximum is the request quantile (k = fanout >= 1)."""
    return quantile ** (1.0 / max(1.0, fanout))


@lru_cache(maxsize=65536)
def fill_time_ms(batch_size: int, rate_per_ms: float, quantile: float) -> float:
    """Quantile of the time for ``batch_size - 1`` more Poisson arrivals at ``rate_per_ms``."""
    if batch_size <= 1:
        return 0.0
    return float(stats.gamma.ppf(quantile, a=batch_size - 1, scale=1.0 / rate_per_ms))


@lru_cache(maxsize=65536)
def expected_batch(batch_size: int, rate_per_ms: float, timeout_ms: float) -> float:
    """E[min(b, 1 + N)], N ~ Poisson(rate * timeout): mean batch size when the queue starts empty."""
    if batch_size <= 1:
        return 1.0
    mean = rate_per_ms * timeout_ms
    if mean <= 0.0:
        return 1.0
    log_mean = math.log(mean)
    partial = below = 0.0
    for k in range(batch_size - 1):  # P(N = k) in log space: no overflow for large means
        pmf = math.exp(-mean + k * log_mean - math.lgamma(k + 1))
        partial += pmf * (k + 1)
        below += pmf
    return partial + batch_size * max(0.0, 1.0 - below)


def service_scv(latency_p50_ms: float, latency_p99_ms: float) -> float:
    """Squared coefficient of variation of a lognormal with this median and p99."""
    sigma = math.log(latency_p99_ms / latency_p50_ms) / Z_99
    return math.expm1(sigma * sigma)


def wait_quantile_ms(
    servers: int,
    utilization: float,
    mean_service_ms: float,
    arrival_scv: float,
    service_scv_: float,
    quantile: float,
) -> float:
    """Allen-Cunneen GI/G/c waiting-time quantile; infinite when utilisation >= 1."""
    if utilization >= 1.0:
        return math.inf
    p_wait = erlang_c(servers, servers * utilization)
    if p_wait <= 1.0 - quantile:
        return 0.0
    mean_conditional = (arrival_scv + service_scv_) / 2.0 * mean_service_ms / (servers * (1.0 - utilization))
    return mean_conditional * math.log(p_wait / (1.0 - quantile))


@dataclass(frozen=True)
class ServicePoint:
    """What the latency model needs from one profile row."""

    batch_size: int
    latency_p50_ms: float
    latency_p99_ms: float
    throughput_rps: float


@dataclass(frozen=True)
class StageQueue:
    """One stage's queue at a given load, batch timeout and burstiness; evaluate it per replica count.

    Everything that does not depend on the replica count is computed once here, so scanning
    replica counts (as the candidate generation does) costs O(1) per count.
    """

    point: ServicePoint
    load_rps: float
    batch_timeout_ms: float
    arrival_cv: float
    fanout: float
    quantile: float = 0.99

    @property
    def mean_batch(self) -> float:
        return expected_batch(self.point.batch_size, self.load_rps / 1000.0, self.batch_timeout_ms)

    @property
    def effective_rps(self) -> float:
        """Items/s of one replica when partial batches cost a full batch's time."""
        return self.point.throughput_rps * self.mean_batch / self.point.batch_size

    @property
    def offered_erlangs(self) -> float:
        """Load in units of one replica's effective capacity (utilisation x replicas)."""
        return self.load_rps / self.effective_rps

    def scan(self, first: int, last: int):
        """Yield (replicas, StageLatency, utilisation) for replicas = first..last, in order."""
        p = self.point
        mean_service_ms = 1000.0 * p.batch_size / p.throughput_rps
        arrival_scv = self.arrival_cv**2 * max(1.0, self.fanout) / self.mean_batch
        variability = (arrival_scv + service_scv(p.latency_p50_ms, p.latency_p99_ms)) / 2.0
        tail = 1.0 - item_quantile(self.fanout, self.quantile)
        a = self.offered_erlangs
        blocking = 1.0  # Erlang B(k) at offered load a, by the recursion B(k) = a B(k-1) / (k + a B(k-1))
        for k in range(1, first):
            blocking = a * blocking / (k + a * blocking)
        for replicas in range(first, last + 1):
            blocking = a * blocking / (replicas + a * blocking)
            rho = a / replicas
            if rho >= 1.0:
                wait = math.inf
            else:
                p_wait = blocking / (1.0 - rho * (1.0 - blocking))
                wait = 0.0 if p_wait <= tail else (
                    variability * mean_service_ms / (replicas * (1.0 - rho)) * math.log(p_wait / tail))
            yield replicas, StageLatency(self.batch_timeout_ms, wait, p.latency_p99_ms), rho

    def at(self, replicas: int) -> tuple[StageLatency, float]:
        """The p99 terms and utilisation with ``replicas`` replicas."""
        _, terms, rho = next(self.scan(replicas, replicas))
        return terms, rho


def stage_latency(
    point: ServicePoint,
    replicas: int,
    load_rps: float,
    batch_timeout_ms: float,
    arrival_cv: float,
    fanout: float,
    quantile: float = 0.99,
) -> tuple[StageLatency, float]:
    """The stage's p99 latency terms and its utilisation, for ``replicas`` replicas at ``load_rps`` items/s."""
    return StageQueue(point, load_rps, batch_timeout_ms, arrival_cv, fanout, quantile).at(replicas)

"""The latency model of one pipeline stage: pure functions, times in milliseconds.

A stage is one central FIFO queue feeding ``replicas`` identical servers with dynamic batching: a
free replica takes up to ``batch_size`` queued items at once if that many wait, otherwise it waits
until the oldest queued item has waited ``batch_timeout_ms`` (0 = take what is there). Its p99
latency, as seen by one pipeline request, is the sum of three terms:

1. **Batch fill** ``fill_ms = batch_timeout_ms``. The first item of a batch that finds an idle
   replica waits at most the timeout for the batch to fill; later items wait less. The planner sets
   the timeout to a quantile of the time that ``batch_size - 1`` further Poisson arrivals take at the
   stage's load (a Gamma(b-1, rate) quantile), so the bound is tight at the planned load.
2. **Queueing** ``wait_ms``: batches are customers of a GI/G/c queue with c = replicas. For
   renewal arrivals with Gamma gaps and exponential service the GI/M/c result is exact: the wait,
   when there is one, is exponential with rate ``c (1 - sigma) / E[S]``, where sigma solves
   ``sigma = A*(c (1 - sigma) / E[S])`` (A* the Laplace-Stieltjes transform of the batch
   inter-arrival time; sigma = rho for Poisson arrivals, more for burstier ones). The probability
   of waiting is Erlang C scaled by ``sigma / rho`` (exact for one replica and for Poisson
   arrivals), and other service variability scales the wait by ``(ca2 + cs2) / (ca2 + 1)`` (the
   Kingman / Allen-Cunneen factor; 1 for exponential service). So the q-quantile wait is
   ``factor * E[S] / (c (1 - sigma)) * ln(P(wait) / (1 - q))`` when P(wait) > 1 - q, else 0.
   Batches of b items from an item stream of squared coefficient of variation ``v`` arrive with
   ``ca2 = v / b``. A source stage sees ``v = cv^2``; a later stage sees upstream departures,
   whose variability lies between the input's and 1 (QNA), so ``v = max(cv^2, 1)``; a fan-out
   k >= 1 delivers items in bulks (``v x k``), a fan-out p < 1 thins the stream
   (``p v + 1 - p``). Service variability ``cs2`` is fitted from the profile's p50 and p99
   (lognormal). ``benchmarks/bench_model_fidelity.py`` measures how this compares with simulation.
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
    """The q-quantile wait of a GI/G/c queue (module docstring, term 2); infinite when utilisation >= 1."""
    if utilization >= 1.0:
        return math.inf
    if utilization <= 0.0:
        return 0.0
    offered = servers * utilization
    sigma = renewal_root(arrival_scv, offered, servers)
    factor = (arrival_scv + service_scv_) / (arrival_scv + 1.0)
    return _wait_ms(erlang_c(servers, offered), sigma, utilization, servers, mean_service_ms, factor,
                    1.0 - quantile)


def item_arrival_scv(arrival_cv: float, fanout: float, source: bool) -> float:
    """Squared coefficient of variation of the item arrivals a stage sees.

    A source stage sees the pipeline's arrivals (scv = cv^2). A later stage sees departures of the
    stages before it; by the QNA departure approximation their scv lies between the input's and 1
    (for service scv <= 1), so the larger of the two is used. A fan-out k >= 1 delivers items in
    bulks of k (k times the scv); a fan-out p < 1 thins the stream (p scv + 1 - p).
    """
    scv = arrival_cv**2 if source else max(arrival_cv**2, 1.0)
    if fanout >= 1.0:
        return scv * fanout
    return fanout * scv + (1.0 - fanout)


def renewal_root(arrival_scv: float, offered_erlangs: float, servers: int) -> float:
    """The GI/M/c root sigma = A*(c (1 - sigma)) for Gamma inter-arrivals of this SCV (time in mean services).

    A* is the Laplace-Stieltjes transform of the inter-arrival time, (1 + s / (K a))^-K with
    shape K = 1 / scv and rate a (offered Erlangs); exp(-s / a) when the arrivals are regular.
    Poisson arrivals give sigma = rho exactly; burstier arrivals give sigma > rho (a slower tail).
    Newton's method from 0 converges monotonically: A*(c (1 - sigma)) - sigma is convex in sigma.
    """
    rho = offered_erlangs / servers
    if rho <= 0.0:
        return 0.0
    if abs(arrival_scv - 1.0) < 1e-12:
        return rho
    regular = arrival_scv <= 1e-9
    shape = 0.0 if regular else 1.0 / arrival_scv
    rate = servers / offered_erlangs
    sigma = 0.0
    for _ in range(100):
        x = rate * (1.0 - sigma)
        if regular:
            transform = math.exp(-x)
            slope = rate * transform
        else:
            base = 1.0 + x / shape
            transform = base ** -shape
            slope = rate * transform / base
        step = (transform - sigma) / (1.0 - slope)
        sigma += step
        if step < 1e-12:
            break
    return min(sigma, 1.0 - 1e-12)


def _wait_ms(erlang: float, sigma: float, rho: float, servers: int, mean_service_ms: float,
             factor: float, tail: float) -> float:
    """The q-quantile wait of module docstring term 2, from Erlang C and the GI/M/c root."""
    p_wait = min(1.0, erlang * sigma / rho)
    if p_wait <= tail:
        return 0.0
    return factor * mean_service_ms / (servers * (1.0 - sigma)) * math.log(p_wait / tail)


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
    source: bool = True  # the stage receives the pipeline's arrivals (not another stage's output)

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
        arrival_scv = item_arrival_scv(self.arrival_cv, self.fanout, self.source) / self.mean_batch
        # GI/M/c is exact for exponential service; other service variability scales the wait as
        # in the Kingman/Allen-Cunneen factor, (ca2 + cs2) / (ca2 + 1), which is 1 when cs2 = 1.
        service_factor = (arrival_scv + service_scv(p.latency_p50_ms, p.latency_p99_ms)) / (arrival_scv + 1.0)
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
                erlang = blocking / (1.0 - rho * (1.0 - blocking))
                wait = _wait_ms(erlang, renewal_root(arrival_scv, a, replicas), rho, replicas, mean_service_ms,
                                service_factor, tail)
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
    source: bool = True,
) -> tuple[StageLatency, float]:
    """The stage's p99 latency terms and its utilisation, for ``replicas`` replicas at ``load_rps`` items/s."""
    return StageQueue(point, load_rps, batch_timeout_ms, arrival_cv, fanout, quantile, source).at(replicas)

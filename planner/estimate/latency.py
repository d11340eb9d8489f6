"""The latency model of one pipeline stage: pure functions, times in milliseconds.

A stage is one central FIFO queue feeding ``c`` identical replicas with dynamic batching: a free
replica takes up to ``b`` queued items at once if that many wait, otherwise it waits until the
oldest queued item has waited ``tau = batch_timeout_ms`` (tau = 0: take what is there). Items
arrive at ``lam`` per ms with squared coefficient of variation ``v`` (the item stream's; see
planner.estimate.flow for how v is passed down the DAG).

**Service of a partial batch.** A batch of m items is charged ``ServiceCurve.at(m)`` (planner.plan:
the profiled time at m, or the linear interpolation between neighbouring profiled sizes), p50 and
p99 separately; a real m interpolates between the integers around it (the same straight line).
Service is lognormal with that median and p99: ``sigma(m) = ln(p99 / p50) / z_0.99``, mean
``S(m) = p50 exp(sigma^2 / 2)``, scv ``cs2(m) = exp(sigma^2) - 1``.

**Batch formation under load.** The mean batch is ``m = max(m_fill, m_busy)`` (both <= b):

- ``m_fill = max(E[min(b, 1 + N)], min(b, floor(k)))``, ``N ~ Poisson(lam tau)``: the batch a
  timeout collects when the queue starts empty (light load), and at least the k items one request
  sends at once;
- ``m_busy``: the smallest m in [1, b] with ``m >= lam S(m) / c``. With every replica busy, a
  replica that frees takes what arrived since the previous dispatch, ``lam S(m) / c`` items; a
  batch that size keeps up, so batches grow with the load until they do (m_busy = 1 when one item
  per dispatch already keeps up). Partial batches are thus charged at their size, and a batch > 1
  option with tau = 0 carries up to ``c b / S(b)`` items per ms.

**Capacity and utilisation.** Under a backlog every batch is full, so the stage is stable iff
``rho_b = lam S(b) / (c b) < 1``; ``rho_b`` is the utilisation held to ``max_utilization``. The
replicas are busy a fraction ``rho_m = min(1, lam S(m) / (c m))`` of the time.

**p99 latency** of an item (taken at the item quantile ``q_k = q^(1 / k)`` when a request sends
k > 1 items, since the request waits for all of them; tail ``e = 1 - q_k``) is

    L = max(tau, R) + W + T

1. ``R`` (b > 1): the wait for a replica to free when all are busy. An arrival finds all busy with
   probability ``P = min(1, C(c, c rho_m) sigma_m / rho_m)`` (Erlang C, scaled for non-Poisson
   batch arrivals by the GI/M/c root sigma_m, below); the first of c replicas frees after an
   exponential time of mean ``S(m) / c``, and never later than one batch's p99:
   ``R = min(T99(m_hi), S(m) / c ln(P / e))`` when P > e, else 0. The item then waits at most
   max(tau, R): the replica dispatches at once if the oldest item is older than tau.
2. ``W``: the queueing beyond the next dispatch, which only a backlog of more than the next batches
   causes; batches are then full, so it is the GI/G/c wait of full-batch customers: renewal
   arrivals with ``ca2 = v / b``, mean service S(b), c servers. For Gamma gaps and exponential
   service GI/M/c is exact: the wait, when there is one, is exponential with rate
   ``c (1 - sigma) / S``, sigma solving ``sigma = A*(c (1 - sigma) / S)`` (A* the
   Laplace-Stieltjes transform of the inter-arrival time; sigma = rho for Poisson); P(wait) is
   Erlang C scaled by sigma / rho; other service variability scales the wait by
   ``(ca2 + cs2) / (ca2 + 1)`` (Kingman / Allen-Cunneen). So
   ``W = factor S / (c (1 - sigma)) ln(P(wait) / e)`` when P(wait) > e, else 0. For b = 1 this is
   the whole wait (R is part of it).
3. ``T``: the p99 service of the item's batch. Items sit in larger batches than the mean (size
   bias), so T is taken at ``m_hi = min(b, m + z_q sqrt(m v))``; at b when W > 0 (a backlog
   serves full batches).

**Departures** (QNA, Whitt 1983) at the batch level: ``cd2 = 1 + (1 - rho_m^2)(v / m - 1) +
rho_m^2 (cs2(m) - 1) / sqrt(c)``; items leave in bulks of m, so the item stream a child stage sees
has scv ``m (1 + cd2) - 1`` (a gap of m / lam then m - 1 zero gaps). Nearly deterministic servers
(cs2 ~ 0) smooth their output (cd2 < 1); large batches make it bulky.

**Mean latency** (for the end-to-end rule of planner.estimate.paths), an upper bound term by term:

- fill: ``tau + P_busy min(T99(m_hi), S(m) / c)`` (no item waits longer than tau for its batch to
  fill; R is exponential of mean S(m) / c, capped at one batch's p99, when all replicas are busy);
- wait: ``P(wait) factor S(b) / (c (1 - sigma))`` (the GI/M/c wait is exponential with that mean
  when there is one);
- service: the size-biased batch's mean ``S(min(b, m + v))`` (an item sits in a batch of mean size
  ``m + Var / m``, Var ~ m v), S(b) under a backlog.

A request that sends k > 1 items waits for its slowest: the fill and wait means are multiplied by
H_ceil(k) (the mean of the largest of k unit exponentials) and its service is the p99 term T. The
mean is capped at the p99 (``mean <= L``). Overstating a mean only moves the path rule towards the
plain sum of stage p99s, so each bound errs on the safe side.

``benchmarks/bench_model_fidelity.py`` measures all of this against simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Iterator


from planner.plan import ServiceCurve

Z_99 = 2.3263478740408408  # standard normal 0.99 quantile, for the lognormal fit


@dataclass(frozen=True)
class StageLatency:
    """The p99 terms of one stage, milliseconds: fill = max(tau, R), wait = W, service = T."""

    fill_ms: float
    wait_ms: float
    service_ms: float
    overhead_ms: float = 0.0  # the engine's per-visit cost h (spec engine_overhead_ms): a constant, no queue

    @property
    def total_ms(self) -> float:
        return self.fill_ms + self.wait_ms + self.service_ms + self.overhead_ms


@dataclass(frozen=True)
class StageEstimate:
    """One stage configuration at one load: its p99 terms, utilisation, batching and output stream."""

    replicas: int
    latency: StageLatency
    utilization: float  # rho_b: load over full-batch capacity
    busy: float  # rho_m: fraction of time the replicas serve
    mean_batch: float
    departure_scv: float  # scv of the item stream it passes to child stages
    mean_ms: float = math.inf  # mean latency (an upper bound, module docstring), <= latency.total_ms


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


def harmonic(k: float) -> float:
    """H_ceil(k) = 1 + 1/2 + ... + 1/ceil(k) (1 for k <= 1): the mean of the largest of k unit exponentials."""
    return math.fsum(1.0 / j for j in range(1, max(1, math.ceil(k - 1e-9)) + 1))


def item_quantile(fanout: float, quantile: float = 0.99) -> float:
    """The per-item quantile whose k-fold maximum is the request quantile (k = fanout >= 1)."""
    return quantile ** (1.0 / max(1.0, fanout))


@lru_cache(maxsize=65536)
def fill_time_ms(batch_size: int, rate_per_ms: float, quantile: float) -> float:
    """Quantile of the time for ``batch_size - 1`` more Poisson arrivals at ``rate_per_ms``."""
    if batch_size <= 1 or not rate_per_ms > 0 or not math.isfinite(rate_per_ms):
        return 0.0
    from scipy import stats  # here: importing scipy.stats costs ~0.4 s, which commands that never estimate skip

    return float(stats.gamma.ppf(quantile, a=batch_size - 1, scale=1.0 / rate_per_ms))


@lru_cache(maxsize=65536)
def expected_batch(batch_size: int, rate_per_ms: float, timeout_ms: float) -> float:
    """E[min(b, 1 + N)], N ~ Poisson(rate * timeout): mean batch size when the queue starts empty."""
    if batch_size <= 1:
        return 1.0
    mean = rate_per_ms * timeout_ms
    if not mean > 0.0:
        return 1.0
    if not math.isfinite(mean) or mean > 50.0 * batch_size:
        return float(batch_size)
    log_mean = math.log(mean)
    partial = below = 0.0
    for k in range(batch_size - 1):  # P(N = k) in log space: no overflow for large means
        pmf = math.exp(-mean + k * log_mean - math.lgamma(k + 1))
        partial += pmf * (k + 1)
        below += pmf
    return partial + batch_size * max(0.0, 1.0 - below)


def service_scv(latency_p50_ms: float, latency_p99_ms: float) -> float:
    """Squared coefficient of variation of a lognormal with this median and p99."""
    if not latency_p99_ms > latency_p50_ms:
        return 0.0
    sigma = math.log(latency_p99_ms / latency_p50_ms) / Z_99
    return math.expm1(sigma * sigma)


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
    """The q-quantile GI/M/c wait (module docstring, term 2), from Erlang C and the GI/M/c root."""
    p_wait = min(1.0, erlang * sigma / rho)
    if p_wait <= tail:
        return 0.0
    return factor * mean_service_ms / (servers * (1.0 - sigma)) * math.log(p_wait / tail)


def _wait_mean_ms(erlang: float, sigma: float, rho: float, servers: int, mean_service_ms: float,
                  factor: float) -> float:
    """The mean of that wait: P(wait) times the exponential's mean (module docstring, mean latency)."""
    return min(1.0, erlang * sigma / rho) * factor * mean_service_ms / (servers * (1.0 - sigma))


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


@dataclass(frozen=True)
class BatchService:
    """Service of m-item batches, m = 1..b, by ServiceCurve.at; per-m mean, p99 and scv tables.

    ``min_ms_per_item`` floors the mean at the profile's measured throughput (1000 b / rps at each
    profiled size, interpolated), so a row whose throughput is below its p50 implies is not
    given more capacity than it measured.
    """

    batch_size: int
    mean_ms: tuple[float, ...]  # index m - 1
    p99_ms: tuple[float, ...]
    scv: tuple[float, ...]

    @classmethod
    def from_curve(cls, curve: ServiceCurve, batch_size: int,
                   throughput_rps: dict[int, float] | None = None) -> "BatchService":
        thr_ms = None
        if throughput_rps:
            pts = sorted((b, 1000.0 * b / r) for b, r in throughput_rps.items() if b <= batch_size and r > 0)
            thr_ms = pts or None
        means, p99s, scvs = [], [], []
        for m in range(1, batch_size + 1):
            point = curve.at(m)
            scv = service_scv(point.p50_ms, point.p99_ms)
            mean = point.p50_ms * math.sqrt(1.0 + scv)  # lognormal: mean = median exp(sigma^2 / 2)
            if thr_ms:
                mean = max(mean, _interp(m, thr_ms))
            means.append(mean)
            p99s.append(max(point.p99_ms, mean))
            scvs.append(scv)
        return cls(batch_size, tuple(means), tuple(p99s), tuple(scvs))

    def _at(self, table: tuple[float, ...], m: float) -> float:
        if m <= 1.0:
            return table[0]
        if m >= self.batch_size:
            return table[-1]
        lo = int(m)
        w = m - lo
        return table[lo - 1] + w * (table[lo] - table[lo - 1])

    def mean(self, m: float) -> float:
        return self._at(self.mean_ms, m)

    def p99(self, m: float) -> float:
        return self._at(self.p99_ms, m)

    def cs2(self, m: float) -> float:
        return self._at(self.scv, m)


def _interp(x: float, points: list[tuple[int, float]]) -> float:
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    return points[-1][1]


def busy_batch(service: BatchService, rate_per_ms: float, replicas: int) -> float:
    """m_busy: the smallest m in [1, b] with m >= rate S(m) / c (module docstring); b if none."""
    b = service.batch_size
    prev = 1.0 - rate_per_ms * service.mean_ms[0] / replicas
    if prev >= 0.0:
        return 1.0
    for k in range(2, b + 1):
        h = k - rate_per_ms * service.mean_ms[k - 1] / replicas
        if h >= 0.0:
            return (k - 1) + prev / (prev - h)  # h is linear between integers
        prev = h
    return float(b)


def first_useful_replicas(service: BatchService, load_items_per_s: float, max_utilization: float) -> float:
    """The fewest replicas with rho_b <= max_utilization (may be huge or infinite; never looped to)."""
    need = load_items_per_s / 1000.0 * service.mean_ms[-1] / (service.batch_size * max_utilization)
    if not math.isfinite(need):
        return math.inf
    return max(1.0, math.ceil(need - 1e-9))


@dataclass(frozen=True)
class StageQueue:
    """One stage configuration (service curve, b, tau) at one load and item scv; evaluate per replica count."""

    service: BatchService
    load_items_per_s: float
    batch_timeout_ms: float
    item_scv: float  # v: scv of the item arrivals (planner.estimate.flow)
    fanout: float = 1.0
    quantile: float = 0.99
    overhead_ms: float = 0.0  # added to every estimate's total (PipelineSpec.engine_overhead_ms)

    def scan(self, first: int, last: int) -> Iterator[StageEstimate]:
        """StageEstimate for replicas = first..last, in order (nothing when first > last)."""
        s, b, tau = self.service, self.service.batch_size, self.batch_timeout_ms
        lam = self.load_items_per_s / 1000.0
        v = max(self.item_scv, 0.0)
        tail = 1.0 - item_quantile(self.fanout, self.quantile)
        # A request's k items arrive together, so an idle replica already finds min(b, k) of them.
        m_fill = max(expected_batch(b, lam, tau), min(float(b), max(1.0, math.floor(self.fanout))))
        z = NormalDist().inv_cdf(item_quantile(self.fanout, self.quantile))
        slowest_of = harmonic(self.fanout)  # mean of the largest of the request's k items, per unit mean
        # W: full-batch customers; offered Erlangs do not depend on c, so Erlang B runs incrementally.
        mean_b = s.mean_ms[-1]
        a_full = lam * mean_b / b
        ca2_full = v / b
        factor = (ca2_full + s.scv[-1]) / (ca2_full + 1.0)
        blocking = 1.0
        for k in range(1, first):
            blocking = a_full * blocking / (k + a_full * blocking)
        for c in range(first, last + 1):
            blocking = a_full * blocking / (c + a_full * blocking)
            rho_b = a_full / c
            if rho_b >= 1.0:
                yield StageEstimate(c, StageLatency(tau, math.inf, s.p99_ms[-1], self.overhead_ms), rho_b, 1.0, float(b), math.inf)
                continue
            erlang = blocking / (1.0 - rho_b * (1.0 - blocking))
            sigma_full = renewal_root(ca2_full, a_full, c)
            wait = _wait_ms(erlang, sigma_full, rho_b, c, mean_b, factor, tail)
            wait_mean = _wait_mean_ms(erlang, sigma_full, rho_b, c, mean_b, factor)
            m = max(m_fill, busy_batch(s, lam, c))
            mean_m = s.mean(m)
            rho_m = min(1.0, lam * mean_m / (c * m))
            m_hi = min(float(b), m + z * math.sqrt(m * v)) if b > 1 else 1.0
            residual = p_busy = 0.0
            if b > 1 and rho_m > 0.0:
                ca2_m = v / m
                if rho_m >= 1.0:
                    p_busy = 1.0
                else:
                    sigma = renewal_root(ca2_m, c * rho_m, c)
                    p_busy = min(1.0, erlang_c(c, c * rho_m) * sigma / rho_m)
                if p_busy > tail:
                    residual = min(s.p99(m_hi), mean_m / c * math.log(p_busy / tail))
            service_ms = s.p99_ms[-1] if wait > 0.0 else s.p99(m_hi)
            cd2 = (1.0 + (1.0 - rho_m**2) * (v / m - 1.0)
                   + rho_m**2 * (s.cs2(m) - 1.0) / math.sqrt(c))
            departure = max(0.0, m * (1.0 + cd2) - 1.0)
            latency = StageLatency(max(tau, residual), wait, service_ms, self.overhead_ms)
            if self.fanout > 1.0:
                service_mean = service_ms
            else:
                service_mean = mean_b if wait > 0.0 else s.mean(min(float(b), m + v))
            fill_mean = tau + p_busy * min(s.p99(m_hi), mean_m / c)
            mean = slowest_of * (fill_mean + wait_mean) + service_mean + self.overhead_ms
            yield StageEstimate(c, latency, rho_b, rho_m, m, departure, min(mean, latency.total_ms))

    def at(self, replicas: int) -> StageEstimate:
        """The estimate with ``replicas`` replicas."""
        return next(self.scan(replicas, replicas))

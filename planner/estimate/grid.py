"""The stage latency model of planner.estimate.latency, evaluated for many configurations at once.

One row is one configuration (service table, batch size b, timeout tau, m_fill) at one replica
count c, all rows of one stage sharing its load, item scv, tail and quantile. Every quantity of
``latency.StageQueue.scan`` (Erlang B/C, the GI/M/c roots, m_busy, the p99 terms, the mean, the
departure scv) is computed for all rows together with numpy, with the same operations in the same order,
and the transcendental functions (log, exp, pow) taken from the standard library element by
element (numpy's vectorised ones differ from libm in the last bit now and then, and the model's
log of a ratio near 1 turns that into a 1e-8 relative difference), so the results are the scalar
model's bit for bit (tests compare the two option by option). The estimation step builds one grid
per stage, so its Python-level cost is per stage, not per option. Quantities that do not depend
on the timeout (the full-batch wait W, m_busy) are computed once per distinct (table, b, c).

The service tables of one (variant, hardware) are computed once, at its largest batch size: a
batch size b uses their first b entries, which are exactly the tables ``BatchService.from_curve``
gives for b (the partial-batch rule and the throughput floor interpolate between neighbouring
profiled sizes, all <= b for m <= b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from planner.estimate.latency import harmonic


def _log(x: np.ndarray) -> np.ndarray:
    """math.log element by element (x > 0)."""
    return np.fromiter(map(math.log, x.tolist()), float, x.size)


def _exp(x: np.ndarray) -> np.ndarray:
    return np.fromiter(map(math.exp, x.tolist()), float, x.size)


def _pow(base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """Python's float ** element by element (base > 0)."""
    return np.fromiter(map(pow, base.tolist(), exponent.tolist()), float, base.size)


@dataclass(frozen=True)
class Tables:
    """Service tables of several configurations, padded to the widest: index [g, m - 1]."""

    mean_ms: np.ndarray  # (G, B)
    p99_ms: np.ndarray
    scv: np.ndarray

    @classmethod
    def stack(cls, services) -> "Tables":
        """From latency.BatchService objects (padded with their last entry)."""
        width = max(s.batch_size for s in services)

        def pad(table: tuple[float, ...]) -> list[float]:
            return list(table) + [table[-1]] * (width - len(table))

        return cls(np.array([pad(s.mean_ms) for s in services]), np.array([pad(s.p99_ms) for s in services]),
                   np.array([pad(s.scv) for s in services]))


@dataclass(frozen=True)
class Rows:
    """The model's outputs per row (arrays of one length)."""

    fill_ms: np.ndarray
    wait_ms: np.ndarray
    service_ms: np.ndarray
    total_ms: np.ndarray  # fill + wait + service + overhead, summed in that order
    mean_ms: np.ndarray  # latency.StageEstimate.mean_ms: the mean (an upper bound), capped at total_ms
    utilization: np.ndarray
    busy: np.ndarray
    mean_batch: np.ndarray
    departure_scv: np.ndarray

    def take(self, index: np.ndarray) -> "Rows":
        """The rows at ``index`` (a mask or indices)."""
        return Rows(*(getattr(self, f.name)[index] for f in fields(self)))

    @classmethod
    def concat(cls, parts: list["Rows"]) -> "Rows":
        """The parts' rows one after another (no parts: no rows)."""
        if not parts:
            return cls(*(np.zeros(0) for _ in fields(cls)))
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def _at(table: np.ndarray, g: np.ndarray, b: np.ndarray, m: np.ndarray) -> np.ndarray:
    """BatchService._at per row: the table of row g, cut at b, at real m."""
    lo = np.minimum(np.maximum(np.floor(m), 1.0), b).astype(np.int64)
    hi = np.minimum(lo + 1, b)
    t_lo = table[g, lo - 1]
    val = t_lo + (m - lo) * (table[g, hi - 1] - t_lo)
    val = np.where(m <= 1.0, table[g, 0], val)
    return np.where(m >= b, table[g, b - 1], val)


def erlang_b(servers: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """Erlang B per row by the recursion B(k) = a B(k-1) / (k + a B(k-1)), k = 1..c (as latency.py)."""
    blocking = np.ones_like(offered)
    top = int(servers.max(initial=0))
    for k in range(1, top + 1):
        step = offered * blocking / (k + offered * blocking)
        blocking = np.where(servers >= k, step, blocking)
    return blocking


def erlang_c(servers: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """latency.erlang_c per row (0 when offered <= 0, 1 when offered >= servers)."""
    blocking = erlang_b(servers, offered)
    rho = offered / servers
    val = blocking / (1.0 - rho * (1.0 - blocking))
    val = np.where(offered >= servers, 1.0, val)
    return np.where(offered <= 0.0, 0.0, val)


def renewal_root(arrival_scv: np.ndarray, offered: np.ndarray, servers: np.ndarray) -> np.ndarray:
    """latency.renewal_root per row: Newton's method from 0, each row frozen once its step < 1e-12."""
    rho = offered / servers
    poisson = np.abs(arrival_scv - 1.0) < 1e-12
    regular = arrival_scv <= 1e-9
    shape = 1.0 / np.where(regular, 1.0, arrival_scv)
    rate = servers / offered
    sigma = np.zeros_like(rho)
    active = (rho > 0.0) & ~poisson
    for _ in range(100):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        r, s, k, reg = rate[idx], sigma[idx], shape[idx], regular[idx]
        x = r * (1.0 - s)
        base = 1.0 + x / k
        transform = np.empty_like(x)
        transform[reg] = _exp(-x[reg])
        transform[~reg] = _pow(base[~reg], -k[~reg])
        slope = np.where(reg, r * transform, r * transform / base)
        step = (transform - s) / (1.0 - slope)
        sigma[idx] = s + step
        active[idx] = ~(step < 1e-12)
    sigma = np.minimum(sigma, 1.0 - 1e-12)
    sigma = np.where(poisson, rho, sigma)
    return np.where(rho <= 0.0, 0.0, sigma)


def _wait_ms(erlang, sigma, rho, servers, mean_service_ms, factor, tail: float) -> np.ndarray:
    """latency._wait_ms per row."""
    p_wait = np.minimum(1.0, erlang * sigma / rho)
    out = np.zeros_like(p_wait)
    idx = np.flatnonzero(p_wait > tail)
    out[idx] = (factor[idx] * mean_service_ms[idx] / (servers[idx] * (1.0 - sigma[idx]))
                * _log(p_wait[idx] / tail))
    return out


def _wait_mean_ms(erlang, sigma, rho, servers, mean_service_ms, factor) -> np.ndarray:
    """latency._wait_mean_ms per row, the same operations in the same order."""
    return np.minimum(1.0, erlang * sigma / rho) * factor * mean_service_ms / (servers * (1.0 - sigma))


def _unique(key: np.ndarray, real: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One representative row per distinct (integer key, real value), and each row's representative."""
    order = np.lexsort((real, key)) if real is not None else np.argsort(key, kind="stable")
    k = key[order]
    change = np.empty(order.size, dtype=bool)
    change[:1] = True
    change[1:] = k[1:] != k[:-1]
    if real is not None:
        r = real[order]
        change[1:] |= r[1:] != r[:-1]
    group = np.cumsum(change) - 1
    inverse = np.empty(order.size, dtype=np.int64)
    inverse[order] = group
    return order[change], inverse


def busy_batch(mean_ms: np.ndarray, g: np.ndarray, b: np.ndarray, rate: float, servers: np.ndarray) -> np.ndarray:
    """latency.busy_batch per row: the smallest m in [1, b] with m >= rate S(m) / c; b if none."""
    width = mean_ms.shape[1]
    k = np.arange(1, width + 1, dtype=float)
    h = k[None, :] - rate * mean_ms[g] / servers[:, None]
    ok = (h >= 0.0) & (k[None, :] <= b[:, None])
    found = ok.any(axis=1)
    first = np.where(found, ok.argmax(axis=1), 0)  # index of the first k with h >= 0
    rows = np.arange(len(g))
    prev = h[rows, np.maximum(first - 1, 0)]
    cur = h[rows, first]
    crossing = first + prev / np.where(first > 0, prev - cur, 1.0)  # (k - 1) + prev / (prev - h), k = first + 1
    out = np.where(first > 0, crossing, 1.0)
    return np.where(found, out, b.astype(float))


def evaluate(tables: Tables, g: np.ndarray, b: np.ndarray, servers: np.ndarray, timeout_ms: np.ndarray,
             m_fill: np.ndarray, rate_per_ms: float, item_scv: float, tail: float, z: float,
             overhead_ms: float, fanout: float = 1.0) -> Rows:
    """``StageQueue.scan``'s estimate for every row: table g cut at batch size b, c = servers replicas,
    tau = timeout_ms, m_fill per row; the stage's item rate (per ms), item scv v, item tail e = 1 - q_k,
    z_{q_k}, engine overhead and fanout k (items per request: the mean's slowest-of-k rule) shared."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _evaluate(tables, g, b, servers, timeout_ms, m_fill, rate_per_ms, max(item_scv, 0.0), tail, z,
                         overhead_ms, fanout)


def _evaluate(tables, g, b, servers, tau, m_fill, lam, v, tail, z, overhead_ms, fanout) -> Rows:
    c = servers.astype(float)
    bf = b.astype(float)
    mean_b = tables.mean_ms[g, b - 1]
    p99_b = tables.p99_ms[g, b - 1]
    a_full = lam * mean_b / bf
    rho_b = a_full / c
    unstable = rho_b >= 1.0
    # W and m_busy depend on (table, b, c) only, not on the timeout: once per distinct triple.
    key = (g * (int(b.max(initial=0)) + 1) + b) * (int(servers.max(initial=0)) + 1) + servers
    u, back = _unique(key)
    ca2_full = v / bf[u]
    factor = (ca2_full + tables.scv[g[u], b[u] - 1]) / (ca2_full + 1.0)
    blocking = erlang_b(servers[u], a_full[u])
    erlang = blocking / (1.0 - rho_b[u] * (1.0 - blocking))
    sigma_full = renewal_root(ca2_full, a_full[u], c[u])
    wait = _wait_ms(erlang, sigma_full, rho_b[u], c[u], mean_b[u], factor, tail)[back]
    wait_mean = _wait_mean_ms(erlang, sigma_full, rho_b[u], c[u], mean_b[u], factor)[back]
    m = np.maximum(m_fill, busy_batch(tables.mean_ms, g[u], b[u], lam, c[u])[back])
    mean_m = _at(tables.mean_ms, g, b, m)
    rho_m = np.minimum(1.0, lam * mean_m / (c * m))
    m_hi = np.where(b > 1, np.minimum(bf, m + z * np.sqrt(m * v)), 1.0)
    p99_hi = _at(tables.p99_ms, g, b, m_hi)
    # the replica-free wait R: rows with b > 1 and rho_m > 0; P(all busy) = 1 once rho_m >= 1
    has_residual = (b > 1) & (rho_m > 0.0)
    partial = np.flatnonzero(has_residual & (rho_m < 1.0))
    p_busy = np.where(has_residual, 1.0, 0.0)
    if partial.size:
        first, again = _unique(key[partial], m[partial])
        idx = partial[first]
        ci, ri = c[idx], rho_m[idx]
        sigma = renewal_root(v / m[idx], ci * ri, ci)
        p_busy[partial] = np.minimum(1.0, erlang_c(servers[idx], ci * ri) * sigma / ri)[again]
    residual = np.zeros_like(m)
    busy_tail = np.flatnonzero(has_residual & (p_busy > tail))
    residual[busy_tail] = np.minimum(p99_hi[busy_tail],
                                     mean_m[busy_tail] / c[busy_tail] * _log(p_busy[busy_tail] / tail))
    service = np.where(wait > 0.0, p99_b, p99_hi)
    rho_m2 = _pow(rho_m, np.full(rho_m.size, 2.0))  # Python's x ** 2 is libm's pow, not always x * x
    cd2 = 1.0 + (1.0 - rho_m2) * (v / m - 1.0) + rho_m2 * (_at(tables.scv, g, b, m) - 1.0) / np.sqrt(c)
    departure = np.maximum(0.0, m * (1.0 + cd2) - 1.0)
    fill = np.maximum(tau, residual)
    # the mean (latency.StageQueue.scan): the slowest of k items' fill and wait, the size-biased batch
    if fanout > 1.0:
        service_mean = service
    else:
        service_mean = np.where(wait > 0.0, mean_b, _at(tables.mean_ms, g, b, np.minimum(bf, m + v)))
    fill_mean = tau + p_busy * np.minimum(p99_hi, mean_m / c)
    mean = harmonic(fanout) * (fill_mean + wait_mean) + service_mean + overhead_ms
    total = fill + wait + service + overhead_ms
    mean = np.where(unstable, math.inf, np.minimum(mean, total))
    fill = np.where(unstable, tau, fill)
    wait = np.where(unstable, math.inf, wait)
    service = np.where(unstable, p99_b, service)
    return Rows(
        fill_ms=fill, wait_ms=wait, service_ms=service, total_ms=fill + wait + service + overhead_ms, mean_ms=mean,
        utilization=rho_b, busy=np.where(unstable, 1.0, rho_m), mean_batch=np.where(unstable, bf, m),
        departure_scv=np.where(unstable, math.inf, departure),
    )

"""Timing one (variant, hardware, batch size) point: windows, the stability rule, percentiles.

The method follows perf_analyzer: measure in windows (at least ``window_ms`` and
``min_window_requests`` calls each); the point is stable when the last 3 windows agree within
``tolerance`` (max/min - 1) in throughput and in p50 latency; after ``max_windows`` windows it is
reported as unstable rather than with a number that looks exact. The reported figures merge the
last 3 windows. A p99 is only claimed (``stable``) with at least :func:`required_samples` calls
(MLPerf LoadGen's binomial rule: 459 at 99% confidence).

Rounds: the variation that matters on a shared machine is between runs (a new runtime session, a
neighbour busy for minutes), not within a point, so the per-point rule cannot see it. A point is
therefore measured in ``rounds`` rounds spread over the run, each with a fresh session, each with
its own warm-up and stability rule and a share of the samples. :func:`combine_rounds` reports the
median round's p50 and throughput (one disturbed round does not move them), the pooled p95/p99
(the rounds' empirical distributions mixed by sample count, from tail quantiles each round keeps,
so the p99 rests on all rounds' samples), and the spread of the rounds' p50s as the error bar.

Pure functions plus one loop; the loop takes the call to time and a clock, so tests drive it with
fakes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

STABLE_WINDOWS = 3


def required_samples(percentile: float = 0.99, confidence: float = 0.99) -> int:
    """Fewest samples for a percentile claim with no sample above it (LoadGen: p99 at 99% -> 459).

    The chance that all n samples fall below the true p-quantile is p**n; the claim holds at
    ``confidence`` when that chance is at most 1 - confidence.
    """
    if not 0 < percentile < 1 or not 0 < confidence < 1:
        raise ValueError(f"percentile and confidence must be in (0, 1); got {percentile}, {confidence}")
    return math.ceil(math.log(1.0 - confidence) / math.log(percentile))


P99_SAMPLES = required_samples(0.99, 0.99)  # 459


@dataclass(frozen=True)
class MethodSettings:
    """How one point is measured. Times in milliseconds or seconds as named."""

    warmup_runs: int = 10
    warmup_ms: float = 200.0
    window_ms: float = 500.0
    min_window_requests: int = math.ceil(P99_SAMPLES / 3)  # 3 merged windows reach a p99's samples
    max_windows: int = 10
    tolerance: float = 0.10
    min_samples: int = P99_SAMPLES  # over all rounds of a point
    max_point_s: float = 20.0  # per round
    rounds: int = 1

    def __post_init__(self) -> None:
        if self.max_windows < STABLE_WINDOWS:
            raise ValueError(f"max_windows must be >= {STABLE_WINDOWS}; got {self.max_windows}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1; got {self.rounds}")

    @property
    def round_samples(self) -> int:
        """Samples one round needs so that the rounds together reach ``min_samples``."""
        return math.ceil(self.min_samples / self.rounds)


FULL_METHOD = MethodSettings(warmup_ms=100.0, window_ms=200.0,
                             min_window_requests=math.ceil(P99_SAMPLES / (3 * STABLE_WINDOWS)),
                             max_point_s=10.0, rounds=3)
QUICK_METHOD = MethodSettings(warmup_runs=3, warmup_ms=30.0, window_ms=100.0,
                              max_windows=5, max_point_s=1.0)

# Quantile levels each round keeps of its merged samples, so rounds can be pooled later (dense in
# the tail, where the pooled p95/p99 are read; 0.95 and 0.99 are levels, so one round reproduces
# its own percentiles exactly).
TAIL_LEVELS: tuple[float, ...] = tuple(float(v) for v in np.unique(np.round(np.concatenate(
    [np.arange(0.50, 0.90, 0.05), np.arange(0.90, 0.99, 0.005), np.arange(0.99, 1.0, 0.001), [1.0]]), 4)))


@dataclass(frozen=True)
class Window:
    """One measurement window: per-call latencies (ms) and the wall time the calls took (ms)."""

    latencies_ms: tuple[float, ...]
    wall_ms: float
    batch_size: int

    @property
    def throughput_rps(self) -> float:
        """Items per second over the window's wall time (back-to-back calls of one replica)."""
        return len(self.latencies_ms) * self.batch_size * 1000.0 / self.wall_ms

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))


@dataclass(frozen=True)
class PointResult:
    """What a point reports: merged figures of the last 3 windows and whether they can be trusted."""

    batch_size: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_mean_ms: float
    throughput_rps: float
    samples: int
    windows: int
    stable: bool
    reason: str  # why unstable, "" when stable
    tail_ms: tuple[float, ...] = ()  # latency at each of TAIL_LEVELS
    rounds: int = 1
    p50_spread_frac: float = 0.0  # (max - min) / median of the rounds' p50s


def within(values: Sequence[float], tolerance: float) -> bool:
    """True when max/min of positive values is at most 1 + tolerance."""
    low, high = min(values), max(values)
    return low > 0 and high / low <= 1.0 + tolerance


def windows_agree(windows: Sequence[Window], tolerance: float) -> bool:
    """perf_analyzer's rule: the last 3 windows agree within tolerance in throughput and p50 latency."""
    if len(windows) < STABLE_WINDOWS:
        return False
    last = windows[-STABLE_WINDOWS:]
    return within([w.throughput_rps for w in last], tolerance) and within([w.p50_ms for w in last], tolerance)


def summarise(windows: Sequence[Window], settings: MethodSettings, reason: str = "") -> PointResult:
    """Merge the last 3 windows (or all, if fewer) into the reported figures."""
    last = list(windows[-STABLE_WINDOWS:])
    latencies = np.concatenate([np.asarray(w.latencies_ms, dtype=float) for w in last])
    wall_ms = sum(w.wall_ms for w in last)
    batch = last[0].batch_size
    p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
    if not reason:
        if not windows_agree(windows, settings.tolerance):
            reason = f"windows did not agree within {settings.tolerance:.0%} in {len(windows)} windows"
        elif latencies.size < settings.round_samples:
            reason = _short_of_samples(latencies.size, settings.round_samples, float(latencies.mean()), settings)
    return PointResult(
        batch_size=batch,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        latency_mean_ms=float(latencies.mean()),
        throughput_rps=latencies.size * batch * 1000.0 / wall_ms,
        samples=int(latencies.size),
        windows=len(windows),
        stable=not reason,
        reason=reason,
        tail_ms=tuple(float(v) for v in np.quantile(latencies, TAIL_LEVELS)),
    )


def _short_of_samples(samples: int, needed: int, mean_ms: float, settings: MethodSettings) -> str:
    """Why a round has too few samples, and the budget that would back its share of the p99."""
    text = f"{samples} samples < {needed} needed for a p99"
    if settings.rounds > 1:
        text += f" ({settings.min_samples} over {settings.rounds} rounds)"
    return text + _needed_budget(mean_ms, settings)


def _needed_budget(mean_ms: float, settings: MethodSettings) -> str:
    """'; a call takes X ms, so ... needs max_point_s >= Y' when the round's budget is too small."""
    calls = max(settings.round_samples, STABLE_WINDOWS * settings.min_window_requests)
    needed_s = calls * mean_ms / 1000.0
    if needed_s <= settings.max_point_s:
        return ""
    return (f"; a call takes {mean_ms:.3g} ms, so {calls} calls need method.max_point_s >= "
            f"{math.ceil(needed_s * 1.1)} s per round")


def _budget_hint(windows: Sequence[Window], settings: MethodSettings) -> str:
    latencies = [v for w in windows for v in w.latencies_ms]
    return _needed_budget(sum(latencies) / len(latencies), settings) if latencies else ""


def rounds_agree(p50s_ms: Sequence[float], tolerance: float) -> bool:
    """A majority of rounds (the median one included) agree within ``tolerance`` on p50."""
    ordered = sorted(p50s_ms)
    median = ordered[(len(ordered) - 1) // 2]
    close = sum(1 for v in ordered if abs(v / median - 1.0) <= tolerance)
    return close >= len(ordered) // 2 + 1


def pooled_quantile(results: Sequence[PointResult], level: float) -> float:
    """The ``level`` quantile of all rounds' samples, from the quantiles each round kept.

    Each round's CDF is interpolated between its TAIL_LEVELS; the pooled CDF is their mixture
    weighted by sample count; the answer is the smallest of the rounds' kept quantiles at which
    that mixture reaches ``level``.
    """
    levels = np.asarray(TAIL_LEVELS)
    weights = np.asarray([r.samples for r in results], dtype=float)
    weights /= weights.sum()
    xs = np.unique(np.concatenate([np.asarray(r.tail_ms) for r in results]))
    cdf = sum(w * np.interp(xs, np.asarray(r.tail_ms), levels, left=0.0, right=1.0)
              for w, r in zip(weights, results))
    cdf = np.maximum.accumulate(cdf)
    # The smallest knot where the mixture reaches the level (never below it: rounding up keeps a
    # slow round's point mass in the tail instead of interpolating it away).
    position = min(int(np.searchsorted(cdf, level - 1e-12, side="left")), xs.size - 1)
    return float(xs[position])


def combine_rounds(results: Sequence[PointResult], settings: MethodSettings) -> PointResult:
    """One point's figures from its rounds (see the module docstring for what is taken from where)."""
    if not results:
        raise ValueError("combine_rounds needs at least one round")
    if len(results) == 1 and settings.rounds == 1:
        return results[0]
    p50s = [r.latency_p50_ms for r in results]
    p50 = float(np.median(p50s))
    samples = sum(r.samples for r in results)
    reasons = [f"round {i + 1}: {r.reason}" for i, r in enumerate(results) if not r.stable]
    if len(results) < settings.rounds:
        reasons.append(f"only {len(results)} of {settings.rounds} rounds measured")
    if not rounds_agree(p50s, settings.tolerance):
        reasons.append(f"rounds disagree on p50 ({', '.join(f'{v:.3g}' for v in p50s)} ms) "
                       f"by more than {settings.tolerance:.0%}")
    if not reasons and samples < settings.min_samples:
        reasons.append(f"{samples} samples < {settings.min_samples} needed for a p99")
    p95 = max(pooled_quantile(results, 0.95), p50)
    p99 = max(pooled_quantile(results, 0.99), p95)
    return PointResult(
        batch_size=results[0].batch_size,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        latency_mean_ms=sum(r.latency_mean_ms * r.samples for r in results) / samples,
        throughput_rps=float(np.median([r.throughput_rps for r in results])),
        samples=samples,
        windows=sum(r.windows for r in results),
        stable=not reasons,
        reason="; ".join(reasons),
        tail_ms=(),
        rounds=len(results),
        p50_spread_frac=(max(p50s) - min(p50s)) / p50,
    )


def measure_point(
    run_once: Callable[[], float],
    batch_size: int,
    settings: MethodSettings,
    clock: Callable[[], float] = time.perf_counter,
) -> PointResult:
    """One round of a point: warm up, then time ``run_once`` (returns its own latency in ms) in
    windows until stable.

    ``clock`` returns seconds. Stops early when the round's time budget ``max_point_s`` runs out
    (then unstable, with the reason).
    """
    start = clock()
    warm_calls = 0
    while warm_calls < settings.warmup_runs or (clock() - start) * 1000.0 < settings.warmup_ms:
        run_once()
        warm_calls += 1
        if clock() - start > settings.max_point_s / 4:
            break
    windows: list[Window] = []
    reason = ""
    while len(windows) < settings.max_windows:
        window_start = clock()
        latencies: list[float] = []
        while True:
            latencies.append(run_once())
            elapsed_ms = (clock() - window_start) * 1000.0
            if elapsed_ms >= settings.window_ms and len(latencies) >= settings.min_window_requests:
                break
            if clock() - start > settings.max_point_s:
                break
        windows.append(Window(tuple(latencies), max(elapsed_ms, 1e-9), batch_size))
        if clock() - start > settings.max_point_s:
            if not windows_agree(windows, settings.tolerance):
                reason = (f"time budget of {settings.max_point_s:g} s per round ran out after {len(windows)} "
                          f"window(s){_budget_hint(windows, settings)}")
            break
        if windows_agree(windows, settings.tolerance) and _merged(windows) >= settings.round_samples:
            break
    return summarise(windows, settings, reason)


def _merged(windows: Sequence[Window]) -> int:
    return sum(len(w.latencies_ms) for w in windows[-STABLE_WINDOWS:])


def sweep_should_stop(throughputs: Sequence[float], steps: int = 4, min_gain: float = 0.05) -> bool:
    """Model Analyzer's sweep stop: the best of the last ``steps`` is < ``min_gain`` above the first."""
    if len(throughputs) < steps:
        return False
    last = throughputs[-steps:]
    return max(last) < last[0] * (1.0 + min_gain)

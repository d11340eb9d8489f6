"""Timing one (variant, hardware, batch size) point: windows, the stability rule, percentiles.

The method follows perf_analyzer: measure in windows (at least ``window_ms`` and
``min_window_requests`` calls each); the point is stable when the last 3 windows agree within
``tolerance`` (max/min - 1) in throughput and in p50 latency; after ``max_windows`` windows it is
reported as unstable rather than with a number that looks exact. The reported figures merge the
last 3 windows. A p99 is only claimed (``stable``) with at least :func:`required_samples` calls
(MLPerf LoadGen's binomial rule: 459 at 99% confidence).

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
    min_samples: int = P99_SAMPLES
    max_point_s: float = 20.0

    def __post_init__(self) -> None:
        if self.max_windows < STABLE_WINDOWS:
            raise ValueError(f"max_windows must be >= {STABLE_WINDOWS}; got {self.max_windows}")


FULL_METHOD = MethodSettings()
QUICK_METHOD = MethodSettings(warmup_runs=3, warmup_ms=30.0, window_ms=100.0,
                              max_windows=5, max_point_s=1.5)


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
        elif latencies.size < settings.min_samples:
            reason = f"{latencies.size} samples < {settings.min_samples} needed for a p99"
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
    )


def measure_point(
    run_once: Callable[[], float],
    batch_size: int,
    settings: MethodSettings,
    clock: Callable[[], float] = time.perf_counter,
) -> PointResult:
    """Warm up, then time ``run_once`` (returns its own latency in ms) in windows until stable.

    ``clock`` returns seconds. Stops early when the point's time budget ``max_point_s`` runs out
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
            if not windows_agree(windows, settings.tolerance) or _merged(windows) < settings.min_samples:
                reason = f"time budget of {settings.max_point_s:g} s per point ran out after {len(windows)} window(s)"
            break
        if windows_agree(windows, settings.tolerance) and _merged(windows) >= settings.min_samples:
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

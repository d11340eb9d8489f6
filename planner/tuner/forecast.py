"""Load measures and forecasts the policies share: interval peak rates, traffic envelopes, a forecaster.

- *Interval peak rate*: the most arrivals in any ``window_s``-second window (whole seconds)
  inside an interval, divided by ``window_s``. It is what the oracle plans each interval for and
  what the predictive policy forecasts (IPA forecasts a maximum load too).
- *Traffic envelope* (InferLine's tuner): for windows ``w`` from the pipeline's service time
  doubling up to 60 s, the most arrivals in any window of length ``w``. The rate a plan must be
  sized for is the largest, over windows, of the smallest Poisson rate under which the observed
  maximum ``c`` is not surprising: with ``N = horizon_s / w`` windows, the maximum of ``N``
  Poisson(``lam*w``) counts reaches ``c`` with probability at least ``alpha`` (default 0.02), i.e.
  ``P(X >= c) >= 1 - (1 - alpha)^(1/N)``; since ``P(Poisson(mu) >= c)`` is the regularised lower
  incomplete gamma function ``P(c, mu)``, ``mu = gammaincinv(c, 1 - (1 - alpha)^(1/N))``
  (scipy.special). Short windows see Poisson noise, long ones the sustained rate; the test keeps
  noise from triggering scale-ups (a plan at rate ``lam`` already absorbs Poisson bursts).
- *Forecaster* (numpy only): the next-horizon peak rate is the larger of (a) a high quantile of
  the recent interval peaks and (b) their least-squares linear trend extrapolated to the end of the
  horizon, over the last ``lookback`` intervals (default: as many as the horizon spans, so a forecast
  looks back as far as it looks ahead; IPA looks back 2 minutes). With one interval of history the
  forecast is that interval's peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
from scipy.special import gammaincinv

from planner.tuner.settings import MS_PER_S, ForecastSettings, ForecasterKind


def interval_peaks_rps(counts_per_s: np.ndarray, interval_s: int, window_s: int) -> np.ndarray:
    """Per interval of ``interval_s`` whole seconds: the peak ``window_s``-second rate inside it."""
    counts = np.asarray(counts_per_s, dtype=np.float64)
    intervals = max(1, math.ceil(counts.size / interval_s))
    window_s = max(1, min(window_s, interval_s))
    padded = np.zeros(intervals * interval_s)
    padded[:counts.size] = counts
    cums = np.concatenate([[0.0], np.cumsum(padded)])
    out = np.empty(intervals)
    for k in range(intervals):
        lo, hi = k * interval_s, (k + 1) * interval_s
        sums = cums[lo + window_s:hi + 1] - cums[lo:hi - window_s + 1]
        out[k] = sums.max() / window_s
    return out


def gaps_cv(arrival_ms: np.ndarray, min_gaps: int = 20) -> float | None:
    """Coefficient of variation of inter-arrival gaps (None with fewer than ``min_gaps`` gaps).

    Over one interval it measures burstiness beyond Poisson (1) at the rate of that interval: what
    the planner's ``arrival_cv`` stands for.
    """
    gaps = np.diff(np.asarray(arrival_ms, dtype=np.float64))
    if gaps.size < min_gaps or gaps.mean() <= 0:
        return None
    return float(gaps.std() / gaps.mean())


def envelope_windows_s(service_s: float, longest_s: float = 60.0) -> tuple[float, ...]:
    """Window lengths from the pipeline's service time, doubling, up to ``longest_s``."""
    w = max(service_s, 1e-3)
    windows = []
    while w <= longest_s:
        windows.append(w)
        w *= 2.0
    return tuple(windows) or (longest_s,)


def max_counts(arrival_ms: np.ndarray, windows_s: tuple[float, ...]) -> np.ndarray:
    """The most arrivals in any window of each length (windows starting at an arrival)."""
    a = np.asarray(arrival_ms, dtype=np.float64)
    if a.size == 0:
        return np.zeros(len(windows_s))
    return np.array([float(np.max(np.searchsorted(a, a + MS_PER_S * w, side="left") - np.arange(a.size)))
                     for w in windows_s])


def envelope_rate_rps(arrival_ms: np.ndarray, windows_s: tuple[float, ...], horizon_s: float,
                      alpha: float = 0.02) -> float:
    """The smallest Poisson rate under which the observed envelope is not surprising (see the module)."""
    counts = max_counts(arrival_ms, windows_s)
    best = 0.0
    for w, c in zip(windows_s, counts):
        if w > horizon_s or c <= 0:
            continue
        windows = max(horizon_s / w, 1.0)
        p = -math.expm1(math.log1p(-alpha) / windows)  # 1 - (1 - alpha)^(1/N), accurately
        best = max(best, float(gammaincinv(c, p)) / w)
    return best


class Forecaster(Protocol):
    """Forecast the peak rate (requests/s) over the next ``horizon`` intervals from recent interval peaks."""

    def forecast(self, peaks_req_per_s: np.ndarray, horizon: float) -> float: ...


@dataclass(frozen=True)
class PeakForecaster:
    """The larger of a high quantile of the recent peaks and their linear trend (see the module)."""

    lookback: int | None = None  # None: ceil(horizon) intervals
    quantile: float = 0.9
    trend_weight: float = 1.0  # 0 disables the linear-trend term

    def forecast(self, peaks_req_per_s: np.ndarray, horizon: float) -> float:
        """The larger of the recent-peak quantile and the linear trend at ``horizon`` intervals ahead."""
        lookback = self.lookback if self.lookback is not None else max(1, math.ceil(horizon - 1e-9))
        recent = np.asarray(peaks_req_per_s, dtype=np.float64)[-lookback:]
        if recent.size == 0:
            return 0.0
        level = float(np.quantile(recent, self.quantile))
        if recent.size < 3 or self.trend_weight <= 0:
            return level
        x = np.arange(recent.size, dtype=np.float64)
        slope = float(np.polyfit(x, recent, 1)[0])
        return max(level, float(recent[-1]) + self.trend_weight * slope * horizon)


@dataclass(frozen=True)
class LastForecaster:
    """The last interval's peak (the naive forecast every other one should beat)."""

    def forecast(self, peaks_req_per_s: np.ndarray, horizon: float) -> float:
        recent = np.asarray(peaks_req_per_s, dtype=np.float64)
        return float(recent[-1]) if recent.size else 0.0


FORECASTERS: dict[ForecasterKind, Callable[[ForecastSettings], Forecaster]] = {
    ForecasterKind.PEAK: lambda s: PeakForecaster(s.lookback, s.quantile, s.trend_weight),
    ForecasterKind.LAST: lambda s: LastForecaster(),
}


def make_forecaster(settings: ForecastSettings) -> Forecaster:
    """The forecaster ``settings.kind`` names, with its settings."""
    return FORECASTERS[settings.kind](settings)

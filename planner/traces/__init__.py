"""Arrival traces: the Trace type, synthetic generators, transforms and summary statistics.

Pure functions: no file I/O here (readers and writers live in :mod:`planner.io.traces`). Times are
milliseconds from the start of the trace; rates are per second (``*_rps``). Every random choice
comes from the ``numpy.random.Generator`` passed in, so the same generator state gives the same trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Callable, Mapping

import numpy as np

from planner.errors import TraceError

TRACE_SCHEMA_VERSION = 1
_MS_PER_S = 1000.0
# Bounds on what a trace may hold, so that no input asks for unbounded memory: per-second counts
# take one int64 bin per second (1e7 s, about 116 days: 80 MB), arrivals 8 bytes each (2e7: 160 MB).
MAX_TRACE_DURATION_S = 1e7
MAX_TRACE_REQUESTS = 20_000_000


@dataclass(frozen=True)
class Trace:
    """Request arrival offsets (ms, sorted, >= 0) over ``duration_ms``, with optional per-request fields."""

    arrival_ms: np.ndarray
    duration_ms: float
    name: str = "trace"
    source: str = ""
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrivals = np.array(self.arrival_ms, dtype=np.float64)  # a copy: it is frozen below
        if arrivals.ndim != 1:
            raise TraceError(f"trace '{self.name}': arrival_ms must be one-dimensional, found shape {arrivals.shape}.")
        if arrivals.size and (not np.all(np.isfinite(arrivals)) or arrivals[0] < 0):
            raise TraceError(f"trace '{self.name}': arrival_ms must be finite and >= 0; shift the trace to start at 0.")
        if arrivals.size > 1 and np.any(np.diff(arrivals) < 0):
            raise TraceError(f"trace '{self.name}': arrival_ms must be sorted; sort the arrivals (sort_trace does).")
        if not math.isfinite(self.duration_ms) or self.duration_ms < (arrivals[-1] if arrivals.size else 0.0):
            raise TraceError(f"trace '{self.name}': duration_ms {self.duration_ms} is shorter than the last arrival; "
                             "set duration_ms to at least the last arrival offset.")
        if self.duration_ms > MAX_TRACE_DURATION_S * _MS_PER_S:
            raise TraceError(f"trace '{self.name}' lasts {self.duration_ms / _MS_PER_S:.4g} s, above the limit of "
                             f"{MAX_TRACE_DURATION_S:.0f} s (about 116 days); cut a window of it, or check the time "
                             "unit (nanoseconds read as seconds give such spans).")
        if arrivals.size > MAX_TRACE_REQUESTS:
            raise TraceError(f"trace '{self.name}' holds {arrivals.size} requests, above the limit of "
                             f"{MAX_TRACE_REQUESTS}; cut a window or thin it (scale < 1).")
        for key, values in self.fields.items():
            if len(values) != arrivals.size:
                raise TraceError(f"trace '{self.name}': field '{key}' has {len(values)} values for "
                                 f"{arrivals.size} arrivals; give one value per request.")
        arrivals.setflags(write=False)
        object.__setattr__(self, "arrival_ms", arrivals)

    @property
    def requests(self) -> int:
        return int(self.arrival_ms.size)

    @property
    def duration_s(self) -> float:
        return self.duration_ms / _MS_PER_S

    @property
    def mean_rps(self) -> float:
        return self.requests / self.duration_s if self.duration_ms > 0 else 0.0


def sort_trace(arrival_ms: np.ndarray, duration_ms: float, name: str = "trace", source: str = "",
               fields: Mapping[str, np.ndarray] | None = None) -> Trace:
    """A Trace from unsorted arrivals (stable sort; fields follow their arrivals)."""
    arrival_ms = np.asarray(arrival_ms, dtype=np.float64)
    order = np.argsort(arrival_ms, kind="stable")
    return Trace(arrival_ms[order], duration_ms, name, source,
                 {k: np.asarray(v)[order] for k, v in (fields or {}).items()})


class TraceFormat(str, Enum):
    """File formats planner.io.traces reads (defined here so the CLI need not import pandas to parse options)."""

    AUTO = "auto"
    CANONICAL = "canonical"
    TIMESTAMPS = "timestamps"
    COUNTS = "counts"
    AZURE = "azure"


# --- synthetic generators ---------------------------------------------------------------------------

class TraceKind(str, Enum):
    """The synthetic arrival processes."""

    POISSON = "poisson"
    GAMMA = "gamma"
    MMPP = "mmpp"
    DIURNAL = "diurnal"
    STEP = "step"
    RAMP = "ramp"


def _positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise TraceError(f"generator parameter '{name}': found {value!r}; it must be a positive number.")


def _rate(name: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise TraceError(f"generator parameter '{name}': found {value!r}; it must be a finite rate >= 0.")


def _bounded(duration_s: float, top_rps: float) -> None:
    """Refuse, before drawing anything, a trace longer or bigger than the Trace limits."""
    _positive("duration_s", duration_s)
    if duration_s > MAX_TRACE_DURATION_S:
        raise TraceError(f"generator parameter 'duration_s': found {duration_s:g}; at most {MAX_TRACE_DURATION_S:.0f}.")
    expected = top_rps * duration_s
    if expected > MAX_TRACE_REQUESTS:
        raise TraceError(f"a trace at {top_rps:g} rps for {duration_s:g} s holds about {expected:.3g} requests, "
                         f"above the limit of {MAX_TRACE_REQUESTS}; lower the rate or the duration.")


def _renewal(gaps_for: Callable[[int], np.ndarray], mean_gap_ms: float, duration_ms: float) -> np.ndarray:
    """Cumulative sums of gaps drawn in chunks until ``duration_ms`` is passed; arrivals < duration_ms."""
    expected = duration_ms / mean_gap_ms
    chunk = int(expected + 6.0 * math.sqrt(expected + 1.0) + 16)
    pieces: list[np.ndarray] = []
    last = 0.0
    while last < duration_ms:
        times = last + np.cumsum(gaps_for(chunk))
        pieces.append(times)
        last = float(times[-1])
        chunk = max(16, chunk // 4)
    arrivals = np.concatenate(pieces) if pieces else np.empty(0)
    return arrivals[arrivals < duration_ms]


def poisson(rate_rps: float, duration_s: float, rng: np.random.Generator) -> Trace:
    """Poisson arrivals at ``rate_rps`` (exponential gaps; CV 1)."""
    return gamma(rate_rps, 1.0, duration_s, rng, kind=TraceKind.POISSON)


def gamma(rate_rps: float, cv: float, duration_s: float, rng: np.random.Generator,
          kind: TraceKind = TraceKind.GAMMA) -> Trace:
    """Renewal arrivals with Gamma gaps of mean ``1/rate_rps`` and coefficient of variation ``cv`` (0.1..8 and beyond)."""
    _positive("rate_rps", rate_rps)
    _positive("cv", cv)
    if cv > 100:
        raise TraceError(f"generator parameter 'cv': found {cv:g}; at most 100.")
    _bounded(duration_s, rate_rps)
    mean_gap_ms = _MS_PER_S / rate_rps
    shape = 1.0 / (cv * cv)
    duration_ms = duration_s * _MS_PER_S
    if kind is TraceKind.POISSON:
        arrivals = _renewal(lambda n: rng.exponential(mean_gap_ms, n), mean_gap_ms, duration_ms)
        source = f"poisson(rate_rps={rate_rps:g}, duration_s={duration_s:g})"
    else:
        arrivals = _renewal(lambda n: rng.gamma(shape, mean_gap_ms / shape, n), mean_gap_ms, duration_ms)
        source = f"gamma(rate_rps={rate_rps:g}, cv={cv:g}, duration_s={duration_s:g})"
    return Trace(arrivals, duration_ms, kind.value, source)


def mmpp(rate_low_rps: float, rate_high_rps: float, mean_low_s: float, mean_high_s: float,
         duration_s: float, rng: np.random.Generator) -> Trace:
    """Two-state Markov-modulated Poisson process: exponential sojourns in a low and a high rate state.

    Starts in the low state; the long-run mean rate is the sojourn-weighted mean of the two rates.
    """
    for name, value in (("rate_high_rps", rate_high_rps), ("mean_low_s", mean_low_s),
                        ("mean_high_s", mean_high_s), ("duration_s", duration_s)):
        _positive(name, value)
    _rate("rate_low_rps", rate_low_rps)
    _bounded(duration_s, max(rate_low_rps, rate_high_rps))
    if duration_s / min(mean_low_s, mean_high_s) > MAX_TRACE_REQUESTS:
        raise TraceError(f"mmpp: {duration_s:g} s with sojourns of {min(mean_low_s, mean_high_s):g} s means too many "
                         "state changes; lengthen mean_low_s / mean_high_s.")
    duration_ms = duration_s * _MS_PER_S
    pieces: list[np.ndarray] = []
    start_ms, high = 0.0, False
    while start_ms < duration_ms:
        sojourn_ms = rng.exponential((mean_high_s if high else mean_low_s) * _MS_PER_S)
        end_ms = min(duration_ms, start_ms + sojourn_ms)
        rate = rate_high_rps if high else rate_low_rps
        count = rng.poisson(rate * (end_ms - start_ms) / _MS_PER_S) if rate > 0 else 0
        if count:
            pieces.append(np.sort(rng.uniform(start_ms, end_ms, count)))
        start_ms, high = end_ms, not high
    arrivals = np.concatenate(pieces) if pieces else np.empty(0)
    source = (f"mmpp(rate_low_rps={rate_low_rps:g}, rate_high_rps={rate_high_rps:g}, mean_low_s={mean_low_s:g}, "
              f"mean_high_s={mean_high_s:g}, duration_s={duration_s:g})")
    return Trace(arrivals, duration_ms, TraceKind.MMPP.value, source)


def inhomogeneous_poisson(rate_rps: Callable[[np.ndarray], np.ndarray], max_rate_rps: float, duration_s: float,
                          rng: np.random.Generator, name: str = "inhomogeneous", source: str = "") -> Trace:
    """Poisson arrivals with a time-varying rate (a function of time in seconds), by thinning at ``max_rate_rps``."""
    _positive("max_rate_rps", max_rate_rps)
    _bounded(duration_s, max_rate_rps)
    duration_ms = duration_s * _MS_PER_S
    count = rng.poisson(max_rate_rps * duration_s)
    candidates = np.sort(rng.uniform(0.0, duration_ms, count))
    keep = rng.random(count) * max_rate_rps < rate_rps(candidates / _MS_PER_S)
    return Trace(candidates[keep], duration_ms, name, source)


def diurnal(mean_rps: float, amplitude: float, period_s: float, duration_s: float, rng: np.random.Generator,
            phase: float = 0.0) -> Trace:
    """Poisson arrivals whose rate is ``mean_rps * (1 + amplitude * sin(2 pi t / period_s + phase))``."""
    _positive("mean_rps", mean_rps)
    _positive("period_s", period_s)
    _positive("duration_s", duration_s)
    if not 0 <= amplitude <= 1:
        raise TraceError(f"generator parameter 'amplitude': found {amplitude!r}; it must be in [0, 1].")
    rate = lambda t: mean_rps * (1.0 + amplitude * np.sin(2.0 * math.pi * t / period_s + phase))
    source = (f"diurnal(mean_rps={mean_rps:g}, amplitude={amplitude:g}, period_s={period_s:g}, "
              f"phase={phase:g}, duration_s={duration_s:g})")
    return inhomogeneous_poisson(rate, mean_rps * (1.0 + amplitude), duration_s, rng, TraceKind.DIURNAL.value, source)


def step(rate_before_rps: float, rate_after_rps: float, step_at_s: float, duration_s: float,
         rng: np.random.Generator) -> Trace:
    """Poisson arrivals whose rate jumps from ``rate_before_rps`` to ``rate_after_rps`` at ``step_at_s``."""
    _rate("rate_before_rps", rate_before_rps)
    _rate("rate_after_rps", rate_after_rps)
    _positive("duration_s", duration_s)
    if not (math.isfinite(step_at_s) and 0 <= step_at_s <= duration_s):
        raise TraceError(f"generator parameter 'step_at_s': found {step_at_s!r}; it must be in [0, duration_s].")
    top = max(rate_before_rps, rate_after_rps)
    rate = lambda t: np.where(t < step_at_s, rate_before_rps, rate_after_rps)
    source = (f"step(rate_before_rps={rate_before_rps:g}, rate_after_rps={rate_after_rps:g}, "
              f"step_at_s={step_at_s:g}, duration_s={duration_s:g})")
    return inhomogeneous_poisson(rate, top, duration_s, rng, TraceKind.STEP.value, source)


def ramp(rate_start_rps: float, rate_end_rps: float, duration_s: float, rng: np.random.Generator) -> Trace:
    """Poisson arrivals whose rate changes linearly from ``rate_start_rps`` to ``rate_end_rps``."""
    _rate("rate_start_rps", rate_start_rps)
    _rate("rate_end_rps", rate_end_rps)
    _positive("duration_s", duration_s)
    top = max(rate_start_rps, rate_end_rps)
    rate = lambda t: rate_start_rps + (rate_end_rps - rate_start_rps) * t / duration_s
    source = f"ramp(rate_start_rps={rate_start_rps:g}, rate_end_rps={rate_end_rps:g}, duration_s={duration_s:g})"
    return inhomogeneous_poisson(rate, top, duration_s, rng, TraceKind.RAMP.value, source)


@dataclass(frozen=True)
class GeneratorParams:
    """Every synthetic generator's parameters (each kind reads its own; see :data:`GENERATORS`).

    ``None`` rates take the documented defaults: mmpp's high state 4x ``rate_rps``, step's and
    ramp's second rate 2x ``rate_rps``; the step happens half way unless ``step_at_s`` says.
    """

    rate_rps: float = 10.0
    duration_s: float = 600.0
    cv: float = 1.0
    rate_high_rps: float | None = None
    mean_low_s: float = 30.0
    mean_high_s: float = 5.0
    amplitude: float = 0.5
    period_s: float = 86400.0
    rate_after_rps: float | None = None
    step_at_s: float | None = None
    rate_end_rps: float | None = None


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


# One generator per TraceKind (the CLI's `trace generate --kind` dispatches through this).
GENERATORS: dict[TraceKind, Callable[[GeneratorParams, np.random.Generator], Trace]] = {
    TraceKind.POISSON: lambda p, rng: poisson(p.rate_rps, p.duration_s, rng),
    TraceKind.GAMMA: lambda p, rng: gamma(p.rate_rps, p.cv, p.duration_s, rng),
    TraceKind.MMPP: lambda p, rng: mmpp(p.rate_rps, _or(p.rate_high_rps, 4 * p.rate_rps), p.mean_low_s,
                                        p.mean_high_s, p.duration_s, rng),
    TraceKind.DIURNAL: lambda p, rng: diurnal(p.rate_rps, p.amplitude, p.period_s, p.duration_s, rng),
    TraceKind.STEP: lambda p, rng: step(p.rate_rps, _or(p.rate_after_rps, 2 * p.rate_rps),
                                        _or(p.step_at_s, p.duration_s / 2), p.duration_s, rng),
    TraceKind.RAMP: lambda p, rng: ramp(p.rate_rps, _or(p.rate_end_rps, 2 * p.rate_rps), p.duration_s, rng),
}


def generate(kind: TraceKind, params: GeneratorParams, rng: np.random.Generator) -> Trace:
    """A synthetic trace of ``kind``; parameters are checked (finite, in range, bounded size) first."""
    for name in ("rate_rps", "duration_s", "cv", "rate_high_rps", "mean_low_s", "mean_high_s", "amplitude",
                 "period_s", "rate_after_rps", "step_at_s", "rate_end_rps"):
        value = getattr(params, name)
        if value is not None and not math.isfinite(value):
            raise TraceError(f"generator parameter '{name}': found {value!r}; it must be a finite number.")
    return GENERATORS[kind](params, rng)


# --- per-second counts ------------------------------------------------------------------------------

def from_counts(counts_per_s: np.ndarray, rng: np.random.Generator, name: str = "counts", source: str = "") -> Trace:
    """Arrivals from per-second counts: k arrivals placed uniformly at random inside each second."""
    counts = np.asarray(counts_per_s, dtype=np.int64)
    if counts.size and counts.min() < 0:
        raise TraceError(f"trace '{name}': per-second counts must be >= 0, found {int(counts.min())}.")
    if counts.size > MAX_TRACE_DURATION_S:
        raise TraceError(f"trace '{name}': {counts.size} seconds of counts, above the limit of "
                         f"{MAX_TRACE_DURATION_S:.0f}; cut a window (--start-s, --duration-s).")
    total = int(counts.sum(dtype=np.float64)) if counts.size else 0
    if total > MAX_TRACE_REQUESTS:
        raise TraceError(f"trace '{name}': the counts add up to {total} requests, above the limit of "
                         f"{MAX_TRACE_REQUESTS}; cut a window or scale down (--scale).")
    seconds = np.repeat(np.arange(counts.size, dtype=np.float64), counts)
    # second + offset stays inside its second (clamped: rounding could reach the next one), so one
    # sort orders arrivals within each second only.
    inside = np.minimum(seconds + rng.random(seconds.size), np.nextafter(seconds + 1.0, 0.0))
    arrivals = np.sort(inside) * _MS_PER_S
    return Trace(arrivals, counts.size * _MS_PER_S, name, source)


def scale_counts(counts_per_s: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Multiply per-second counts by ``factor`` with stochastic rounding (the mean is kept exactly)."""
    _positive("factor", factor)
    scaled = np.asarray(counts_per_s, dtype=np.float64) * factor
    if scaled.sum() > MAX_TRACE_REQUESTS:
        raise TraceError(f"scaling by {factor:g} gives {scaled.sum():.3g} requests, above the limit of "
                         f"{MAX_TRACE_REQUESTS}; lower --scale or cut a window.")
    whole = np.floor(scaled)
    return (whole + (rng.random(scaled.size) < scaled - whole)).astype(np.int64)


def counts_per_second(trace: Trace) -> np.ndarray:
    """Arrivals in each whole second of the trace (the last, partial second included); at most
    MAX_TRACE_DURATION_S bins, as the Trace type bounds its duration."""
    seconds = max(1, math.ceil(trace.duration_ms / _MS_PER_S - 1e-9))
    index = np.minimum((trace.arrival_ms // _MS_PER_S).astype(np.int64), seconds - 1)
    return np.bincount(index, minlength=seconds)


# --- transforms -------------------------------------------------------------------------------------

def rescale(trace: Trace, factor: float, rng: np.random.Generator) -> Trace:
    """Multiply the arrival rate by ``factor`` keeping the duration and the shape of the rate over time.

    ``factor < 1`` thins each arrival independently with probability ``factor``; ``factor > 1`` keeps
    each arrival and adds ``factor - 1`` copies on average, each placed uniformly at random inside the
    same second as its original (as per-second count traces are expanded). Extra per-request fields
    are copied with their arrival.
    """
    _positive("factor", factor)
    n = trace.requests
    if n * factor > MAX_TRACE_REQUESTS:
        raise TraceError(f"trace '{trace.name}': scaling {n} requests by {factor:g} exceeds the limit of "
                         f"{MAX_TRACE_REQUESTS} requests; lower the scale or cut a window.")
    if factor <= 1.0:
        keep = rng.random(n) < factor
        return Trace(trace.arrival_ms[keep], trace.duration_ms, trace.name, _note(trace, f"rescale({factor:g})"),
                     {k: np.asarray(v)[keep] for k, v in trace.fields.items()})
    extra = math.floor(factor - 1.0)
    copies = extra + (rng.random(n) < (factor - 1.0 - extra))
    source_index = np.repeat(np.arange(n), copies)
    second_start = np.floor(trace.arrival_ms[source_index] / _MS_PER_S) * _MS_PER_S
    copy_ms = np.minimum(second_start + rng.random(source_index.size) * _MS_PER_S, trace.duration_ms)
    index = np.concatenate([np.arange(n), source_index])
    return sort_trace(np.concatenate([trace.arrival_ms, copy_ms]), trace.duration_ms, trace.name,
                      _note(trace, f"rescale({factor:g})"), {k: np.asarray(v)[index] for k, v in trace.fields.items()})


def compress_time(trace: Trace, factor: float) -> Trace:
    """Play the trace ``factor`` times faster: offsets and duration divided by ``factor`` (rate x factor)."""
    _positive("factor", factor)
    return replace(trace, arrival_ms=trace.arrival_ms / factor, duration_ms=trace.duration_ms / factor,
                   source=_note(trace, f"compress_time({factor:g})"))


def window(trace: Trace, start_s: float, duration_s: float | None) -> Trace:
    """The part of the trace in ``[start_s, start_s + duration_s)``, shifted to start at 0."""
    start_ms = start_s * _MS_PER_S
    end_ms = trace.duration_ms if duration_s is None else min(trace.duration_ms, start_ms + duration_s * _MS_PER_S)
    if start_ms < 0 or end_ms <= start_ms:
        raise TraceError(f"trace '{trace.name}': window start {start_s:g} s, duration {duration_s} s is empty "
                         f"(the trace lasts {trace.duration_s:g} s); pick a window inside it.")
    lo, hi = np.searchsorted(trace.arrival_ms, [start_ms, end_ms], side="left")
    return Trace(trace.arrival_ms[lo:hi] - start_ms, end_ms - start_ms, trace.name,
                 _note(trace, f"window(start_s={start_s:g}, duration_s={(end_ms - start_ms) / _MS_PER_S:g})"),
                 {k: np.asarray(v)[lo:hi] for k, v in trace.fields.items()})


def _note(trace: Trace, step_: str) -> str:
    return f"{trace.source} | {step_}" if trace.source else step_


# --- summary ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TraceSummary:
    """What `pipeplan trace describe` prints."""

    name: str
    requests: int
    duration_s: float
    mean_rps: float
    peak_rps: float  # the busiest whole second
    cv_per_second: float  # coefficient of variation of per-second counts
    cv_interarrival: float
    empty_seconds_fraction: float


def describe(trace: Trace) -> TraceSummary:
    """Mean and peak rate, CV of per-second counts and of gaps, share of empty seconds."""
    counts = counts_per_second(trace)
    mean = float(counts.mean())
    gaps = np.diff(trace.arrival_ms)
    cv_gaps = float(gaps.std() / gaps.mean()) if gaps.size > 1 and gaps.mean() > 0 else math.nan
    return TraceSummary(
        name=trace.name,
        requests=trace.requests,
        duration_s=trace.duration_s,
        mean_rps=trace.mean_rps,
        peak_rps=float(counts.max()),
        cv_per_second=float(counts.std() / mean) if mean > 0 else math.nan,
        cv_interarrival=cv_gaps,
        empty_seconds_fraction=float(np.mean(counts == 0)),
    )

"""Measure a live reconfiguration: how long the switch takes and whether any request fails during it.

A probe replays an even open-loop schedule at ``rate_rps`` against the running pipeline from
``settle_s`` before the switch until ``settle_s`` after it. The switch window is [begin, end] of
the engine call (Triton: the model-load calls returned; Ray Serve: the application is RUNNING
again). Requests *sent* inside the window count as "during"; a failure anywhere is reported.
This is the tuner's reconfiguration cost as a measured number.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import numpy as np

from planner.loadgen.sender import Bounds, Replay, replay
from planner.loadgen.target import Target
from planner.sim.run import quantile
from planner.traces import Trace

T = TypeVar("T")
_PROBE_MAX_S = 900.0


@dataclass(frozen=True)
class SwitchReport:
    """A reconfiguration as measured under a probe load (times in seconds, latencies in ms)."""

    switch_s: float
    probe_rps: float
    requests: int
    failed: int
    requests_during: int
    failed_during: int
    p99_before_ms: float
    p99_during_ms: float
    p99_after_ms: float


def _p99(latency_ms: np.ndarray) -> float:
    late = np.where(np.isnan(latency_ms), np.inf, latency_ms)
    return quantile(late, 0.99) if late.size else math.nan


def report(probe: Replay, begin_s: float, end_s: float, rate_rps: float) -> SwitchReport:
    """Split the probe's requests at the switch window (send times on the probe's clock)."""
    sent_s = probe.origin_s + probe.send_ms / 1000.0
    before, during, after = sent_s < begin_s, (sent_s >= begin_s) & (sent_s <= end_s), sent_s > end_s
    failed = probe.failed
    return SwitchReport(switch_s=end_s - begin_s, probe_rps=rate_rps, requests=probe.requests,
                        failed=int(failed.sum()), requests_during=int(during.sum()),
                        failed_during=int((failed & during).sum()), p99_before_ms=_p99(probe.latency_ms[before]),
                        p99_during_ms=_p99(probe.latency_ms[during]), p99_after_ms=_p99(probe.latency_ms[after]))


def measure(target: Target, rate_rps: float, settle_s: float, action: Callable[[], T]) -> tuple[T, SwitchReport]:
    """Run ``action`` (the switch) under a probe load; its result and the measured report."""
    gap_ms = 1000.0 / rate_rps
    schedule = np.arange(0.0, _PROBE_MAX_S * 1000.0, gap_ms)
    trace = Trace(schedule, float(schedule[-1]), name=f"probe-{rate_rps:g}rps")
    stop = threading.Event()
    holder: dict[str, Replay] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("probe", replay(target, trace, Bounds(), stop)),
                              name="switch-probe", daemon=True)
    thread.start()
    try:
        time.sleep(settle_s)
        begin = time.monotonic()
        result = action()
        end = time.monotonic()
        time.sleep(settle_s)
    finally:
        stop.set()
        thread.join()
    return result, report(holder["probe"], begin, end, rate_rps)

"""The measurement method: stability rule, sample-count rule, percentiles, sweep stop."""

from __future__ import annotations

import math

import pytest

from profiler.measure import (
    MethodSettings,
    Window,
    measure_point,
    required_samples,
    summarise,
    sweep_should_stop,
    windows_agree,
    within,
)


class FakeClock:
    """A clock that moves only when a fake call 'takes' time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fake_call(clock: FakeClock, latencies_ms):
    """run_once for measure_point: advances the clock by the next latency and reports it."""
    iterator = iter(latencies_ms)

    def run_once() -> float:
        latency = next(iterator)
        clock.now += latency / 1000.0
        return latency

    return run_once


def test_loadgen_sample_rule():
    assert required_samples(0.99, 0.99) == 459
    assert required_samples(0.95, 0.99) == 90
    assert required_samples(0.9, 0.99) == math.ceil(math.log(0.01) / math.log(0.9))
    with pytest.raises(ValueError):
        required_samples(1.0)


def test_within_and_window_agreement():
    assert within([1.0, 1.05, 1.1], 0.10)
    assert not within([1.0, 1.2], 0.10)
    same = [Window((1.0,) * 10, 10.0, 1)] * 3
    assert windows_agree(same, 0.10)
    assert not windows_agree(same[:2], 0.10)  # fewer than 3 windows is never stable
    slow_tail = same[:2] + [Window((1.5,) * 10, 15.0, 1)]
    assert not windows_agree(slow_tail, 0.10)
    # Only the LAST three windows count: an early outlier does not matter.
    assert windows_agree([Window((5.0,) * 10, 50.0, 1)] + same, 0.10)


def test_constant_latency_is_stable_with_enough_samples():
    clock = FakeClock()
    settings = MethodSettings(warmup_runs=2, warmup_ms=0, window_ms=100, min_window_requests=153,
                              max_windows=10, max_point_s=60)
    result = measure_point(fake_call(clock, [0.5] * 10_000), 4, settings, clock)
    assert result.stable and result.reason == ""
    assert result.windows == 3
    assert result.samples >= 459
    assert result.latency_p50_ms == pytest.approx(0.5)
    assert result.throughput_rps == pytest.approx(4 / 0.5e-3, rel=1e-6)  # 4 items per 0.5 ms


def test_drifting_latency_is_reported_unstable_after_max_windows():
    clock = FakeClock()
    settings = MethodSettings(warmup_runs=1, warmup_ms=0, window_ms=10, min_window_requests=5,
                              max_windows=5, max_point_s=60, min_samples=1)
    # Latency grows 30% per window: the last three never agree within 10%.
    drifting = [1.0 * 1.3 ** (i // 10) for i in range(10_000)]
    result = measure_point(fake_call(clock, drifting), 1, settings, clock)
    assert not result.stable
    assert result.windows == 5
    assert "did not agree" in result.reason


def test_too_few_samples_for_a_p99_is_unstable():
    clock = FakeClock()
    settings = MethodSettings(warmup_runs=1, warmup_ms=0, window_ms=1, min_window_requests=10,
                              max_windows=3, max_point_s=60)
    result = measure_point(fake_call(clock, [2.0] * 1000), 1, settings, clock)
    assert result.samples == 30
    assert not result.stable
    assert "459" in result.reason


def test_time_budget_stops_a_slow_point_and_says_so():
    clock = FakeClock()
    settings = MethodSettings(warmup_runs=1, warmup_ms=0, window_ms=100, min_window_requests=153,
                              max_windows=10, max_point_s=1.0)
    result = measure_point(fake_call(clock, [300.0] * 100), 1, settings, clock)
    assert not result.stable
    assert "time budget" in result.reason
    assert clock.now < 2.0


def test_percentiles_merge_last_three_windows():
    windows = [Window(tuple([100.0] * 10), 1000.0, 1)] + [Window(tuple(float(v) for v in range(1, 101)), 5050.0, 2)] * 3
    result = summarise(windows, MethodSettings(min_samples=1))
    assert result.samples == 300
    assert 50 <= result.latency_p50_ms <= 51
    assert 99 <= result.latency_p99_ms <= 100
    assert result.latency_p50_ms <= result.latency_p95_ms <= result.latency_p99_ms
    assert result.throughput_rps == pytest.approx(300 * 2 * 1000 / (3 * 5050.0))


def test_sweep_stop_after_four_flat_steps():
    assert not sweep_should_stop([100, 200, 400])
    assert not sweep_should_stop([100, 200, 400, 800])
    assert sweep_should_stop([100, 200, 400, 410, 412, 415])
    assert sweep_should_stop([400, 404, 390, 410])

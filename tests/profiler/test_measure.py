"""The measurement method: stability rule, sample-count rule, percentiles, sweep stop."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from profiler.measure import (
    MethodSettings,
    PointResult,
    Window,
    combine_rounds,
    measure_point,
    pooled_quantile,
    required_samples,
    rounds_agree,
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
    assert "459 calls need method.max_point_s >= 152 s per round" in result.reason  # 459 x 300 ms + 10%
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


def _round(latencies, batch_size=1, stable=True) -> PointResult:
    """One round's result from its samples, as measure_point would report it."""
    windows = [Window(tuple(float(v) for v in chunk), float(sum(chunk)), batch_size)
               for chunk in np.array_split(np.asarray(latencies, dtype=float), 3)]
    result = summarise(windows, MethodSettings(min_samples=len(latencies)))
    return result if stable else dataclasses.replace(result, stable=False, reason="windows did not agree")


def test_pooled_quantile_of_one_round_is_that_rounds_percentile():
    samples = np.random.default_rng(1).gamma(2.0, 3.0, size=900)
    one = _round(samples)
    for level in (0.5, 0.95, 0.99):
        assert pooled_quantile([one], level) == pytest.approx(float(np.quantile(samples, level)), rel=1e-9)


def test_pooled_quantile_matches_the_quantile_of_all_samples():
    rng = np.random.default_rng(2)
    parts = [rng.gamma(2.0, 3.0, size=600), rng.gamma(2.0, 3.6, size=400), rng.normal(8.0, 1.0, size=500).clip(1)]
    pooled = np.concatenate(parts)
    for level in (0.95, 0.99):
        estimate = pooled_quantile([_round(p) for p in parts], level)
        assert estimate == pytest.approx(float(np.quantile(pooled, level)), rel=0.03)


def test_rounds_agree_needs_a_majority_around_the_median():
    assert rounds_agree([1.0], 0.1)
    assert rounds_agree([1.0, 1.05, 2.0], 0.1)  # one disturbed round of three is outvoted
    assert not rounds_agree([1.0, 1.5, 2.0], 0.1)
    assert not rounds_agree([1.0, 1.2], 0.1)  # two rounds must both agree


def test_combine_rounds_reports_the_median_round_and_the_spread():
    settings = MethodSettings(rounds=3, min_samples=459)
    calm = [_round(np.full(153, 2.0)), _round(np.full(153, 2.1))]
    disturbed = _round(np.full(153, 5.0))  # a neighbour held the core during this round
    result = combine_rounds(calm + [disturbed], settings)
    assert result.latency_p50_ms == pytest.approx(2.1)  # the median round, not dragged to 3
    assert result.throughput_rps == pytest.approx(1000 / 2.1)
    assert result.samples == 459 and result.rounds == 3
    assert result.p50_spread_frac == pytest.approx((5.0 - 2.0) / 2.1)
    assert result.stable  # two of three rounds agree within 10%
    assert result.latency_p99_ms == pytest.approx(5.0)  # the pooled tail keeps the slow round's samples
    assert result.latency_mean_ms == pytest.approx((2.0 + 2.1 + 5.0) / 3)


def test_combine_rounds_flags_disagreement_missing_rounds_and_unstable_rounds():
    settings = MethodSettings(rounds=3, min_samples=459)
    spread = combine_rounds([_round(np.full(153, v)) for v in (1.0, 1.5, 2.0)], settings)
    assert not spread.stable and "rounds disagree" in spread.reason
    partial = combine_rounds([_round(np.full(153, 1.0))], settings)
    assert not partial.stable and "only 1 of 3 rounds" in partial.reason
    shaky = combine_rounds([_round(np.full(153, 1.0)), _round(np.full(153, 1.0), stable=False),
                            _round(np.full(153, 1.0))], settings)
    assert not shaky.stable and "round 2: windows did not agree" in shaky.reason


def test_rounds_share_the_sample_rule_and_a_short_round_says_what_budget_would_back_it():
    settings = MethodSettings(rounds=3, window_ms=100, min_window_requests=5, max_point_s=2.0)
    assert settings.round_samples == 153
    clock = FakeClock()
    result = measure_point(fake_call(clock, [50.0] * 1000), 1, settings, clock)
    assert not result.stable
    assert "< 153 needed for a p99 (459 over 3 rounds)" in result.reason
    assert "153 calls need method.max_point_s >= 9 s per round" in result.reason  # 153 x 50 ms, 10% to spare

"""The stage latency model against closed-form queueing results."""

import math

import pytest

from planner.estimate import latency as lat


def test_erlang_c_textbook_values():
    assert lat.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert lat.erlang_c(2, 1.0) == pytest.approx(1 / 3)  # c=2, a=1
    assert lat.erlang_c(3, 0.0) == 0.0
    assert lat.erlang_c(2, 2.0) == 1.0  # unstable


def test_mm1_wait_quantile_is_exact():
    # M/M/1: P(W > t) = rho * exp(-(mu - lambda) t)  =>  t99 = ln(rho / 0.01) / (mu - lambda)
    mu, lam = 1 / 10.0, 1 / 12.5  # per ms: E[S] = 10 ms, rho = 0.8
    expected = math.log(0.8 / 0.01) / (mu - lam)
    assert lat.wait_quantile_ms(1, 0.8, 10.0, 1.0, 1.0, 0.99) == pytest.approx(expected)


def test_wait_is_zero_when_waiting_is_rare_and_infinite_when_unstable():
    assert lat.wait_quantile_ms(4, 0.1, 10.0, 1.0, 1.0, 0.99) == 0.0
    assert math.isinf(lat.wait_quantile_ms(1, 1.0, 10.0, 1.0, 1.0, 0.99))


def test_deterministic_service_halves_the_mm1_wait():
    mm1 = lat.wait_quantile_ms(1, 0.8, 10.0, 1.0, 1.0, 0.99)
    md1 = lat.wait_quantile_ms(1, 0.8, 10.0, 1.0, 0.0, 0.99)
    assert md1 == pytest.approx(mm1 / 2)


def test_fill_time_is_a_gamma_quantile():
    # One more arrival at 1 per ms: exponential, median ln 2 ms.
    assert lat.fill_time_ms(2, 1.0, 0.5) == pytest.approx(math.log(2))
    assert lat.fill_time_ms(1, 1.0, 0.99) == 0.0
    assert lat.fill_time_ms(8, 1.0, 0.99) > lat.fill_time_ms(8, 1.0, 0.5)


def test_expected_batch_limits():
    assert lat.expected_batch(1, 1.0, 100.0) == 1.0
    assert lat.expected_batch(8, 1.0, 0.0) == pytest.approx(1.0)  # no timeout: take what is there
    assert lat.expected_batch(8, 1.0, 1e4) == pytest.approx(8.0)  # long timeout: always full
    assert 1.0 < lat.expected_batch(8, 1.0, 3.0) < 8.0


def test_service_scv_of_constant_service_is_zero():
    assert lat.service_scv(5.0, 5.0) == 0.0
    assert lat.service_scv(5.0, 10.0) > 0.0


def test_fanout_raises_the_item_quantile():
    assert lat.item_quantile(1.0) == pytest.approx(0.99)
    assert lat.item_quantile(0.5) == pytest.approx(0.99)
    assert lat.item_quantile(6.0) == pytest.approx(0.99 ** (1 / 6))


def test_stage_latency_adds_three_terms_and_reports_utilisation():
    point = lat.ServicePoint(batch_size=4, latency_p50_ms=10.0, latency_p99_ms=12.0, throughput_rps=400.0)
    terms, util = lat.stage_latency(point, replicas=2, load_rps=300.0, batch_timeout_ms=5.0,
                                    arrival_cv=1.0, fanout=1.0)
    assert terms.fill_ms == 5.0 and terms.service_ms == 12.0
    assert terms.total_ms == pytest.approx(terms.fill_ms + terms.wait_ms + terms.service_ms)
    mean_batch = lat.expected_batch(4, 0.3, 5.0)
    assert util == pytest.approx(300.0 / (2 * 400.0 * mean_batch / 4))


def test_more_replicas_never_wait_longer():
    point = lat.ServicePoint(1, 10.0, 15.0, 100.0)
    waits = [lat.stage_latency(point, n, 80.0, 0.0, 1.0, 1.0)[0].wait_ms for n in range(1, 8)]
    assert all(a >= b for a, b in zip(waits, waits[1:]))


def test_renewal_root_is_rho_for_poisson_and_grows_with_burstiness():
    assert lat.renewal_root(1.0, 2.4, 3) == pytest.approx(0.8)
    roots = [lat.renewal_root(scv, 0.6, 1) for scv in (0.0, 0.25, 1.0, 4.0)]
    assert roots == sorted(roots) and roots[2] == pytest.approx(0.6)
    # D/M/1: sigma solves sigma = exp(-(1 - sigma) / rho)
    sigma = lat.renewal_root(0.0, 0.6, 1)
    assert sigma == pytest.approx(math.exp(-(1 - sigma) / 0.6))


def test_bursty_arrivals_wait_longer_than_poisson():
    poisson = lat.wait_quantile_ms(2, 0.5, 10.0, 1.0, 1.0, 0.99)
    bursty = lat.wait_quantile_ms(2, 0.5, 10.0, 4.0, 1.0, 0.99)
    smooth = lat.wait_quantile_ms(2, 0.5, 10.0, 0.25, 1.0, 0.99)
    assert smooth < poisson < bursty


def test_item_arrival_variability():
    assert lat.item_arrival_scv(2.0, 1.0, source=True) == pytest.approx(4.0)
    assert lat.item_arrival_scv(0.5, 1.0, source=False) == pytest.approx(1.0)  # departures: at least Poisson
    assert lat.item_arrival_scv(1.0, 3.0, source=True) == pytest.approx(3.0)  # bulks of 3
    assert lat.item_arrival_scv(0.5, 0.5, source=True) == pytest.approx(0.5 * 0.25 + 0.5)  # thinning


@pytest.mark.parametrize("scv", [0.25, 1.0, 4.0])
def test_replica_scan_agrees_with_the_closed_form_wait(scv):
    """The candidate generation's incremental scan and wait_quantile_ms are the same formula."""
    point = lat.ServicePoint(1, 10.0, 14.0, 100.0)
    cv = scv**0.5
    queue = lat.StageQueue(point, load_rps=250.0, batch_timeout_ms=0.0, arrival_cv=cv, fanout=1.0)
    scv_service = lat.service_scv(10.0, 14.0)
    for replicas, terms, rho in queue.scan(3, 9):
        assert rho == pytest.approx(250.0 / (replicas * 100.0))
        expected = lat.wait_quantile_ms(replicas, rho, 10.0, scv, scv_service, 0.99)
        assert terms.wait_ms == pytest.approx(expected, rel=1e-9, abs=1e-12)

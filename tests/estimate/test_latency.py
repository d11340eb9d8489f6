"""The stage latency model against closed-form queueing results."""

import math

import pytest

from planner.estimate import flow
from planner.estimate import latency as lat
from planner.plan import ServiceCurve, ServicePoint


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


def _service(batches, overhead_ms=2.0, per_item_ms=1.0, spread=1.2):
    points = {b: ServicePoint(overhead_ms + per_item_ms * b, (overhead_ms + per_item_ms * b) * spread) for b in batches}
    return lat.BatchService.from_curve(ServiceCurve.from_points(points), max(batches))


def test_partial_batches_are_charged_by_the_service_curve():
    curve = ServiceCurve.from_points({1: ServicePoint(3.0, 4.0), 4: ServicePoint(6.0, 8.0)})
    service = lat.BatchService.from_curve(curve, 4)
    assert service.p99(2) == pytest.approx(curve.at(2).p99_ms)
    assert service.p99(2.5) == pytest.approx((curve.at(2).p99_ms + curve.at(3).p99_ms) / 2)


def test_stage_terms_add_up_and_utilisation_is_against_full_batches():
    service = _service([1, 2, 4])
    est = lat.StageQueue(service, load_items_per_s=300.0, batch_timeout_ms=5.0, item_scv=1.0).at(2)
    assert est.latency.total_ms == pytest.approx(est.latency.fill_ms + est.latency.wait_ms + est.latency.service_ms)
    assert est.latency.fill_ms >= 5.0
    assert est.utilization == pytest.approx(0.3 * service.mean(4) / (2 * 4))


def test_greedy_batches_fill_from_the_queue_under_load():
    """tau = 0 at a load one item per dispatch cannot carry: the batch grows until it keeps up."""
    service = _service([1, 2, 4, 8, 16], overhead_ms=10.0, per_item_ms=1.0)
    lam = 0.15  # per ms: 1.5 x what batch-1 service carries on one replica
    est = lat.StageQueue(service, lam * 1000, 0.0, 1.0).at(1)
    assert est.mean_batch > 1.0 and est.mean_batch == pytest.approx(lam * service.mean(est.mean_batch), rel=1e-9)
    assert est.utilization < 1.0 and math.isfinite(est.latency.total_ms)


def test_more_replicas_never_wait_longer():
    service = _service([1])
    waits = [lat.StageQueue(service, 80.0, 0.0, 1.0).at(n).latency.total_ms for n in range(1, 8)]
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
    assert flow.item_scv(4.0, 1.0) == pytest.approx(4.0)
    assert flow.item_scv(1.0, 3.0) == pytest.approx(3.0)  # bulks of 3
    assert flow.item_scv(0.25, 0.5) == pytest.approx(0.5 * 0.25 + 0.5)  # thinning


def test_smooth_servers_smooth_their_output_and_batches_make_it_bulky():
    smooth = lat.StageQueue(_service([1], spread=1.01), 150.0, 0.0, 1.0).at(1)
    assert smooth.departure_scv < 1.0
    bulky = lat.StageQueue(_service([1, 8], spread=1.01), 150.0, 50.0, 1.0).at(1)
    assert bulky.departure_scv > 1.0


@pytest.mark.parametrize("scv", [0.25, 1.0, 4.0])
def test_batch_one_wait_is_the_closed_form_gi_g_c_wait(scv):
    """With b = 1 the model's wait is exactly wait_quantile_ms (GI/M/c with the service factor)."""
    service = _service([1], overhead_ms=9.0, per_item_ms=1.0, spread=1.4)
    queue = lat.StageQueue(service, load_items_per_s=250.0, batch_timeout_ms=0.0, item_scv=scv)
    for est in queue.scan(3, 9):
        rho = 0.25 * service.mean(1) / est.replicas
        assert est.utilization == pytest.approx(rho)
        expected = lat.wait_quantile_ms(est.replicas, rho, service.mean(1), scv, service.cs2(1), 0.99)
        assert est.latency.wait_ms == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("load_items_per_s, max_utilization, throughput", [
    (1e9, 0.9, 100.0), (1e39, 0.9, 100.0), (10.0, 1e-9, 100.0), (10.0, 0.9, 1e-300)])
def test_the_first_useful_replica_count_is_computed_not_counted_to(load_items_per_s, max_utilization, throughput):
    curve = ServiceCurve.from_points({1: ServicePoint(10.0, 12.0)})
    service = lat.BatchService.from_curve(curve, 1, {1: throughput})
    first = lat.first_useful_replicas(service, load_items_per_s, max_utilization)
    assert first > 64  # beyond any max_replicas: the scan never starts

"""planner.sim.run.quantile is exactly numpy's ``inverted_cdf`` quantile, whichever path it takes
(the short tail above a sampled threshold, or the whole column)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.sim.run import quantile, quantile_rank

_QS = (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0)


def _columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    normal = rng.standard_normal(n)
    with_inf = normal.copy()
    with_inf[rng.integers(n)] = np.inf
    with_nan = normal.copy()
    with_nan[rng.integers(n)] = np.nan
    rising = np.sort(rng.lognormal(size=n))
    return {"normal": normal, "ties": np.round(rng.exponential(5.0, n)), "rising": rising,
            "falling": rising[::-1].copy(), "constant": np.full(n, 3.0), "with_inf": with_inf, "with_nan": with_nan}


@pytest.mark.parametrize("n", [1, 2, 7, 100, 5_000, 40_000, 200_000])
def test_equals_numpys_inverted_cdf_quantile(n):
    rng = np.random.default_rng(n)
    for name, column in _columns(rng, n).items():
        for q in _QS:
            expected = float(np.quantile(column, q, method="inverted_cdf"))
            for overwrite in (False, True):
                got = quantile(column.copy(), q, overwrite=overwrite)
                assert got == expected or (math.isnan(got) and math.isnan(expected)), (name, q, overwrite)


def test_a_column_is_left_in_order_unless_overwrite_allows_it():
    column = np.random.default_rng(1).standard_normal(50_000)
    before = column.copy()
    quantile(column, 0.5)
    np.testing.assert_array_equal(column, before)


def test_rank_matches_numpy_and_empty_is_nan():
    for n in (1, 3, 100, 1001, 123_457):
        values = np.arange(n, dtype=np.float64)
        for q in _QS:
            assert quantile_rank(n, q) == int(np.quantile(values, q, method="inverted_cdf"))
    assert math.isnan(quantile(np.empty(0), 0.99))

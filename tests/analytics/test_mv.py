"""Guideline 14 statistics on examples small enough to check by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics import mv

ACTUAL = [10.0, 12.0, 14.0, 16.0]  # mean 13, SST 20
PREDICTED = [11.0, 12.0, 13.0, 17.0]  # residuals −1, 0, 1, −1: SSE 3, sum −1


def test_r_squared_is_one_minus_sse_over_sst() -> None:
    assert mv.r_squared(ACTUAL, PREDICTED) == pytest.approx(1.0 - 3.0 / 20.0)


def test_cv_rmse_divides_by_n_minus_p_and_the_mean() -> None:
    assert mv.cv_rmse(ACTUAL, PREDICTED) == pytest.approx(math.sqrt(3.0 / 4.0) / 13.0 * 100.0)
    assert mv.cv_rmse(ACTUAL, PREDICTED, p=1) == pytest.approx(math.sqrt(3.0 / 3.0) / 13.0 * 100.0)


def test_nmbe_is_positive_when_the_model_predicts_low() -> None:
    assert mv.nmbe(ACTUAL, PREDICTED) == pytest.approx(-1.0 / (4 * 13.0) * 100.0)
    assert mv.nmbe(ACTUAL, PREDICTED, p=2) == pytest.approx(-1.0 / (2 * 13.0) * 100.0)
    assert mv.nmbe([2.0, 2.0], [1.0, 1.0]) == pytest.approx(50.0)


def test_a_perfect_model_scores_zero() -> None:
    assert mv.cv_rmse(ACTUAL, ACTUAL) == 0.0
    assert mv.nmbe(ACTUAL, ACTUAL) == 0.0
    assert mv.r_squared(ACTUAL, ACTUAL) == 1.0


def test_more_parameters_than_points_is_refused() -> None:
    with pytest.raises(ValueError, match="more points than parameters"):
        mv.cv_rmse(ACTUAL, PREDICTED, p=4)


@pytest.mark.parametrize(
    ("granularity", "cv", "bias", "expected"),
    [
        ("hourly", 30.0, -10.0, True),
        ("hourly", 30.1, 0.0, False),
        ("hourly", 5.0, 10.5, False),
        ("monthly", 15.0, 5.0, True),
        ("monthly", 16.0, 0.0, False),
        ("monthly", 10.0, -5.1, False),
    ],
)
def test_guideline14_limits(
    granularity: mv.Granularity, cv: float, bias: float, expected: bool
) -> None:
    assert mv.meets_guideline14(granularity, cv, bias) is expected


def test_lag1_autocorrelation_of_alternating_residuals_is_negative() -> None:
    # d = [1, −1, 1, −1]: Σ d_t d_{t−1} = −3, Σ d² = 4.
    assert mv.lag1_autocorrelation([1.0, -1.0, 1.0, -1.0]) == pytest.approx(-0.75)


def test_effective_points() -> None:
    assert mv.effective_points(100, 0.5) == pytest.approx(100 * 0.5 / 1.5)
    assert mv.effective_points(100, 0.0) == 100


def test_fractional_savings_uncertainty_follows_guideline14() -> None:
    # n = 12, ρ = 0 → n′ = 12; p = 2 → 10 degrees of freedom; m = 12; F = 0.1; CV = 10 %.
    t = 1.0464  # Student t at 0.84 (two-sided 68 %), 10 degrees of freedom
    expected = t * 1.26 * 0.10 * math.sqrt((12 / 12) * (1 + 2 / 12) / 12) / 0.10 * 100.0
    got = mv.fractional_savings_uncertainty(10.0, 12, 12, 0.10, rho=0.0, p=2)
    assert got == pytest.approx(expected, rel=1e-3)


def test_autocorrelation_widens_the_savings_uncertainty() -> None:
    independent = mv.fractional_savings_uncertainty(10.0, 8760, 8760, 0.05, rho=0.0, p=170)
    correlated = mv.fractional_savings_uncertainty(10.0, 8760, 8760, 0.05, rho=0.6, p=170)
    n_eff = 8760 * 0.4 / 1.6
    ratio = math.sqrt((8760 / n_eff) * (1 + 2 / n_eff)) / math.sqrt(1 + 2 / 8760)
    assert correlated / independent == pytest.approx(ratio, rel=0.01)


def test_avoided_energy_and_payback() -> None:
    assert mv.avoided_energy([100.0, 100.0], [90.0, 95.0]) == pytest.approx(15.0)
    assert mv.simple_payback_years(850.0, 566.0) == pytest.approx(850.0 / 566.0)
    assert mv.simple_payback_years(850.0, 0.0) == math.inf


def test_energy_cost_takes_a_flat_price_or_a_tariff() -> None:
    ts = np.array([0, 3_600_000], dtype=np.int64)
    assert mv.energy_cost(0.165, ts, [10.0, 20.0]) == pytest.approx(4.95)

    def night_cheaper(ts_ms: np.ndarray, kwh: np.ndarray) -> np.ndarray:
        return np.asarray(np.where(ts_ms < 3_600_000, 0.1, 0.2) * kwh, dtype=np.float64)

    assert mv.energy_cost(night_cheaper, ts, [10.0, 20.0]) == pytest.approx(5.0)

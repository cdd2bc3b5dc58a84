"""Measurement-and-verification statistics (ASHRAE Guideline 14, IPMVP): pure formulas.

Percentages are returned as percent (12.3 means 12.3 %). ``p`` is the number of model
parameters, which Guideline 14 subtracts from the number of points.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

Granularity = Literal["hourly", "monthly"]

# Guideline 14 calibration limits: (CV(RMSE) %, |NMBE| %) by data granularity.
GUIDELINE14_LIMITS: Final[dict[str, tuple[float, float]]] = {
    "hourly": (30.0, 10.0),
    "monthly": (15.0, 5.0),
}
# Guideline 14's empirical factor in the savings uncertainty formula.
_FSU_FACTOR: Final = 1.26

ArrayLike = npt.ArrayLike
Price = float | Callable[[npt.NDArray[np.int64], npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def _pair(actual: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(actual, dtype=np.float64)
    y_hat = np.asarray(predicted, dtype=np.float64)
    if y.shape != y_hat.shape or y.ndim != 1 or y.size == 0:
        raise ValueError("actual and predicted must be non-empty 1-D arrays of the same length")
    return y, y_hat


def _dof(n: int, p: int) -> int:
    if not 0 <= p < n:
        raise ValueError(f"need more points than parameters: n={n}, p={p}")
    return n - p


def r_squared(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Coefficient of determination, 1 − SSE/SST (a fraction; NaN for a constant actual)."""
    y, y_hat = _pair(actual, predicted)
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst == 0.0:
        return math.nan
    return 1.0 - float(np.sum((y - y_hat) ** 2)) / sst


def cv_rmse(actual: ArrayLike, predicted: ArrayLike, p: int = 0) -> float:
    """CV(RMSE) in percent: sqrt(Σ(y−ŷ)²/(n−p)) / ȳ × 100."""
    y, y_hat = _pair(actual, predicted)
    mean = float(y.mean())
    if mean == 0.0:
        return math.nan
    return math.sqrt(float(np.sum((y - y_hat) ** 2)) / _dof(y.size, p)) / mean * 100.0


def nmbe(actual: ArrayLike, predicted: ArrayLike, p: int = 0) -> float:
    """NMBE in percent: Σ(y−ŷ) / ((n−p)·ȳ) × 100 (positive when the model predicts low)."""
    y, y_hat = _pair(actual, predicted)
    mean = float(y.mean())
    if mean == 0.0:
        return math.nan
    return float(np.sum(y - y_hat)) / (_dof(y.size, p) * mean) * 100.0


def meets_guideline14(granularity: Granularity, cv_rmse_pct: float, nmbe_pct: float) -> bool:
    """Whether a model's CV(RMSE) and NMBE (percent) are within Guideline 14's limits."""
    cv_limit, nmbe_limit = GUIDELINE14_LIMITS[granularity]
    return bool(cv_rmse_pct <= cv_limit and abs(nmbe_pct) <= nmbe_limit)


def lag1_autocorrelation(residuals: ArrayLike) -> float:
    """Lag-1 autocorrelation of a residual series (0 for fewer than three points)."""
    r = np.asarray(residuals, dtype=np.float64)
    if r.size < 3:
        return 0.0
    d = r - r.mean()
    denominator = float(np.sum(d * d))
    if denominator == 0.0:
        return 0.0
    return float(np.sum(d[1:] * d[:-1])) / denominator


def effective_points(n: int, rho: float) -> float:
    """Guideline 14's effective number of independent points, n′ = n(1−ρ)/(1+ρ)."""
    if not -1.0 < rho < 1.0:
        raise ValueError(f"autocorrelation must be in (-1, 1), got {rho}")
    return n * (1.0 - rho) / (1.0 + rho)


def fractional_savings_uncertainty(
    cv_rmse_pct: float,
    n: int,
    m: int,
    savings_fraction: float,
    *,
    rho: float = 0.0,
    p: int = 0,
    confidence: float = 0.68,
) -> float:
    """Guideline 14 fractional savings uncertainty, in percent of the savings.

    ΔE/E = t · 1.26 · CV · sqrt((n/n′)·(1 + 2/n′)·(1/m)) / F, with n′ = n(1−ρ)/(1+ρ)
    and t the two-sided Student t at ``confidence`` with n′ − p degrees of freedom.

    Args:
        cv_rmse_pct: the baseline model's CV(RMSE), percent.
        n: points in the baseline period.
        m: points in the reporting period.
        savings_fraction: F, savings over the adjusted baseline (0.1 for 10 %).
        rho: lag-1 autocorrelation of the baseline residuals.
        p: model parameters.
        confidence: two-sided confidence level (Guideline 14 reports at 68 %).
    """
    if n <= 0 or m <= 0:
        raise ValueError("n and m must be positive")
    if savings_fraction == 0.0:
        return math.inf
    n_eff = effective_points(n, rho)
    dof = max(n_eff - p, 1.0)
    t = float(stats.t.ppf(0.5 + confidence / 2.0, dof))
    spread = math.sqrt((n / n_eff) * (1.0 + 2.0 / n_eff) / m)
    return t * _FSU_FACTOR * (cv_rmse_pct / 100.0) * spread / abs(savings_fraction) * 100.0


def avoided_energy(adjusted_baseline_kwh: ArrayLike, reporting_kwh: ArrayLike) -> float:
    """IPMVP avoided energy: adjusted baseline minus reporting-period consumption, kWh."""
    baseline, reporting = _pair(adjusted_baseline_kwh, reporting_kwh)
    return float(np.sum(baseline) - np.sum(reporting))


def simple_payback_years(investment: float, annual_savings_value: float) -> float:
    """Years for the savings to repay the investment (infinite if nothing is saved)."""
    if annual_savings_value <= 0.0:
        return math.inf
    return investment / annual_savings_value


def energy_cost(price: Price, ts_ms: npt.NDArray[np.int64], energy_kwh: ArrayLike) -> float:
    """Cost of energy per interval: a flat price per kWh, or a callable pricing each interval."""
    kwh = np.asarray(energy_kwh, dtype=np.float64)
    if callable(price):
        return float(np.sum(price(ts_ms, kwh)))
    return float(price) * float(np.sum(kwh))

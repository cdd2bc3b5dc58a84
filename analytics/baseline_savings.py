"""Avoided energy and cost over a reporting period (IPMVP Option C), with Guideline 14 FSU."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analytics import mv
from analytics.series import MS_PER_HOUR, FloatArray, Int64Array

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class SavingsReport:
    """What a reporting period saved against the adjusted baseline.

    ``fsu_pct`` is Guideline 14's fractional savings uncertainty at 68 % confidence,
    in percent of ``avoided_kwh``; ``avoided_kwh_uncertainty`` the same in kWh.
    Costs are in the currency of the price given (None without one).
    """

    adjusted_baseline_kwh: float
    reporting_kwh: float
    avoided_kwh: float
    savings_pct: float
    fsu_pct: float
    avoided_kwh_uncertainty: float
    reporting_days: float
    periods: int
    avoided_cost: float | None

    @property
    def annual_avoided_cost(self) -> float | None:
        """The avoided cost scaled to a year."""
        if self.avoided_cost is None or self.reporting_days <= 0.0:
            return None
        return self.avoided_cost * DAYS_PER_YEAR / self.reporting_days

    def simple_payback_years(self, investment: float) -> float:
        """Years for the pilot's investment to be repaid by the avoided cost (needs a price)."""
        annual = self.annual_avoided_cost
        if annual is None:
            raise ValueError("savings were computed without a price; pass price= to savings()")
        return mv.simple_payback_years(investment, annual)


def savings_report(
    *,
    period_start_ms: Int64Array,
    period_ms: int,
    adjusted_baseline_kwh: FloatArray,
    reporting_kwh: FloatArray,
    baseline_cv_rmse_pct: float,
    baseline_points: int,
    residual_autocorrelation: float,
    n_params: int,
    price: mv.Price | None = None,
) -> SavingsReport:
    """Avoided energy, savings %, Guideline 14 FSU (68 %) and avoided cost."""
    avoided = mv.avoided_energy(adjusted_baseline_kwh, reporting_kwh)
    baseline_total = float(np.sum(adjusted_baseline_kwh))
    fraction = avoided / baseline_total if baseline_total else math.nan
    fsu = mv.fractional_savings_uncertainty(
        baseline_cv_rmse_pct,
        baseline_points,
        int(reporting_kwh.size),
        fraction,
        rho=min(max(residual_autocorrelation, -0.99), 0.99),
        p=n_params,
    )
    cost = None
    if price is not None:
        cost = mv.energy_cost(price, period_start_ms, adjusted_baseline_kwh) - mv.energy_cost(
            price, period_start_ms, reporting_kwh
        )
    return SavingsReport(
        adjusted_baseline_kwh=baseline_total,
        reporting_kwh=float(np.sum(reporting_kwh)),
        avoided_kwh=avoided,
        savings_pct=fraction * 100.0,
        fsu_pct=fsu,
        avoided_kwh_uncertainty=abs(avoided) * fsu / 100.0,
        reporting_days=reporting_kwh.size * period_ms / (24 * MS_PER_HOUR),
        periods=int(reporting_kwh.size),
        avoided_cost=cost,
    )

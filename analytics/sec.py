"""Specific energy consumption: kWh per good unit, as a ratio and as a marginal rate.

The plain ratio (a day's kWh over its good units) misleads where fixed loads — lighting,
compressed-air leaks, cooling — are large: a slow day looks inefficient. The daily
regression kWh = fixed + marginal × units separates the two, and is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.series import FloatArray

MIN_DAYS_FOR_REGRESSION = 3


@dataclass(frozen=True)
class SecFit:
    """The line's daily regression: kWh per day = fixed + marginal × units."""

    marginal_kwh_per_unit: float | None
    fixed_kwh_per_day: float | None
    days: int


def ratios(energy_kwh: FloatArray, units: FloatArray) -> list[float | None]:
    """kWh per unit for each day; None where nothing was produced."""
    return [float(e) / float(u) if u > 0 else None for e, u in zip(energy_kwh, units, strict=True)]


def fit_marginal(energy_kwh: FloatArray, units: FloatArray) -> SecFit:
    """Least-squares line through the producing days (at least three, with varying output)."""
    producing = units > 0
    x, y = units[producing], energy_kwh[producing]
    if x.size < MIN_DAYS_FOR_REGRESSION or float(np.ptp(x)) == 0.0:
        return SecFit(None, None, int(x.size))
    slope, intercept = np.polyfit(x, y, 1)
    return SecFit(float(slope), float(intercept), int(x.size))

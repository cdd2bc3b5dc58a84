"""Air temperature: monthly means at mid-month, coolest at dawn, hottest mid-afternoon."""

from __future__ import annotations

from datetime import date

import pytest

from simulators.climate import diurnal_fraction, monthly_mean
from simulators.layout import PHNOM_PENH_MAX_C, PHNOM_PENH_MIN_C


def test_the_day_is_coolest_at_six_and_hottest_at_fifteen() -> None:
    assert diurnal_fraction(6.0) == pytest.approx(0.0)
    assert diurnal_fraction(15.0) == pytest.approx(1.0)
    assert diurnal_fraction(10.5) == pytest.approx(0.5)
    assert all(0.0 <= diurnal_fraction(h / 4) <= 1.0 for h in range(96))


def test_monthly_means_sit_at_mid_month_and_blend_between() -> None:
    highs = list(PHNOM_PENH_MAX_C)
    assert monthly_mean(highs, date(2026, 4, 15)) == pytest.approx(35.0, abs=0.05)
    assert monthly_mean(list(PHNOM_PENH_MIN_C), date(2026, 1, 16)) == pytest.approx(20.0, abs=0.05)
    # Between mid-March (34) and mid-April (35).
    assert 34.0 < monthly_mean(highs, date(2026, 3, 31)) < 35.0
    # December wraps to January.
    assert monthly_mean(highs, date(2026, 12, 31)) == pytest.approx(30.5, abs=0.05)

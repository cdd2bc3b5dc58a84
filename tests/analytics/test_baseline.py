"""Baselines recover a known generating model, and estimate a known saving."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from analytics.baseline import DailyBaseline, HourlyBaseline
from analytics.baseline_frame import (
    DailyFrame,
    HourlyFrame,
    daily_from_hourly,
    hour_of_week,
    local_day_start_ms,
)
from analytics.series import MS_PER_HOUR

ZONE = "Asia/Phnom_Penh"
MONDAY_MS = 1_767_546_000_000  # Monday 2026-01-05 00:00 in Phnom Penh (UTC+7)
BALANCE_C = 27.0
PER_UNIT_KWH = 0.1


def synthetic_year(
    seed: int, *, weeks: int = 52, start_ms: int = MONDAY_MS, cut: float = 0.0
) -> tuple[HourlyFrame, np.ndarray]:
    """Hourly data from a known model: kWh = level(tow) + 0.1·units + cooling + noise."""
    rng = np.random.default_rng(seed)
    n = weeks * 168
    ts = start_ms + np.arange(n, dtype=np.int64) * MS_PER_HOUR
    how = np.arange(n) % 168
    day, hour = how // 24, how % 24
    occupied = ((day < 6) & (hour >= 7) & (hour < 17)).astype(float)
    season = 3.0 * np.sin(2 * np.pi * np.arange(n) / (365.25 * 24))
    diurnal = 5.0 * np.sin(2 * np.pi * (hour - 9) / 24)
    temps = 28.0 + season + diurnal + rng.normal(0.0, 1.0, n)
    units = occupied * rng.poisson(200, n)
    slope = np.where(occupied > 0, 2.0, 0.5)
    truth = 12.0 + 40.0 * occupied + PER_UNIT_KWH * units
    truth += slope * np.maximum(temps - BALANCE_C, 0.0)
    actual = truth * (1.0 - cut) + rng.normal(0.0, 1.5, n)
    return HourlyFrame.of(ts, actual, temps, units), truth


def test_hour_of_week_is_local() -> None:
    ts = np.array([MONDAY_MS, MONDAY_MS + 7 * MS_PER_HOUR, MONDAY_MS - MS_PER_HOUR])
    assert hour_of_week(ts, ZONE).tolist() == [0, 7, 167]
    assert hour_of_week(ts, "UTC").tolist() == [(0 - 7) % 168, 0, (-8) % 168]
    assert local_day_start_ms(ts + 5 * MS_PER_HOUR, ZONE).tolist()[:2] == [MONDAY_MS] * 2


def test_hourly_baseline_recovers_the_generating_model() -> None:
    frame, truth = synthetic_year(1)
    started = time.perf_counter()
    model = HourlyBaseline(timezone=ZONE).fit(frame)
    assert time.perf_counter() - started < 5.0  # one meter-year
    assert model.balance_point_c_ is not None
    assert abs(model.balance_point_c_ - BALANCE_C) <= 1.0
    assert model.coef_[168] == pytest.approx(PER_UNIT_KWH, abs=0.01)
    occupied_slope, unoccupied_slope = model.fit_.cooling_slopes
    assert occupied_slope == pytest.approx(2.0, abs=0.25)
    assert unoccupied_slope == pytest.approx(0.5, abs=0.25)
    assert model.in_sample_.cv_rmse_pct < 5.0
    assert abs(model.in_sample_.nmbe_pct) < 1e-6  # least squares with levels: zero mean bias
    assert model.held_out_ is not None
    assert model.held_out_.cv_rmse_pct < 5.0
    assert model.in_sample_.meets_guideline14
    predicted = model.predict(frame)
    assert float(np.sqrt(np.mean((predicted - truth) ** 2))) < 0.5


def test_savings_of_a_known_ten_percent_cut_within_one_point() -> None:
    baseline, _ = synthetic_year(2)
    reporting, _ = synthetic_year(3, start_ms=MONDAY_MS + 52 * 168 * MS_PER_HOUR, cut=0.10)
    model = HourlyBaseline(timezone=ZONE).fit(baseline)
    report = model.savings(reporting, price=0.165)
    assert report.savings_pct == pytest.approx(10.0, abs=1.0)
    assert report.avoided_kwh == pytest.approx(
        float(np.sum(model.project(reporting)) - np.sum(reporting.energy_kwh))
    )
    assert 0.0 < report.fsu_pct < 10.0  # a clear saving: well under ±100 % of itself
    assert report.avoided_cost is not None
    assert report.avoided_cost == pytest.approx(0.165 * report.avoided_kwh)
    assert report.reporting_days == pytest.approx(364.0)
    annual = report.avoided_cost * 365.25 / 364.0
    assert report.simple_payback_years(10_000.0) == pytest.approx(10_000.0 / annual)


def test_a_site_that_ignores_the_weather_gets_no_balance_point() -> None:
    frame, _ = synthetic_year(4)
    noise = np.random.default_rng(6).normal(0.0, 1.0, len(frame))
    weatherless = HourlyFrame.of(
        frame.hour_start_ms, 12.0 + PER_UNIT_KWH * frame.units + noise, frame.ambient_c, frame.units
    )
    model = HourlyBaseline(timezone=ZONE).fit(weatherless)
    assert model.balance_point_c_ is None


def test_operating_share_is_used_when_given_and_then_required() -> None:
    frame, _ = synthetic_year(7, weeks=8)
    operating = (frame.units > 0).astype(float)
    with_flag = HourlyFrame.of(
        frame.hour_start_ms, frame.energy_kwh, frame.ambient_c, frame.units, operating
    )
    model = HourlyBaseline(timezone=ZONE).fit(with_flag)
    assert model.coef_.size == 168 + 2 + 2  # levels, units, operating, two cooling slopes
    with pytest.raises(ValueError, match="operating"):
        model.predict(frame)


def test_estimator_contract() -> None:
    model = HourlyBaseline(timezone=ZONE, holdout_folds=3)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        model.predict(synthetic_year(8, weeks=2)[0])
    with pytest.raises(TypeError, match="HourlyFrame"):
        model.fit(np.zeros((10, 3)))  # type: ignore[arg-type]


def test_frame_validation() -> None:
    with pytest.raises(ValueError, match="whole hours"):
        HourlyFrame.of([1, 2], [1.0, 1.0], [20.0, 20.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="missing"):
        HourlyFrame.of([0, MS_PER_HOUR], [1.0, np.nan], [20.0, 20.0], [0.0, 0.0])


def test_daily_baseline_finds_the_balance_point_of_daily_data() -> None:
    rng = np.random.default_rng(9)
    days = 364
    starts = MONDAY_MS + np.arange(days, dtype=np.int64) * 24 * MS_PER_HOUR
    weekday = np.arange(days) % 7
    working = (weekday < 6).astype(float)
    temps = 28.5 + 2.5 * np.sin(2 * np.pi * np.arange(days) / 365.25) + rng.normal(0, 1.0, days)
    units = working * rng.normal(2000.0, 200.0, days)
    energy = 300.0 + 500.0 * working + 0.1 * units + 40.0 * np.maximum(temps - 28.0, 0.0)
    energy += rng.normal(0.0, 10.0, days)
    model = DailyBaseline(timezone=ZONE).fit(DailyFrame(starts, energy, temps, units))
    assert model.balance_point_c_ is not None
    assert abs(model.balance_point_c_ - 28.0) <= 1.0
    assert model.fit_.cooling_slopes[0] == pytest.approx(40.0, rel=0.15)
    assert model.in_sample_.granularity == "daily"
    assert model.in_sample_.meets_guideline14


def test_daily_from_hourly_sums_local_days_and_drops_partial_ones() -> None:
    frame, _ = synthetic_year(10, weeks=1)
    partial = frame.subset(np.arange(len(frame)) >= 5)
    daily = daily_from_hourly(partial, ZONE)
    assert len(daily) == 6  # the first local day lost five hours
    assert daily.day_start_ms[0] == MONDAY_MS + 24 * MS_PER_HOUR
    assert daily.energy_kwh[0] == pytest.approx(float(np.sum(frame.energy_kwh[24:48])))
    assert daily.ambient_c[0] == pytest.approx(float(np.mean(frame.ambient_c[24:48])))


HEATING_C = 14.0
COOLING_C = 22.0


def temperate_year(seed: int) -> HourlyFrame:
    """Hourly data of a temperate site: heating below 14 °C, cooling above 22 °C."""
    rng = np.random.default_rng(seed)
    n = 52 * 168
    ts = MONDAY_MS + np.arange(n, dtype=np.int64) * MS_PER_HOUR
    hour = np.arange(n) % 24
    occupied = ((np.arange(n) % 168 < 120) & (hour >= 8) & (hour < 18)).astype(float)
    season = -12.0 * np.cos(2 * np.pi * np.arange(n) / (365.25 * 24))
    temps = 15.0 + season + 4.0 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 1.5, n)
    energy = 20.0 + 30.0 * occupied
    energy += 1.5 * np.maximum(HEATING_C - temps, 0.0) + 2.5 * np.maximum(temps - COOLING_C, 0.0)
    energy += rng.normal(0.0, 2.0, n)
    return HourlyFrame.of(ts, energy, temps, np.zeros(n), occupied)


def test_hourly_baseline_finds_a_heating_load_below_its_balance_point() -> None:
    frame = temperate_year(11)
    model = HourlyBaseline(timezone=ZONE).fit(frame)
    assert model.heating_balance_point_c_ is not None
    assert abs(model.heating_balance_point_c_ - HEATING_C) <= 1.0
    assert model.balance_point_c_ is not None
    assert abs(model.balance_point_c_ - COOLING_C) <= 1.0
    for slope in model.fit_.heating_slopes:
        assert slope == pytest.approx(1.5, abs=0.2)
    for slope in model.fit_.cooling_slopes:
        assert slope == pytest.approx(2.5, abs=0.3)
    assert model.coef_.size == 168 + 2 + 2 + 2  # levels, units, operating, two slopes each
    assert model.in_sample_.cv_rmse_pct < 7.0
    without = HourlyBaseline(timezone=ZONE, heating=False).fit(frame)
    assert without.heating_balance_point_c_ is None
    assert without.in_sample_.cv_rmse_pct > model.in_sample_.cv_rmse_pct + 5.0

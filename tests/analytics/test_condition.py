"""Condition features on signals whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.condition import (
    Samples,
    align,
    crest_factor,
    kurtosis,
    reference_load,
    rms,
    slope,
    trailing_kurtosis,
    trailing_trend,
    window_stats,
)
from analytics.series import MS_PER_HOUR, Series

SINE = 3.0 * np.sin(np.linspace(0.0, 20.0 * math.pi, 20_000, endpoint=False))


def test_rms_of_a_sine_is_amplitude_over_root_two() -> None:
    assert rms(SINE) == pytest.approx(3.0 / math.sqrt(2.0), rel=1e-9)


def test_crest_factor_of_a_sine_is_root_two_and_impacts_raise_it() -> None:
    assert crest_factor(SINE) == pytest.approx(math.sqrt(2.0), rel=1e-6)
    knocked = SINE.copy()
    knocked[::1000] += 12.0
    assert crest_factor(knocked) > 2.5


def test_kurtosis_of_gaussian_noise_is_three_and_of_a_sine_one_and_a_half() -> None:
    noise = np.random.default_rng(7).normal(0.0, 2.0, 400_000)
    assert kurtosis(noise) == pytest.approx(3.0, abs=0.03)
    assert kurtosis(SINE) == pytest.approx(1.5, abs=1e-6)
    assert math.isnan(kurtosis(np.array([1.0, 2.0, 3.0])))


def test_slope_of_a_line_skips_missing_points() -> None:
    t = np.arange(10.0)
    x = 2.5 * t - 4.0
    x[3] = np.nan
    assert slope(t, x) == pytest.approx(2.5)
    assert math.isnan(slope(np.array([1.0]), np.array([2.0])))


def test_align_takes_the_load_read_just_before_each_sample() -> None:
    series = {
        "vibration_rms": Series.of([60_000, 120_000, 180_000], [1.0, 2.0, 3.0]),
        "bearing_temp": Series.of([120_000], [40.0]),
        "active_power": Series.of([0, 110_000, 170_000], [100.0, 200.0, 300.0]),
    }
    samples = align(series)
    assert samples.ts_ms.tolist() == [60_000, 120_000, 180_000]
    assert samples.load_raw.tolist() == [100.0, 200.0, 300.0]
    assert samples.load_metric == "active_power"
    assert np.isnan(samples.metrics["bearing_temp"][[0, 2]]).all()
    assert samples.metrics["bearing_temp"][1] == 40.0


def test_a_stale_load_reading_describes_nothing() -> None:
    series = {
        "vibration_rms": Series.of([3_600_000], [1.0]),
        "active_power": Series.of([0], [100.0]),
    }
    assert np.isnan(align(series).load_raw[0])


def test_window_stats_summarise_running_samples_only() -> None:
    # Two hours at 10-minute samples; the second hour the machine is off for 3 samples.
    ts = np.arange(12, dtype=np.int64) * 600_000
    load = np.array([1000.0] * 6 + [1000.0, 1000.0, 1000.0, 0.0, 0.0, 0.0])
    vib = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 0.05, 0.05, 0.05])
    samples = Samples(ts, {"vibration_rms": vib}, load, "active_power")
    w = window_stats(samples, reference=1000.0, start_ms=0, end_ms=2 * MS_PER_HOUR)
    assert w.end_ms.tolist() == [MS_PER_HOUR, 2 * MS_PER_HOUR]
    assert w.count.tolist() == [6, 3]
    assert w.level["vibration_rms"].tolist() == [2.0, 4.0]
    assert w.spread["vibration_rms"][0] == pytest.approx(np.std([1, 2, 3, 1, 2, 3], ddof=1))
    assert w.load.tolist() == [1.0, 1.0]
    fewer = window_stats(samples, 1000.0, 0, 2 * MS_PER_HOUR, min_samples=4)
    assert np.isnan(fewer.level["vibration_rms"][1])


def test_reference_load_is_the_95th_percentile_of_positive_readings() -> None:
    load = np.concatenate([np.zeros(50), np.arange(1.0, 101.0), [np.nan]])
    assert reference_load(load) == pytest.approx(np.percentile(np.arange(1.0, 101.0), 95))


def test_trailing_trend_finds_the_slope_per_day() -> None:
    end_ms = (np.arange(48, dtype=np.int64) + 1) * MS_PER_HOUR
    x = 0.5 * end_ms / (24 * MS_PER_HOUR)  # 0.5 a day
    trend = trailing_trend(end_ms, x, span=24)
    assert np.isnan(trend[:11]).all()
    assert trend[11:] == pytest.approx(np.full(37, 0.5))


def test_trailing_kurtosis_matches_the_direct_computation() -> None:
    x = np.random.default_rng(3).normal(size=100)
    out = trailing_kurtosis(x, span=40)
    assert out[60] == pytest.approx(kurtosis(x[21:61]))
    assert np.isnan(out[10])

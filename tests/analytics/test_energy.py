"""Energy from meters and from power, into buckets: closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.energy import (
    bucket_energy,
    meter_increments,
    nominal_interval_s,
    power_increments,
    regular_edges_ms,
)
from analytics.series import Series

MIN_MS = 60_000


def _minutes(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * MIN_MS


def test_constant_kilowatt_for_15_minutes_is_a_quarter_kwh() -> None:
    power = Series(_minutes(16), np.full(16, 1000.0))
    buckets = bucket_energy(power_increments(power), [0, 15 * MIN_MS])
    assert buckets.energy_kwh.tolist() == pytest.approx([0.25])
    assert buckets.completeness.tolist() == [1.0]
    assert buckets.gap_s.tolist() == [0.0]


def test_bucket_edge_inside_a_sample_interval_splits_it_by_time() -> None:
    power = Series.of([0, 10 * MIN_MS], [600.0, 0.0])  # 600 W held for 10 minutes
    buckets = bucket_energy(power_increments(power, max_gap_s=3600), [0, 4 * MIN_MS, 10 * MIN_MS])
    assert buckets.energy_kwh.tolist() == pytest.approx([0.04, 0.06])


def test_mean_method_applies_each_reading_to_the_interval_before_it() -> None:
    power = Series.of([0, MIN_MS, 2 * MIN_MS], [0.0, 600.0, 1200.0])
    assert power_increments(power, method="mean").energy_kwh.tolist() == pytest.approx([0.01, 0.02])
    assert power_increments(power, method="hold").energy_kwh.tolist() == pytest.approx([0.0, 0.01])


def test_power_gap_contributes_nothing_and_is_reported() -> None:
    ts = np.concatenate([_minutes(6), 30 * MIN_MS + _minutes(31)])  # 0..5 min, 30..60 min
    power = Series(ts, np.full(ts.size, 1200.0))
    increments = power_increments(power, max_gap_s=120)
    assert increments.gap.sum() == 1
    buckets = bucket_energy(increments, [0, 30 * MIN_MS, 60 * MIN_MS])
    assert buckets.energy_kwh.tolist() == pytest.approx([0.1, 0.6])
    assert buckets.gap_s.tolist() == pytest.approx([1500.0, 0.0])
    assert buckets.completeness.tolist() == pytest.approx([6 / 30, 1.0])


def test_meter_deltas_are_summed_in_kwh() -> None:
    meter = Series.of(_minutes(4), [1000.0, 1500.0, 2500.0, 2500.0])
    assert meter_increments(meter).energy_kwh.tolist() == pytest.approx([0.5, 1.0, 0.0])


def test_meter_reset_counts_from_zero() -> None:
    meter = Series.of(_minutes(4), [50_000.0, 51_000.0, 200.0, 700.0])
    assert meter_increments(meter).energy_kwh.tolist() == pytest.approx([1.0, 0.2, 0.5])


def test_meter_rollover_wraps_at_the_register_top() -> None:
    top_kwh = 999_999.9
    meter = Series.of(_minutes(3), [(top_kwh - 0.4) * 1000.0, (top_kwh - 0.1) * 1000.0, 300.0])
    energy = meter_increments(meter, rollover_kwh=top_kwh).energy_kwh
    assert energy.tolist() == pytest.approx([0.3, 0.4])


def test_meter_glitch_downwards_is_never_negative_nor_counted_twice() -> None:
    meter = Series.of(_minutes(4), [1000.0, 1100.0, 1090.0, 1200.0])
    energy = meter_increments(meter).energy_kwh
    assert energy.min() >= 0.0
    assert energy.sum() == pytest.approx(0.2)


def test_meter_gap_is_spread_across_the_gap_and_flagged() -> None:
    meter = Series.of([0, MIN_MS, 61 * MIN_MS, 62 * MIN_MS], [0.0, 10.0, 1210.0, 1220.0])
    increments = meter_increments(meter, max_gap_s=300)
    assert increments.gap.tolist() == [False, True, False]
    buckets = bucket_energy(increments, [0, 31 * MIN_MS, 62 * MIN_MS])
    assert buckets.energy_kwh.tolist() == pytest.approx([0.01 + 0.6, 0.6 + 0.01])
    assert buckets.gap_s.tolist() == pytest.approx([1800.0, 1800.0])


def test_nominal_interval_is_the_median_spacing() -> None:
    assert nominal_interval_s(np.array([0, 10_000, 20_000, 90_000], dtype=np.int64)) == 10.0


def test_regular_edges_align_to_the_clock() -> None:
    edges = regular_edges_ms(7 * MIN_MS, 31 * MIN_MS, 900.0)
    assert edges.tolist() == [0, 15 * MIN_MS, 30 * MIN_MS, 45 * MIN_MS]


def test_bad_edges_are_rejected() -> None:
    increments = power_increments(Series(_minutes(3), np.ones(3)))
    with pytest.raises(ValueError, match="increasing"):
        bucket_energy(increments, [10, 5])


def test_a_machine_year_integrates_fast() -> None:
    import time

    n = 3_153_600
    power = Series(np.arange(n, dtype=np.int64) * 10_000, np.full(n, 1000.0))
    edges = regular_edges_ms(0, n * 10_000, 900.0)
    started = time.perf_counter()
    buckets = bucket_energy(power_increments(power), edges)
    assert time.perf_counter() - started < 3.0
    assert buckets.energy_kwh.sum() == pytest.approx((n - 1) * 10 / 3600)

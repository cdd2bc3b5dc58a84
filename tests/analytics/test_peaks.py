"""Peak demand: block and sliding averages, monthly peaks, load factor, contributors."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.peaks import contributors, demand, monthly_peaks
from analytics.series import Series, to_ms

MIN_MS = 60_000


def test_block_intervals_are_clock_aligned_averages() -> None:
    ts = np.arange(0, 31, dtype=np.int64) * MIN_MS + 7 * MIN_MS  # 00:07 .. 00:37
    power = np.where(ts < 15 * MIN_MS, 1000.0, 3000.0)
    result = demand(Series(ts, power))
    assert result.start_ms.tolist() == [0, 15 * MIN_MS, 30 * MIN_MS]
    assert result.average_kw.tolist() == pytest.approx([1.0, 3.0, 3.0])
    assert result.completeness.tolist() == pytest.approx([8 / 15, 1.0, 8 / 15])


def test_sliding_windows_find_a_peak_across_block_edges() -> None:
    ts = np.arange(0, 61, dtype=np.int64) * MIN_MS
    power = np.where((ts >= 10 * MIN_MS) & (ts < 25 * MIN_MS), 4000.0, 1000.0)
    sliding = demand(Series(ts, power), step_s=60)
    top = int(np.nanargmax(sliding.average_kw))
    assert sliding.start_ms[top] == 10 * MIN_MS
    assert sliding.average_kw[top] == pytest.approx(4.0)
    assert np.nanmax(demand(Series(ts, power)).average_kw) < 4.0


def test_monthly_peak_and_load_factor_in_synthetic_months() -> None:
    rng = np.random.default_rng(5)
    start, end = to_ms(datetime(2026, 1, 1, tzinfo=UTC)), to_ms(datetime(2026, 4, 1, tzinfo=UTC))
    ts = np.arange(start, end, 5 * MIN_MS, dtype=np.int64)
    power = 50_000.0 + 10_000.0 * rng.random(ts.size)
    planted = [
        datetime(2026, 1, 17, 9, 15),
        datetime(2026, 2, 3, 14, 0),
        datetime(2026, 3, 30, 7, 45),
    ]
    planted_ms = [to_ms(p.replace(tzinfo=UTC)) for p in planted]
    for p in planted_ms:
        power[(ts >= p) & (ts < p + 15 * MIN_MS)] = 90_000.0
    peaks = monthly_peaks(demand(Series(ts, power)))
    assert [p.month for p in peaks] == ["2026-01", "2026-02", "2026-03"]
    assert [p.start_ms for p in peaks] == planted_ms
    assert all(p.peak_kw == pytest.approx(90.0) for p in peaks)
    for p in peaks:
        assert 0.0 < p.load_factor < 1.0
        assert p.load_factor == pytest.approx(p.average_kw / p.peak_kw)


def test_load_factor_of_a_flat_load_is_one() -> None:
    ts = np.arange(0, 24 * 60, dtype=np.int64) * MIN_MS
    peaks = monthly_peaks(demand(Series(ts, np.full(ts.size, 2000.0))))
    assert len(peaks) == 1 and peaks[0].load_factor == pytest.approx(1.0)


def test_months_follow_the_site_time_zone() -> None:
    start = to_ms(datetime(2026, 1, 31, 12, tzinfo=UTC))
    ts = start + np.arange(0, 24 * 60, dtype=np.int64) * MIN_MS
    peak_ms = to_ms(datetime(2026, 1, 31, 18, tzinfo=UTC))  # 01:00 on 1 February in Phnom Penh
    power = np.where((ts >= peak_ms) & (ts < peak_ms + 15 * MIN_MS), 5000.0, 1000.0)
    utc = monthly_peaks(demand(Series(ts, power)))
    local = monthly_peaks(demand(Series(ts, power)), timezone="Asia/Phnom_Penh")
    assert (utc[0].month, utc[0].start_ms) == ("2026-01", peak_ms)
    assert (local[1].month, local[1].start_ms) == ("2026-02", peak_ms)


def test_contributors_are_ranked_by_average_kw_in_the_window() -> None:
    ts = np.arange(0, 31, dtype=np.int64) * MIN_MS
    machines = {
        "comp-01": Series(ts, np.full(ts.size, 22_000.0)),
        "sew-a01": Series(ts, np.full(ts.size, 250.0)),
        "cut-01": Series(ts, np.where(ts < 20 * MIN_MS, 1500.0, 0.0)),
    }
    ranked = contributors(15 * MIN_MS, 30 * MIN_MS, machines)
    assert [key for key, _ in ranked] == ["comp-01", "cut-01", "sew-a01"]
    assert [kw for _, kw in ranked] == pytest.approx([22.0, 0.5, 0.25])

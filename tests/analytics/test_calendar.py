"""Bucket boundaries in local time."""

from __future__ import annotations

from datetime import UTC, datetime, time

from analytics.calendar import edges, shift_buckets
from analytics.series import to_ms
from analytics.site_config import Shift

PP = "Asia/Phnom_Penh"  # UTC+7, no daylight saving


def test_quarter_hours_and_days_align_to_local_time() -> None:
    start = datetime(2026, 11, 23, 0, 7, tzinfo=UTC)  # 07:07 local
    quarter = edges(start, datetime(2026, 11, 23, 1, 0, tzinfo=UTC), "15m", PP)
    assert quarter[0] == to_ms(datetime(2026, 11, 23, 0, 0, tzinfo=UTC))
    assert len(quarter) == 5
    days = edges(start, datetime(2026, 11, 24, 17, 0, tzinfo=UTC), "1d", PP)
    # Local midnights are 17:00 UTC the day before.
    assert days.tolist() == [
        to_ms(datetime(2026, 11, 22, 17, tzinfo=UTC)),
        to_ms(datetime(2026, 11, 23, 17, tzinfo=UTC)),
        to_ms(datetime(2026, 11, 24, 17, tzinfo=UTC)),
    ]


def test_shifts_including_one_across_midnight() -> None:
    shifts = [
        Shift(name="day", days=["mon"], start=time(7), end=time(16)),
        Shift(name="night", days=["sun", "mon"], start=time(22), end=time(6)),
    ]
    # Monday 23 Nov 2026, local 00:00 to Tuesday 00:00.
    start = datetime(2026, 11, 22, 17, tzinfo=UTC)
    end = datetime(2026, 11, 23, 17, tzinfo=UTC)
    found = [(b.label, b.end_ms - b.start_ms) for b in shift_buckets(start, end, shifts, PP)]
    hour = 3_600_000
    # Sunday's night shift's Monday part (00:00–06:00), the day shift, Monday night's first 2 h.
    assert found == [("night", 6 * hour), ("day", 9 * hour), ("night", 2 * hour)]

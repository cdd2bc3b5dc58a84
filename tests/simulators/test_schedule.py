"""The shift calendar, in exact UTC times (Phnom Penh is UTC+7, without daylight saving)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from itertools import pairwise

from simulators.layout import Break, Overtime, Shift
from simulators.schedule import (
    BREAK,
    OFF,
    WORK,
    Calendar,
    SegmentCursor,
    WorkCursor,
    WorkPeriod,
    personal_segments,
)
from simulators.timebase import from_ms, to_ms

DAY = Shift(
    days=["mon", "tue", "wed", "thu", "fri", "sat"],
    start=time(7),
    end=time(16),
    breaks=[Break(start=time(11), end=time(12))],
)


def ms(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


def test_a_weekday_is_seven_to_four_local_with_a_lunch_hour() -> None:
    calendar = Calendar([DAY], "Asia/Phnom_Penh", [], "k")
    assert calendar.day_periods(date(2026, 3, 2)) == [
        WorkPeriod(
            ms("2026-03-02T00:00"),
            ms("2026-03-02T09:00"),
            ((ms("2026-03-02T04:00"), ms("2026-03-02T05:00")),),
        )
    ]


def test_sunday_and_holidays_are_not_worked() -> None:
    calendar = Calendar([DAY], "Asia/Phnom_Penh", [date(2026, 3, 3)], "k")
    assert calendar.day_periods(date(2026, 3, 1)) == []  # a Sunday
    assert calendar.day_periods(date(2026, 3, 3)) == []  # a holiday


def test_overtime_that_always_happens_extends_the_day_to_six() -> None:
    shift = DAY.model_copy(update={"overtime": Overtime(end=time(18), probability=1.0)})
    calendar = Calendar([shift], "Asia/Phnom_Penh", [], "k")
    assert calendar.day_periods(date(2026, 3, 2))[0].end_ms == ms("2026-03-02T11:00")


def test_overtime_is_drawn_per_day_and_the_same_whatever_the_start() -> None:
    shift = DAY.model_copy(update={"overtime": Overtime(end=time(18), probability=0.5)})
    days = [date(2026, 3, d) for d in range(2, 8)]
    first = [Calendar([shift], "Asia/Phnom_Penh", [], "k").day_periods(d) for d in days]
    second = [Calendar([shift], "Asia/Phnom_Penh", [], "k").day_periods(d) for d in reversed(days)]
    assert first == list(reversed(second))
    ends = {p[0].end_ms - p[0].start_ms for p in first}
    assert ends <= {9 * 3_600_000, 11 * 3_600_000}


def test_a_night_shift_runs_past_midnight_with_its_break_on_the_next_day() -> None:
    night = Shift(
        days=["mon"], start=time(22), end=time(6), breaks=[Break(start=time(2), end=time(2, 30))]
    )
    calendar = Calendar([night], "Asia/Phnom_Penh", [], "k")
    (period,) = calendar.day_periods(date(2026, 3, 2))
    assert from_ms(period.start_ms) == datetime(2026, 3, 2, 15, tzinfo=UTC)
    assert from_ms(period.end_ms) == datetime(2026, 3, 2, 23, tzinfo=UTC)
    assert period.breaks == ((ms("2026-03-02T19:00"), ms("2026-03-02T19:30")),)


def test_back_to_back_shifts_merge_into_one_period_keeping_both_breaks() -> None:
    early = Shift(
        days=["mon"], start=time(6), end=time(14), breaks=[Break(start=time(10), end=time(10, 30))]
    )
    late = Shift(
        days=["mon"], start=time(14), end=time(22), breaks=[Break(start=time(18), end=time(18, 30))]
    )
    calendar = Calendar([early, late], "Asia/Phnom_Penh", [], "k")
    periods = calendar.periods(ms("2026-03-01T00:00"))
    first = next(periods)
    assert (first.start_ms, first.end_ms) == (ms("2026-03-01T23:00"), ms("2026-03-02T15:00"))
    assert first.breaks == (
        (ms("2026-03-02T03:00"), ms("2026-03-02T03:30")),
        (ms("2026-03-02T11:00"), ms("2026-03-02T11:30")),
    )
    assert next(periods).start_ms == ms("2026-03-08T23:00")  # the next Monday


def test_the_work_cursor_says_work_break_or_off() -> None:
    calendar = Calendar([DAY], "Asia/Phnom_Penh", [], "k")
    cursor = WorkCursor(calendar.periods(ms("2026-03-01T17:00")))
    assert cursor.phase(ms("2026-03-01T20:00")) == OFF  # 03:00 local
    assert cursor.phase(ms("2026-03-02T00:00")) == WORK  # 07:00
    assert cursor.phase(ms("2026-03-02T04:30")) == BREAK  # 11:30
    assert cursor.phase(ms("2026-03-02T08:59")) == WORK
    assert cursor.phase(ms("2026-03-02T09:00")) == OFF  # 16:00
    assert cursor.phase(ms("2026-03-03T00:00")) == WORK


def test_a_calendar_without_shifts_has_no_periods() -> None:
    assert list(Calendar([], "UTC", [], "k").periods(0)) == []


def test_personal_segments_stay_within_jitter_of_the_shift_and_never_overlap() -> None:
    calendar = Calendar([DAY], "Asia/Phnom_Penh", [], "k")
    segments = personal_segments(
        calendar.periods(ms("2026-03-01T17:00")),
        random.Random(3),
        on_jitter_s=600,
        off_jitter_s=300,
        off_at_break_prob=1.0,
        left_on_prob=0.0,
    )
    week = [next(segments) for _ in range(12)]  # two segments a day, lunch switched off
    assert [s.mode for s in week] == [WORK] * 12
    for segment in week:
        assert segment.start_ms < segment.end_ms
    for before, after in pairwise(week):
        assert before.end_ms <= after.start_ms
    first_on = from_ms(week[0].start_ms)
    assert (
        datetime(2026, 3, 2, 0, tzinfo=UTC) <= first_on <= datetime(2026, 3, 2, 0, 10, tzinfo=UTC)
    )


def test_a_machine_left_on_idles_until_the_next_shift() -> None:
    calendar = Calendar([DAY], "Asia/Phnom_Penh", [], "k")
    cursor = SegmentCursor(
        personal_segments(
            calendar.periods(ms("2026-03-01T17:00")),
            random.Random(3),
            on_jitter_s=0,
            off_jitter_s=0,
            off_at_break_prob=0.0,
            left_on_prob=1.0,
        )
    )
    assert cursor.mode(ms("2026-03-01T20:00")) == OFF  # before the first shift
    assert cursor.mode(ms("2026-03-02T01:00")) == WORK
    assert cursor.mode(ms("2026-03-02T04:30")) == BREAK  # left on over lunch: idle
    assert cursor.mode(ms("2026-03-02T20:00")) == BREAK  # left on overnight: idle
    assert cursor.mode(ms("2026-03-03T01:00")) == WORK

"""Shift calendar: the working periods of a site in UTC milliseconds, from local shift rules."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from simulators.layout import DAY_NAMES, Shift
from simulators.randomness import seeded
from simulators.timebase import from_ms

OFF: Final = 0
BREAK: Final = 1
WORK: Final = 2


@dataclass(frozen=True, slots=True)
class WorkPeriod:
    """A stretch of work from ``start_ms`` to ``end_ms`` with breaks inside it."""

    start_ms: int
    end_ms: int
    breaks: tuple[tuple[int, int], ...] = ()


class Calendar:
    """The shifts of one site: which periods are worked, with overtime drawn per day.

    Overtime is drawn from a generator seeded by the date, so the plan of a day does not
    depend on where a simulation starts.
    """

    def __init__(
        self, shifts: list[Shift], timezone: str, holidays: list[date], seed_key: str
    ) -> None:
        self._shifts = shifts
        self._tz = ZoneInfo(timezone)
        self._holidays = frozenset(holidays)
        self._seed_key = seed_key

    def _ms(self, day: date, clock: time, not_before_ms: int | None = None) -> int:
        local = datetime.combine(day, clock, tzinfo=self._tz)
        ms = int(local.timestamp() * 1000)
        if not_before_ms is not None and ms <= not_before_ms:
            local = datetime.combine(day + timedelta(days=1), clock, tzinfo=self._tz)
            ms = int(local.timestamp() * 1000)
        return ms

    def day_periods(self, day: date) -> list[WorkPeriod]:
        """The periods of the shifts that start on local date ``day``, in start order."""
        if day in self._holidays:
            return []
        weekday = DAY_NAMES[day.weekday()]
        periods = []
        for index, shift in enumerate(self._shifts):
            if weekday not in shift.days:
                continue
            start = self._ms(day, shift.start)
            end = self._ms(day, shift.end, not_before_ms=start)
            overtime = shift.overtime
            if overtime is not None and weekday in (overtime.days or shift.days):
                draw = seeded(f"{self._seed_key}/overtime/{index}/{day.isoformat()}")
                if draw.random() < overtime.probability:
                    end = max(end, self._ms(day, overtime.end, not_before_ms=start))
            breaks = []
            for pause in shift.breaks:
                pause_start = self._ms(day, pause.start)
                if pause_start < start:
                    pause_start = self._ms(day + timedelta(days=1), pause.start)
                pause_end = self._ms(day, pause.end, not_before_ms=pause_start)
                if start <= pause_start < end:
                    breaks.append((pause_start, min(pause_end, end)))
            periods.append(WorkPeriod(start, end, tuple(sorted(breaks))))
        return sorted(periods, key=lambda p: p.start_ms)

    def periods(self, from_ms: int) -> Iterator[WorkPeriod]:
        """Merged periods that end after ``from_ms``, in order, for ever (none if no shifts)."""
        if not self._shifts:
            return
        day = from_ms_local_date(from_ms, self._tz) - timedelta(days=1)
        pending: WorkPeriod | None = None
        while True:
            for period in self.day_periods(day):
                if pending is not None and period.start_ms <= pending.end_ms:
                    pending = WorkPeriod(
                        pending.start_ms,
                        max(pending.end_ms, period.end_ms),
                        tuple(sorted(pending.breaks + period.breaks)),
                    )
                    continue
                if pending is not None and pending.end_ms > from_ms:
                    yield pending
                pending = period
            day += timedelta(days=1)


def from_ms_local_date(ms: int, tz: ZoneInfo) -> date:
    """The local calendar date at ``ms``."""
    return from_ms(ms).astimezone(tz).date()


class WorkCursor:
    """Answers "work, break or off?" for times that never go backwards by more than a period."""

    def __init__(self, periods: Iterator[WorkPeriod]) -> None:
        self._periods = periods
        self._current = next(periods, None)

    def phase(self, ts_ms: int) -> int:
        """:data:`WORK`, :data:`BREAK` or :data:`OFF` at ``ts_ms``."""
        current = self._current
        while current is not None and current.end_ms <= ts_ms:
            current = self._current = next(self._periods, None)
        if current is None or ts_ms < current.start_ms:
            return OFF
        for start, end in current.breaks:
            if start <= ts_ms < end:
                return BREAK
        return WORK


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch in which one machine is switched on: ``mode`` is WORK or BREAK (idle only)."""

    start_ms: int
    end_ms: int
    mode: int


def personal_segments(
    periods: Iterator[WorkPeriod],
    rng: random.Random,
    *,
    on_jitter_s: float,
    off_jitter_s: float,
    off_at_break_prob: float,
    left_on_prob: float,
) -> Iterator[Segment]:
    """When one operator's machine is on: the site's periods, with switch-on and -off jitter.

    Some machines are left on (idle) over a break, or until the next shift.
    """
    left_on_since: int | None = None
    cursor = -(2**62)
    for period in periods:
        on = max(cursor, period.start_ms + int(rng.uniform(0.0, on_jitter_s) * 1000))
        if left_on_since is not None and on > left_on_since:
            yield Segment(left_on_since, on, BREAK)
        cursor = on
        for start, end in period.breaks:
            pause_start = max(cursor, start + int(rng.uniform(0.0, 120.0) * 1000))
            pause_end = end + int(rng.uniform(0.0, on_jitter_s / 2) * 1000)
            if pause_start > cursor:
                yield Segment(cursor, pause_start, WORK)
            cursor = max(cursor, pause_start)
            if pause_end <= cursor:
                continue
            if rng.random() >= off_at_break_prob:
                yield Segment(cursor, pause_end, BREAK)
            cursor = pause_end
        off = period.end_ms + int(rng.uniform(-min(120.0, off_jitter_s), off_jitter_s) * 1000)
        if off > cursor:
            yield Segment(cursor, off, WORK)
            cursor = off
        left_on_since = cursor if rng.random() < left_on_prob else None


class SegmentCursor:
    """The mode of a machine's segments (WORK, BREAK or OFF) at times that only go forward."""

    def __init__(self, segments: Iterator[Segment]) -> None:
        self._segments = segments
        self._current = next(segments, None)

    def mode(self, ts_ms: int) -> int:
        """WORK, BREAK (on, idle only) or OFF at ``ts_ms``."""
        current = self._current
        while current is not None and current.end_ms <= ts_ms:
            current = self._current = next(self._segments, None)
        if current is None or ts_ms < current.start_ms:
            return OFF
        return current.mode

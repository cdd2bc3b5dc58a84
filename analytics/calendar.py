"""Bucket boundaries in a site's local time: quarter hours, hours, days and shifts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from analytics.series import Int64Array, from_ms, to_ms
from analytics.site_config import DAYS, Shift

GRAINS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


@dataclass(frozen=True, slots=True)
class Bucket:
    """One labelled period [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    label: str = ""


def edges(start: datetime, end: datetime, grain: str, timezone: str) -> Int64Array:
    """Boundaries of ``grain`` buckets covering [start, end), aligned to local time.

    The first edge is the bucket boundary at or before ``start``; the last is at or
    after ``end``. Days follow the local calendar (a day is 24 h where the zone has no
    daylight saving, as in the pilots' countries; elsewhere it follows the clock).
    """
    zone = ZoneInfo(timezone)
    step = GRAINS[grain]
    local = start.astimezone(zone)
    if grain == "1d":
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        minutes = int(step.total_seconds() // 60)
        floored = (local.hour * 60 + local.minute) // minutes * minutes
        first = local.replace(hour=floored // 60, minute=floored % 60, second=0, microsecond=0)
    out: list[int] = []
    current = first
    while True:
        out.append(to_ms(current))
        if current >= end:
            break
        # Step in local wall time for days, in absolute time for shorter grains.
        current = (
            datetime.combine(current.date() + timedelta(days=1), time(0), zone)
            if grain == "1d"
            else current + step
        )
    return np.asarray(out, dtype=np.int64)


def shift_buckets(
    start: datetime, end: datetime, shifts: list[Shift], timezone: str, *, starting: bool = False
) -> list[Bucket]:
    """Every shift occurrence overlapping [start, end), clipped to it, in time order.

    With ``starting``, only the shifts that begin in [start, end), whole at the start
    and clipped at ``end`` (so a later run over the next period finishes them).
    """
    zone = ZoneInfo(timezone)
    start_ms, end_ms = to_ms(start), to_ms(end)
    day = start.astimezone(zone).date() - timedelta(days=1)  # a night shift from the day before
    last_day = end.astimezone(zone).date()
    found: list[Bucket] = []
    while day <= last_day:
        for shift in shifts:
            if DAYS[day.weekday()] not in shift.days:
                continue
            begins = datetime.combine(day, shift.start, zone)
            ends_day = day if shift.end > shift.start else day + timedelta(days=1)
            ends = datetime.combine(ends_day, shift.end, zone)
            if starting and not start_ms <= to_ms(begins) < end_ms:
                continue
            s, e = max(to_ms(begins), start_ms), min(to_ms(ends), end_ms)
            if s < e:
                found.append(Bucket(s, e, shift.name))
        day += timedelta(days=1)
    return sorted(found, key=lambda b: b.start_ms)


def buckets_from_edges(boundaries: Int64Array) -> list[Bucket]:
    """Consecutive edges as buckets."""
    values = boundaries.tolist()
    return [Bucket(int(a), int(b)) for a, b in itertools.pairwise(values)]


def describe(bucket: Bucket) -> str:
    """A bucket as text, for logs."""
    start, end = from_ms(bucket.start_ms).isoformat(), from_ms(bucket.end_ms).isoformat()
    return f"{start}–{end} {bucket.label}".rstrip()

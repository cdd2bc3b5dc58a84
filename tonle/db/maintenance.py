"""Upkeep that TimescaleDB does by itself and plain PostgreSQL needs done for it.

In native mode the ingester marks every minute it wrote into ``rollup_dirty_minutes``
in the same transaction as the readings. :func:`refresh_rollups` recomputes the
1-minute roll-up (``readings_1m``) of those minutes from the raw readings, then the
1-hour roll-up (``readings_1h``) of each series-hour holding one of them from its 60
one-minute rows, so a round reads the raw rows of the dirty minutes only, however many
rows the hour already holds. An hour mark in the older ``rollup_dirty`` table counts as
its 60 minutes. :func:`apply_retention` deletes raw readings older than the retention
period. In TimescaleDB mode both are policies and these functions do nothing.

Both roll-ups define ``avg`` as ``sum / n`` over the bucket's readings; the hourly row
adds up its minutes' ``n`` and ``sum``, so it is the mean of the hour's readings, not
the mean of its minute averages. Roll-up rows are upserted and never deleted: raw
readings are only ever added (retention aside), so a bucket with rows keeps them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from tonle.db.migrate import storage_mode

log = logging.getLogger(__name__)

_MINUTE = timedelta(minutes=1)
# The advisory lock a refresher holds on "the roll-ups of one UTC hour": this class in
# the two-int key space (apart from the migrator's bigint key), and the hour's number
# since the epoch as the second key.
ROLLUP_LOCK_CLASS = 0x726F6C6C  # "roll"

_CLAIM_MINUTES = """
DELETE FROM rollup_dirty_minutes WHERE minute IN (
    SELECT minute FROM rollup_dirty_minutes ORDER BY minute LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) RETURNING minute
"""
_CLAIM_HOURS = """
DELETE FROM rollup_dirty WHERE hour IN (
    SELECT hour FROM rollup_dirty ORDER BY hour LIMIT %(limit)s FOR UPDATE SKIP LOCKED
) RETURNING hour
"""
_UNCLAIM = """
INSERT INTO rollup_dirty_minutes (minute) SELECT unnest(%(minutes)s::timestamptz[])
ON CONFLICT DO NOTHING
"""
_LOCK_HOUR = "SELECT pg_advisory_xact_lock(%s::integer, %s::integer)"
_TEMP_SERIES = """
CREATE TEMP TABLE IF NOT EXISTS refresh_series (
    sensor_id integer NOT NULL, hour timestamptz NOT NULL, PRIMARY KEY (sensor_id, hour)
) ON COMMIT DELETE ROWS
"""
# The dirty minutes are whole UTC minutes, so each raw row falls in exactly one of them
# and the minute itself is the bucket. The series-hours written go to refresh_series:
# the next statement rolls them up, and sees these rows, which this one would not.
_REFRESH_MINUTES = """
WITH written AS (
    INSERT INTO readings_1m AS t (bucket, sensor_id, n, avg, min, max, sum)
    SELECT d.minute, r.sensor_id, count(*), avg(r.value), min(r.value), max(r.value),
           sum(r.value)
    FROM unnest(%(minutes)s::timestamptz[]) AS d (minute)
    JOIN readings AS r ON r.ts >= d.minute AND r.ts < d.minute + INTERVAL '1 minute'
    GROUP BY d.minute, r.sensor_id
    ON CONFLICT (sensor_id, bucket) DO UPDATE SET
        n = EXCLUDED.n, avg = EXCLUDED.avg, min = EXCLUDED.min, max = EXCLUDED.max,
        sum = EXCLUDED.sum
    RETURNING t.sensor_id, t.bucket
)
INSERT INTO refresh_series (sensor_id, hour)
SELECT DISTINCT sensor_id, date_bin('1 hour', bucket, 'epoch') FROM written
"""
# readings_1m is read by its key (sensor_id, bucket): 60 rows per series-hour.
_REFRESH_HOURS = """
INSERT INTO readings_1h AS t (bucket, sensor_id, n, avg, min, max, sum)
SELECT s.hour, s.sensor_id, sum(m.n), sum(m.sum) / sum(m.n)::double precision, min(m.min),
       max(m.max), sum(m.sum)
FROM refresh_series AS s
JOIN readings_1m AS m
  ON m.sensor_id = s.sensor_id AND m.bucket >= s.hour AND m.bucket < s.hour + INTERVAL '1 hour'
GROUP BY s.hour, s.sensor_id
ON CONFLICT (sensor_id, bucket) DO UPDATE SET
    n = EXCLUDED.n, avg = EXCLUDED.avg, min = EXCLUDED.min, max = EXCLUDED.max,
    sum = EXCLUDED.sum
"""


@dataclass(frozen=True)
class MaintenanceReport:
    """What one round of upkeep did."""

    hours_refreshed: int = 0
    readings_deleted: int = 0


def floor_minute(ts: datetime) -> datetime:
    """The start of the UTC minute holding ``ts`` (timezone-aware)."""
    utc = ts.astimezone(UTC)
    return utc.replace(second=0, microsecond=0)


def floor_hour(ts: datetime) -> datetime:
    """The start of the UTC hour holding ``ts`` (timezone-aware)."""
    return floor_minute(ts).replace(minute=0)


def dirty_minutes(minutes: Iterable[datetime], hours: Iterable[datetime]) -> list[datetime]:
    """The minutes a round recomputes: minute marks, and every minute of each hour mark.

    An hour mark is expanded from the mark itself, not from its UTC hour: an ingester
    of an earlier version truncated to the hour in its session's time zone.
    """
    wanted = {floor_minute(m) for m in minutes}
    for hour in hours:
        start = floor_minute(hour)
        wanted.update(start + i * _MINUTE for i in range(60))
    return sorted(wanted)


def _claim(conn: psycopg.Connection[tuple[object, ...]], max_minutes: int) -> list[datetime]:
    """Take up to about ``max_minutes`` dirty minutes off the lists, in one short commit."""
    with conn.transaction():
        hours = [
            _timestamp(row[0])
            for row in conn.execute(_CLAIM_HOURS, {"limit": max(1, max_minutes // 60)})
        ]
        left = max(1, max_minutes - 60 * len(hours))
        minutes = [_timestamp(row[0]) for row in conn.execute(_CLAIM_MINUTES, {"limit": left})]
    return dirty_minutes(minutes, hours)


def _recompute(conn: psycopg.Connection[tuple[object, ...]], minutes: list[datetime]) -> None:
    """Rewrite the 1-minute rows of ``minutes`` and the 1-hour rows holding them."""
    hours = sorted({floor_hour(m) for m in minutes})
    with conn.transaction():
        # One refresher per hour at a time, taken in order so two never deadlock: a
        # minute can be dirtied again and claimed by another refresher while this one
        # works, and the hourly rows must be summed from minute rows both have finished.
        conn.cursor().executemany(
            _LOCK_HOUR, [(ROLLUP_LOCK_CLASS, int(h.timestamp()) // 3600) for h in hours]
        )
        conn.execute(_TEMP_SERIES)
        conn.execute(_REFRESH_MINUTES, {"minutes": minutes})
        conn.execute(_REFRESH_HOURS)


def _refresh_round(
    conn: psycopg.Connection[tuple[object, ...]], max_minutes: int
) -> frozenset[datetime]:
    """One claim and recomputation; the UTC hours whose roll-ups it refreshed."""
    minutes = _claim(conn, max_minutes)
    if not minutes:
        return frozenset()
    try:
        _recompute(conn, minutes)
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # give the minutes back for the next round
            conn.execute(_UNCLAIM, {"minutes": minutes})
        raise
    return frozenset(floor_hour(m) for m in minutes)


def refresh_rollups(conn: psycopg.Connection[tuple[object, ...]], max_minutes: int = 2880) -> int:
    """Recompute the roll-ups of up to about ``max_minutes`` dirty minutes; return the hours.

    The return value counts the UTC hours holding the minutes refreshed (0: nothing
    was dirty). The minutes are claimed in a short transaction of their own, so the
    ingester, which marks minutes dirty in every batch, never waits for a
    recomputation. Readings that arrive for a claimed minute mark it dirty again, and
    the next round recomputes it; a round that fails puts its minutes back.
    ``conn`` must be in autocommit mode.
    """
    if storage_mode(conn) != "native":
        return 0
    return len(_refresh_round(conn, max_minutes))


def refresh_all_rollups(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Refresh until nothing is dirty; return how many distinct hours were refreshed."""
    if storage_mode(conn) != "native":
        return 0
    hours: set[datetime] = set()
    while done := _refresh_round(conn, 2880):
        hours |= done
    return len(hours)


def apply_retention(conn: psycopg.Connection[tuple[object, ...]], retention_days: int) -> int:
    """Delete raw readings and message records older than ``retention_days`` (native mode)."""
    if storage_mode(conn) != "native":
        return 0
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM readings WHERE ts < now() - make_interval(days => %s)", (retention_days,)
        )
        deleted = cur.rowcount
        conn.execute(
            "DELETE FROM edge_messages WHERE received_at < now() - make_interval(days => %s)",
            (retention_days,),
        )
    if deleted:
        log.info("retention: deleted %d readings older than %d days", deleted, retention_days)
    return deleted


def maintain(
    conn: psycopg.Connection[tuple[object, ...]], retention_days: int
) -> MaintenanceReport:
    """One round of upkeep: all dirty roll-ups, then retention."""
    return MaintenanceReport(
        hours_refreshed=refresh_all_rollups(conn),
        readings_deleted=apply_retention(conn, retention_days),
    )


def _timestamp(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamp, got {value!r}")
    return value

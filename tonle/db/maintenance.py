"""Upkeep that TimescaleDB does by itself and plain PostgreSQL needs done for it.

In native mode the ingester marks every hour it wrote into ``rollup_dirty`` in the
same transaction as the readings; :func:`refresh_rollups` recomputes the 1-minute and
1-hour roll-ups of those hours, and :func:`apply_retention` deletes raw readings
older than the retention period. In TimescaleDB mode both are policies and these
functions do nothing.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import psycopg

from tonle.db.migrate import storage_mode

log = logging.getLogger(__name__)

_TEMP_HOURS = """
CREATE TEMP TABLE IF NOT EXISTS refresh_hours (hour timestamptz PRIMARY KEY) ON COMMIT DELETE ROWS
"""
_CLAIM = """
DELETE FROM rollup_dirty WHERE hour IN (
    SELECT hour FROM rollup_dirty ORDER BY hour LIMIT %(limit)s FOR UPDATE SKIP LOCKED
) RETURNING hour
"""
_UNCLAIM = "INSERT INTO rollup_dirty (hour) VALUES (%s) ON CONFLICT DO NOTHING"
_RECOMPUTE = {
    "readings_1m": "minute",
    "readings_1h": "hour",
}
_DELETE_ROLLUP = """
DELETE FROM {table} AS r USING refresh_hours AS h
WHERE r.bucket >= h.hour AND r.bucket < h.hour + INTERVAL '1 hour'
"""
_INSERT_ROLLUP = """
INSERT INTO {table} (bucket, sensor_id, n, avg, min, max, sum)
SELECT date_trunc('{unit}', r.ts), r.sensor_id, count(*), avg(r.value), min(r.value),
       max(r.value), sum(r.value)
FROM readings AS r JOIN refresh_hours AS h
  ON r.ts >= h.hour AND r.ts < h.hour + INTERVAL '1 hour'
GROUP BY 1, 2
"""


@dataclass(frozen=True)
class MaintenanceReport:
    """What one round of upkeep did."""

    hours_refreshed: int = 0
    readings_deleted: int = 0


def refresh_rollups(conn: psycopg.Connection[tuple[object, ...]], max_hours: int = 48) -> int:
    """Recompute the roll-ups of up to ``max_hours`` dirty hours; return how many.

    The hours are claimed in a short transaction of their own, so the ingester, which
    marks hours dirty in every batch, never waits for a recomputation. Readings that
    arrive for a claimed hour mark it dirty again, and the next round recomputes it.
    ``conn`` must be in autocommit mode.
    """
    if storage_mode(conn) != "native":
        return 0
    with conn.transaction():
        hours = [row[0] for row in conn.execute(_CLAIM, {"limit": max_hours})]
    if not hours:
        return 0
    try:
        with conn.transaction():
            conn.execute(_TEMP_HOURS)
            conn.cursor().executemany(
                "INSERT INTO refresh_hours (hour) VALUES (%s)", [(h,) for h in hours]
            )
            for table, unit in _RECOMPUTE.items():
                conn.execute(_DELETE_ROLLUP.format(table=table).encode())
                conn.execute(_INSERT_ROLLUP.format(table=table, unit=unit).encode())
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # give the hours back for the next round
            conn.cursor().executemany(_UNCLAIM, [(h,) for h in hours])
        raise
    return len(hours)


def refresh_all_rollups(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Refresh until no dirty hour is left; return how many hours were refreshed."""
    total = 0
    while (done := refresh_rollups(conn)) > 0:
        total += done
    return total


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

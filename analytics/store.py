"""Analytics' side of PostgreSQL: read one sensor's readings, write result rows, record runs.

Reads go through the registry and ``readings`` (by sensor id, the primary key's order);
writes are upserts keyed by what a row describes, so a later run over the same period
replaces earlier rows, and each row names the run that produced it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from analytics.series import FloatArray, Int64Array, Series

Conn = psycopg.Connection[tuple[Any, ...]]

_SENSORS = """
SELECT s.id, l.line, m.machine, s.metric, s.unit
FROM sensors s JOIN machines m ON m.id = s.machine_id
JOIN lines l ON l.id = m.line_id JOIN sites si ON si.id = l.site_id
WHERE si.site = %s ORDER BY l.line, m.machine, s.metric
"""
_READINGS = """
SELECT (extract(epoch FROM ts) * 1000)::bigint, value FROM readings
WHERE sensor_id = %s AND ts >= %s AND ts < %s ORDER BY ts
"""
_EXTENT = """
SELECT min(r.ts), max(r.ts) FROM readings r JOIN sensors s ON s.id = r.sensor_id
JOIN machines m ON m.id = s.machine_id JOIN lines l ON l.id = m.line_id
JOIN sites si ON si.id = l.site_id WHERE si.site = %s
"""

# Result tables: their columns, in the order rows are given, and their natural key.
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "machine_states": (
        ("site", "line", "machine", "start_ts", "end_ts", "state", "source"),
        ("site", "line", "machine", "start_ts"),
    ),
    "energy_intervals": (
        ("site", "level", "line", "machine", "grain", "bucket_start", "bucket_end", "label",
         "energy_kwh", "completeness", "method", "gap_s"),
        ("site", "level", "line", "machine", "grain", "bucket_start"),
    ),
    "idle_waste": (
        ("site", "line", "machine", "grain", "bucket_start", "bucket_end", "label", "idle_kwh",
         "idle_cost", "currency"),
        ("site", "line", "machine", "grain", "bucket_start"),
    ),
    "demand_peaks": (
        ("site", "month", "window_min", "peak_start", "peak_kw", "average_kw", "load_factor",
         "demand_charge", "currency", "contributors"),
        ("site", "month"),
    ),
    "power_events": (
        ("site", "kind", "start_ts", "end_ts", "min_voltage", "on_generator_s", "units_lost"),
        ("site", "kind", "start_ts"),
    ),
    "energy_costs": (
        ("site", "day", "source", "energy_kwh", "cost", "currency", "co2_kg"),
        ("site", "day", "source"),
    ),
    "sec_daily": (
        ("site", "line", "day", "energy_kwh", "units_good", "kwh_per_unit",
         "marginal_kwh_per_unit", "fixed_kwh_per_day"),
        ("site", "line", "day"),
    ),
    "oee_shifts": (
        ("site", "line", "machine", "bucket_start", "bucket_end", "label", "planned_s",
         "operating_s", "total_units", "good_units", "ideal_cycle_s", "availability",
         "performance", "quality", "oee", "breakdown_s", "setup_s", "minor_stop_s",
         "reduced_speed_s", "startup_reject_units", "defect_units"),
        ("site", "line", "machine", "bucket_start"),
    ),
    "mv_results": (
        ("site", "granularity", "baseline_start", "baseline_end", "reporting_start",
         "reporting_end", "baseline_hours", "r2", "cv_rmse_pct", "nmbe_pct",
         "heldout_cv_rmse_pct", "heldout_nmbe_pct", "meets_guideline14", "balance_point_c",
         "reporting_hours", "adjusted_baseline_kwh", "reporting_kwh", "avoided_kwh",
         "savings_pct", "fsu_pct", "avoided_cost", "annual_avoided_cost", "currency",
         "investment", "payback_years", "heating_balance_point_c"),
        ("site", "granularity", "baseline_start"),
    ),
    "machine_health": (
        ("site", "line", "machine", "ts", "health", "score", "load", "samples", "z", "change",
         "model_id"),
        ("site", "machine", "ts"),
    ),
    # Acknowledgement columns are not among these, so recomputing an alert keeps them.
    "maintenance_alerts": (
        ("site", "line", "machine", "opened_at", "closed_at", "severity", "min_health",
         "peak_at", "peak_score", "reasons", "model_id"),
        ("site", "machine", "opened_at"),
    ),
    "rul_estimates": (
        ("site", "line", "machine", "ts", "rul_h", "low_h", "high_h", "capped", "model_id",
         "health_model_id"),
        ("site", "machine", "ts"),
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SensorRef:
    """A registered sensor of a site."""

    sensor_id: int
    line: str
    machine: str
    metric: str
    unit: str | None


def site_sensors(conn: Conn, site: str) -> list[SensorRef]:
    """Every sensor registered for ``site``."""
    return [
        SensorRef(int(sid), str(line), str(machine), str(metric), unit)
        for sid, line, machine, metric, unit in conn.execute(_SENSORS, (site,))
    ]


def site_extent(conn: Conn, site: str) -> tuple[datetime, datetime] | None:
    """The first and last reading time of ``site``, or None if it has none."""
    row = conn.execute(_EXTENT, (site,)).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def load_series(conn: Conn, sensor_id: int, start: datetime, end: datetime) -> Series:
    """The readings of one sensor in [start, end), as arrays."""
    rows = conn.execute(_READINGS, (sensor_id, start, end)).fetchall()
    if not rows:
        return Series.empty()
    data = np.array(rows, dtype=np.float64)
    return Series(data[:, 0].astype(np.int64), data[:, 1].copy())


def start_run(conn: Conn, site: str, start: datetime, end: datetime, model_version: str) -> int:
    """Record a run as started; return its id."""
    row = conn.execute(
        "INSERT INTO analytics_runs (site, period_start, period_end, model_version)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (site, start, end, model_version),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_run(conn: Conn, run_id: int, summary: dict[str, Any] | None, error: str | None) -> None:
    """Record how a run ended."""
    conn.execute(
        "UPDATE analytics_runs SET status = %s, finished_at = now(), summary = %s, error = %s"
        " WHERE id = %s",
        ("failed" if error else "done", Jsonb(summary) if summary else None, error, run_id),
    )


def last_done_run_end(conn: Conn, site: str) -> datetime | None:
    """Where the last successful run of ``site`` stopped, to pick up from there."""
    row = conn.execute(
        "SELECT max(period_end) FROM analytics_runs WHERE site = %s AND status = 'done'", (site,)
    ).fetchone()
    return None if row is None else row[0]


def upsert(conn: Conn, table: str, run_id: int, rows: Sequence[Sequence[Any]]) -> int:
    """Insert or replace result rows (columns as in :data:`TABLES`); return how many."""
    if not rows:
        return 0
    columns, key = TABLES[table]
    names = [*columns, "run_id"]
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in key)
    statement = (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
    prepared = [[_adapt(v) for v in row] + [run_id] for row in rows]
    with conn.cursor() as cur:
        cur.executemany(statement.encode(), prepared)
    return len(prepared)


def delete_between(
    conn: Conn, table: str, site: str, column: str, start: datetime, end: datetime
) -> None:
    """Remove a site's rows whose ``column`` lies in [start, end) before a recomputation."""
    if table not in TABLES or column not in TABLES[table][0]:
        raise ValueError(f"{table}.{column} is not a result column")
    conn.execute(
        f"DELETE FROM {table} WHERE site = %s AND {column} >= %s AND {column} < %s".encode(),
        (site, start, end),
    )


def _adapt(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, dict)):
        return Jsonb(json.loads(json.dumps(value, default=float)))
    return value


def jsonable(value: Any) -> Any:
    """``value`` with numpy numbers as Python ones, NaN and infinities as None (not JSON)."""
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def note_run(conn: Conn, run_id: int, extra: dict[str, Any], error: str | None = None) -> None:
    """Add ``extra`` to a finished run's summary; with ``error``, record the run as failed."""
    conn.execute(
        "UPDATE analytics_runs SET summary = coalesce(summary, '{}'::jsonb) || %s,"
        " status = CASE WHEN %s::text IS NULL THEN status ELSE 'failed' END,"
        " error = coalesce(%s, error) WHERE id = %s",
        (Jsonb(jsonable(extra)), error, error, run_id),
    )


# ----------------------------------------------------------------- maintenance

# Runs of consecutive fault intervals of one machine that the machine came out of (the
# interval after the run is in another state); a fault still going on is left out.
_FAULT_RUNS = """
WITH marked AS (
    SELECT start_ts, end_ts, state, lead(state) OVER w AS next_state,
           CASE WHEN state = 3 AND lag(state) OVER w IS DISTINCT FROM 3 THEN 1 ELSE 0 END
               AS begins
    FROM machine_states
    WHERE site = %s AND line = %s AND machine = %s AND end_ts > %s AND start_ts < %s
    WINDOW w AS (ORDER BY start_ts)
), runs AS (
    SELECT state, end_ts, start_ts, next_state, sum(begins) OVER (ORDER BY start_ts) AS run
    FROM marked
)
SELECT min(start_ts), max(end_ts) FROM runs WHERE state = 3 GROUP BY run
HAVING bool_or(next_state IS NOT NULL AND next_state <> 3) ORDER BY 1
"""
ALERT_COLUMNS = (
    "alert_id, site, line, machine, opened_at, closed_at, severity, min_health, peak_at,"
    " peak_score, reasons, model_id, run_id, acknowledged_at, acknowledged_by, ack_comment"
)
_HEALTH = """
SELECT (extract(epoch FROM ts) * 1000)::bigint, health, score, load, samples, z, change,
       model_id
FROM machine_health WHERE site = %s AND machine = %s AND ts > %s AND ts <= %s ORDER BY ts
"""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A maintenance done on a machine: a repair, a service or a sensor change."""

    at: datetime
    kind: str
    note: str
    source: str


@dataclass(frozen=True, slots=True)
class HealthRows:
    """Stored ``machine_health`` rows of one machine, as arrays (NaN for a missing value)."""

    ts_ms: Int64Array
    health: FloatArray
    score: FloatArray
    load: FloatArray
    samples: Int64Array
    z: dict[str, FloatArray]
    change: dict[str, FloatArray]
    model_id: Int64Array


def first_reading(conn: Conn, sensor_ids: Sequence[int]) -> datetime | None:
    """The earliest reading of any of the sensors, or None if they have none."""
    first: datetime | None = None
    for sensor_id in sensor_ids:
        row = conn.execute(
            "SELECT ts FROM readings WHERE sensor_id = %s ORDER BY ts LIMIT 1", (sensor_id,)
        ).fetchone()
        if row is not None and (first is None or row[0] < first):
            first = row[0]
    return first


def fault_runs(
    conn: Conn, site: str, line: str, machine: str, since: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """(start, end) of the fault spells of a machine that ended in [since, until)."""
    rows = conn.execute(_FAULT_RUNS, (site, line, machine, since, until)).fetchall()
    return [(start, end) for start, end in rows if since <= end < until]


def log_maintenance(
    conn: Conn, site: str, line: str, machine: str, entries: Sequence[LogEntry]
) -> int:
    """Add entries to ``maintenance_log`` (an entry already there is kept); return how many."""
    added = 0
    for entry in entries:
        added += conn.execute(
            "INSERT INTO maintenance_log (site, line, machine, at, kind, note, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (site, line, machine, entry.at, entry.kind, entry.note, entry.source),
        ).rowcount
    return added


def maintenance_log_of(conn: Conn, site: str, machine: str, until: datetime) -> list[LogEntry]:
    """A machine's maintenance up to ``until``, oldest first."""
    rows = conn.execute(
        "SELECT at, kind, note, source FROM maintenance_log"
        " WHERE site = %s AND machine = %s AND at <= %s ORDER BY at, kind",
        (site, machine, until),
    ).fetchall()
    return [LogEntry(at, str(kind), str(note), str(source)) for at, kind, note, source in rows]


def delete_health(conn: Conn, site: str, machine: str, after: datetime, upto: datetime) -> int:
    """Remove a machine's health rows with ``after < ts <= upto``; return how many."""
    return conn.execute(
        "DELETE FROM machine_health WHERE site = %s AND machine = %s AND ts > %s AND ts <= %s",
        (site, machine, after, upto),
    ).rowcount


def load_health(conn: Conn, site: str, machine: str, after: datetime, upto: datetime) -> HealthRows:
    """A machine's stored health with ``after < ts <= upto``, in time order."""
    rows = conn.execute(_HEALTH, (site, machine, after, upto)).fetchall()
    features = sorted({k for row in rows for k in (*row[5], *row[6])})

    def column(index: int) -> FloatArray:
        return np.array([np.nan if r[index] is None else r[index] for r in rows], np.float64)

    def per_feature(index: int) -> dict[str, FloatArray]:
        return {
            f: np.array([np.nan if r[index].get(f) is None else r[index][f] for r in rows])
            for f in features
        }

    return HealthRows(
        np.array([r[0] for r in rows], np.int64),
        column(1),
        column(2),
        column(3),
        np.array([r[4] for r in rows], np.int64),
        per_feature(5),
        per_feature(6),
        np.array([r[7] for r in rows], np.int64),
    )


def delete_rul(
    conn: Conn, site: str, machine: str, after: datetime, upto: datetime, recomputed: datetime
) -> int:
    """Remove a machine's RUL estimates with ``after < ts <= upto`` that are stale.

    Stale: those after ``recomputed`` (about to be written again), and any whose window
    no longer has a health row (a reset logged after the fact). Returns how many.
    """
    return conn.execute(
        "DELETE FROM rul_estimates e WHERE e.site = %s AND e.machine = %s"
        " AND e.ts > %s AND e.ts <= %s AND (e.ts > %s OR NOT EXISTS ("
        "SELECT 1 FROM machine_health h"
        " WHERE h.site = e.site AND h.machine = e.machine AND h.ts = e.ts))",
        (site, machine, after, upto, recomputed),
    ).rowcount


def health_scores(
    conn: Conn, site: str, machine: str, after: datetime, upto: datetime
) -> FloatArray:
    """A machine's stored anomaly scores with ``after < ts <= upto``, in time order."""
    rows = conn.execute(
        "SELECT score FROM machine_health WHERE site = %s AND machine = %s"
        " AND ts > %s AND ts <= %s ORDER BY ts",
        (site, machine, after, upto),
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.float64)


def earliest_standing_alert(
    conn: Conn, site: str, machine: str, after: datetime, at: datetime, closed_after: datetime
) -> datetime | None:
    """When the first alert opened in ``(after, at]`` that was still open at ``closed_after``."""
    row = conn.execute(
        "SELECT min(opened_at) FROM maintenance_alerts WHERE site = %s AND machine = %s"
        " AND opened_at > %s AND opened_at <= %s AND (closed_at IS NULL OR closed_at > %s)",
        (site, machine, after, at, closed_after),
    ).fetchone()
    return None if row is None else row[0]


def delete_alerts(
    conn: Conn,
    site: str,
    machine: str,
    after: datetime,
    upto: datetime,
    keep: Sequence[datetime],
) -> int:
    """Remove unacknowledged alerts opened in ``(after, upto]`` except those opened at ``keep``."""
    return conn.execute(
        "DELETE FROM maintenance_alerts WHERE site = %s AND machine = %s"
        " AND opened_at > %s AND opened_at <= %s AND acknowledged_at IS NULL"
        " AND NOT (opened_at = ANY(%s))",
        (site, machine, after, upto, list(keep)),
    ).rowcount


def acknowledge(conn: Conn, alert_id: int, by: str, comment: str) -> tuple[Any, ...] | None:
    """Mark an alert seen by ``by``; return its row, or None if unknown or acknowledged."""
    return conn.execute(
        "UPDATE maintenance_alerts SET acknowledged_at = now(), acknowledged_by = %s,"
        " ack_comment = %s WHERE alert_id = %s AND acknowledged_at IS NULL"
        f" RETURNING {ALERT_COLUMNS}",
        (by, comment, alert_id),
    ).fetchone()


def alert_row(conn: Conn, alert_id: int) -> tuple[Any, ...] | None:
    """One alert's row (columns :data:`ALERT_COLUMNS`), or None."""
    return conn.execute(
        f"SELECT {ALERT_COLUMNS} FROM maintenance_alerts WHERE alert_id = %s", (alert_id,)
    ).fetchone()

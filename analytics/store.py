"""Analytics' side of PostgreSQL: read one sensor's readings, write result rows, record runs.

Reads go through the registry and ``readings`` (by sensor id, the primary key's order);
writes are upserts keyed by what a row describes, so a later run over the same period
replaces earlier rows, and each row names the run that produced it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from analytics.series import Series

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

"""Every statement the API runs: registry, readings, roll-ups and analytics results."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal, TypeVar

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row, dict_row

from api.models import (
    AlertPublic,
    Bucket,
    CostPublic,
    EdgeCredentialPublic,
    EdgePublic,
    EnergyIntervalPublic,
    Grain,
    HealthReadingPublic,
    Level,
    LinePublic,
    LineRecordPublic,
    MachineHealthPublic,
    MachinePublic,
    MachineRecordPublic,
    OeeBy,
    OeePublic,
    OutagePublic,
    PeakPublic,
    PortfolioSitePublic,
    RulPublic,
    SavingsPublic,
    SensorPublic,
    SiteDetailPublic,
    SitePublic,
    TelemetryPointPublic,
)

Conn = AsyncConnection[Any]

SITE_COLUMNS = (
    "site, name, timezone, sector, tariff, pilot_investment, pilot_start, pilot_end, active"
)


_Row = TypeVar("_Row")


async def _all(conn: Conn, model: type[_Row], query: Any, params: Any) -> list[_Row]:
    """Every row of ``query`` as ``model`` instances."""
    async with conn.cursor(row_factory=class_row(model)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def token_by_hash(conn: Conn, secret_sha256: str) -> dict[str, Any] | None:
    """The live (not revoked) token stored under this hash, if any."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT token_id, name, role, site FROM api_tokens "
            "WHERE secret_sha256 = %s AND revoked_at IS NULL",
            (secret_sha256,),
        )
        return await cur.fetchone()


async def sites(conn: Conn, only: str | None) -> list[SitePublic]:
    """Every site (or only ``only``), by id."""
    return await _all(
        conn,
        SitePublic,
        f"SELECT {SITE_COLUMNS} FROM sites "
        "WHERE %(only)s::text IS NULL OR site = %(only)s ORDER BY site",
        {"only": only},
    )


async def site_exists(conn: Conn, site: str) -> bool:
    """Whether the registry knows ``site``."""
    cur = await conn.execute("SELECT 1 FROM sites WHERE site = %s", (site,))
    return await cur.fetchone() is not None


async def site_detail(conn: Conn, site: str) -> SiteDetailPublic | None:
    """A site with its lines, machines and their metrics; None if unknown."""
    found = await sites(conn, site)
    if not found:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT l.line, l.name AS line_name, m.machine, m.name, m.kind,
                   coalesce(array_agg(se.metric ORDER BY se.metric)
                            FILTER (WHERE se.metric IS NOT NULL), '{}') AS metrics
            FROM sites AS si
            JOIN lines AS l ON l.site_id = si.id
            LEFT JOIN machines AS m ON m.line_id = l.id
            LEFT JOIN sensors AS se ON se.machine_id = m.id
            WHERE si.site = %s
            GROUP BY l.line, l.name, m.machine, m.name, m.kind
            ORDER BY l.line, m.machine
            """,
            (site,),
        )
        rows = await cur.fetchall()
    lines: dict[str, LinePublic] = {}
    for row in rows:
        line = lines.setdefault(
            row["line"], LinePublic(line=row["line"], name=row["line_name"], machines=[])
        )
        if row["machine"] is not None:
            line.machines.append(
                MachinePublic(
                    machine=row["machine"],
                    name=row["name"],
                    kind=row["kind"],
                    metrics=row["metrics"],
                )
            )
    return SiteDetailPublic(**found[0].model_dump(), lines=list(lines.values()))


async def known_values(conn: Conn, site: str, column: str) -> list[str]:
    """The machines (``column='machine'``) or metrics (``'metric'``) a site reports."""
    query = {
        "machine": "SELECT DISTINCT m.machine",
        "metric": "SELECT DISTINCT se.metric",
    }[column]
    cur = await conn.execute(
        f"""
        {query} AS value
        FROM sites AS si
        JOIN lines AS l ON l.site_id = si.id
        JOIN machines AS m ON m.line_id = l.id
        JOIN sensors AS se ON se.machine_id = m.id
        WHERE si.site = %s ORDER BY 1
        """,
        (site,),
    )
    return [str(row[0]) for row in await cur.fetchall()]


_TELEMETRY_WHERE = """
    WHERE site = %(site)s AND ts >= %(start)s AND ts < %(end)s
      AND (%(line)s::text IS NULL OR line = %(line)s)
      AND (%(machine)s::text IS NULL OR machine = %(machine)s)
      AND (%(metric)s::text IS NULL OR metric = %(metric)s)
"""
_TELEMETRY = {
    "raw": "SELECT ts, line, machine, metric, unit, value, NULL::float8 AS min, "
    "NULL::float8 AS max, NULL::bigint AS n FROM telemetry" + _TELEMETRY_WHERE,
    "1m": "SELECT ts, line, machine, metric, unit, avg AS value, min, max, n FROM telemetry_1m"
    + _TELEMETRY_WHERE,
    "1h": "SELECT ts, line, machine, metric, unit, avg AS value, min, max, n FROM telemetry_1h"
    + _TELEMETRY_WHERE,
    # UTC days from the hourly roll-up: the mean weighted by each hour's readings.
    "1d": "SELECT date_trunc('day', ts, 'UTC') AS ts, line, machine, metric, unit, "
    "sum(sum) / sum(n)::float8 AS value, min(min) AS min, max(max) AS max, sum(n)::bigint AS n "
    "FROM telemetry_1h" + _TELEMETRY_WHERE + "GROUP BY 1, line, machine, metric, unit",
}


def telemetry_sql(bucket: Bucket) -> str:
    """The statement :func:`telemetry` runs for ``bucket`` (benchmarks time it directly)."""
    return _TELEMETRY[bucket] + " ORDER BY ts, line, machine, metric LIMIT %(limit)s"


async def telemetry(
    conn: Conn,
    site: str,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    line: str | None,
    machine: str | None,
    metric: str | None,
    limit: int,
) -> list[TelemetryPointPublic]:
    """Readings (raw) or roll-up buckets of a site in [start, end), oldest first."""
    return await _all(
        conn,
        TelemetryPointPublic,
        telemetry_sql(bucket),
        {
            "site": site,
            "start": start,
            "end": end,
            "line": line,
            "machine": machine,
            "metric": metric,
            "limit": limit,
        },
    )


async def telemetry_rows(
    conn: Conn,
    site: str,
    bucket: Bucket,
    start: datetime,
    end: datetime,
    line: str | None,
    machine: str | None,
    metric: str | None,
) -> AsyncIterator[tuple[datetime, str, str, str, float]]:
    """(ts, line, machine, metric, value) of a site in [start, end), streamed from the server."""
    cur = conn.cursor()
    params = {
        "site": site,
        "start": start,
        "end": end,
        "line": line,
        "machine": machine,
        "metric": metric,
    }
    async with cur:
        query = f"SELECT ts, line, machine, metric, value FROM ({_TELEMETRY[bucket]}) AS t"
        async for row in cur.stream(query + " ORDER BY ts, line, machine, metric", params):
            yield row[0], row[1], row[2], row[3], row[4]


_SENSORS = """
    SELECT se.id, l.line, m.machine, se.metric
    FROM sensors AS se
    JOIN machines AS m ON m.id = se.machine_id
    JOIN lines AS l ON l.id = m.line_id
    JOIN sites AS si ON si.id = l.site_id
    WHERE si.site = %(site)s AND (%(machine)s::text IS NULL OR m.machine = %(machine)s)
"""
# Median gap between readings, over [gap_start, end); ordered-set aggregates skip the NULL
# lag of each sensor's first reading.
_MEDIAN_GAP = """
    SELECT sensor_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap_s) AS interval_s
    FROM (
        SELECT r.sensor_id, extract(epoch FROM r.ts - lag(r.ts) OVER w)::float8 AS gap_s
        FROM readings AS r JOIN s ON s.id = r.sensor_id
        WHERE r.ts >= %(gap_start)s AND r.ts < %(end)s
        WINDOW w AS (PARTITION BY r.sensor_id ORDER BY r.ts)
    ) AS g
    GROUP BY sensor_id
"""
_COMPLETENESS = {
    "raw": f"""
        WITH s AS ({_SENSORS}),
        g AS (
            SELECT r.sensor_id, r.ts, r.ts - lag(r.ts) OVER w AS gap
            FROM readings AS r JOIN s ON s.id = r.sensor_id
            WHERE r.ts >= %(start)s AND r.ts < %(end)s
            WINDOW w AS (PARTITION BY r.sensor_id ORDER BY r.ts)
        ),
        a AS (
            SELECT sensor_id, count(*) AS stored,
                   greatest(max(gap), min(ts) - %(start)s, %(end)s - max(ts)) AS longest
            FROM g GROUP BY sensor_id
        ),
        i AS ({_MEDIAN_GAP})
    """,
    "1h": f"""
        WITH s AS ({_SENSORS}),
        g AS (
            SELECT r.sensor_id, r.bucket, r.n,
                   r.bucket - lag(r.bucket) OVER w - interval '1 hour' AS gap
            FROM readings_1h AS r JOIN s ON s.id = r.sensor_id
            WHERE r.bucket >= %(start)s AND r.bucket < %(end)s
            WINDOW w AS (PARTITION BY r.sensor_id ORDER BY r.bucket)
        ),
        a AS (
            SELECT sensor_id, sum(n)::bigint AS stored,
                   greatest(max(gap), min(bucket) - %(start)s,
                            %(end)s - max(bucket) - interval '1 hour', interval '0') AS longest
            FROM g GROUP BY sensor_id
        ),
        i AS ({_MEDIAN_GAP})
    """,
}


async def completeness(
    conn: Conn,
    site: str,
    source: Literal["raw", "1h"],
    start: datetime,
    end: datetime,
    gap_start: datetime,
    machine: str | None,
) -> list[tuple[str, str, str, int, float | None, float]]:
    """(line, machine, metric, stored, median gap s, longest gap s) of each sensor of a site.

    ``source`` is ``raw`` (readings) or ``1h`` (the hourly roll-up's counts, gaps to the
    hour); the median gap is measured on readings in [gap_start, end).
    """
    cur = await conn.execute(
        _COMPLETENESS[source]
        + """
        SELECT s.line, s.machine, s.metric, coalesce(a.stored, 0), i.interval_s,
               extract(epoch FROM coalesce(a.longest, %(end)s - %(start)s))::float8
        FROM s LEFT JOIN a ON a.sensor_id = s.id LEFT JOIN i ON i.sensor_id = s.id
        ORDER BY s.line, s.machine, s.metric
        """,
        {"site": site, "machine": machine, "start": start, "end": end, "gap_start": gap_start},
    )
    return [(r[0], r[1], r[2], int(r[3]), r[4], float(r[5])) for r in await cur.fetchall()]


_ALERT_COLUMNS = (
    "alert_id, site, line, machine, opened_at, closed_at, severity, min_health, peak_at, "
    "peak_score, reasons, acknowledged_at, acknowledged_by, ack_comment"
)


async def alerts(conn: Conn, site: str, is_open: bool | None) -> list[AlertPublic]:
    """A site's alerts, newest first; only open or only closed ones when asked."""
    return await _all(
        conn,
        AlertPublic,
        f"""
            SELECT {_ALERT_COLUMNS} FROM maintenance_alerts
            WHERE site = %(site)s
              AND (%(open)s::boolean IS NULL OR (closed_at IS NULL) = %(open)s)
            ORDER BY opened_at DESC, alert_id DESC
            """,
        {"site": site, "open": is_open},
    )


async def alert(conn: Conn, alert_id: int) -> AlertPublic | None:
    """One alert by id."""
    async with conn.cursor(row_factory=class_row(AlertPublic)) as cur:
        await cur.execute(
            f"SELECT {_ALERT_COLUMNS} FROM maintenance_alerts WHERE alert_id = %s", (alert_id,)
        )
        return await cur.fetchone()


async def acknowledge(conn: Conn, alert_id: int, by: str, comment: str) -> AlertPublic | None:
    """Acknowledge an alert not acknowledged before; None if it was (the first one stays)."""
    async with conn.cursor(row_factory=class_row(AlertPublic)) as cur:
        await cur.execute(
            f"""
            UPDATE maintenance_alerts
            SET acknowledged_at = now(), acknowledged_by = %s, ack_comment = %s
            WHERE alert_id = %s AND acknowledged_at IS NULL
            RETURNING {_ALERT_COLUMNS}
            """,
            (by, comment, alert_id),
        )
        return await cur.fetchone()


async def machine_health(conn: Conn, site: str) -> list[MachineHealthPublic]:
    """Every machine of a site with its latest health row and latest RUL estimate."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT l.line, m.machine,
                   h.ts AS h_ts, h.health, h.score, h.load, h.samples,
                   r.ts AS r_ts, r.rul_h, r.low_h, r.high_h, r.capped
            FROM sites AS si
            JOIN lines AS l ON l.site_id = si.id
            JOIN machines AS m ON m.line_id = l.id
            LEFT JOIN LATERAL (
                SELECT ts, health, score, load, samples FROM machine_health
                WHERE site = si.site AND machine = m.machine ORDER BY ts DESC LIMIT 1
            ) AS h ON true
            LEFT JOIN LATERAL (
                SELECT ts, rul_h, low_h, high_h, capped FROM rul_estimates
                WHERE site = si.site AND machine = m.machine ORDER BY ts DESC LIMIT 1
            ) AS r ON true
            WHERE si.site = %s
            ORDER BY l.line, m.machine
            """,
            (site,),
        )
        rows = await cur.fetchall()
    return [
        MachineHealthPublic(
            line=row["line"],
            machine=row["machine"],
            health=None
            if row["h_ts"] is None
            else HealthReadingPublic(
                ts=row["h_ts"],
                health=row["health"],
                score=row["score"],
                load=row["load"],
                samples=row["samples"],
            ),
            rul=None
            if row["r_ts"] is None
            else RulPublic(
                ts=row["r_ts"],
                rul_h=row["rul_h"],
                low_h=row["low_h"],
                high_h=row["high_h"],
                capped=row["capped"],
            ),
        )
        for row in rows
    ]


async def energy(
    conn: Conn, site: str, level: Level, grain: Grain, start: datetime, end: datetime
) -> list[EnergyIntervalPublic]:
    """A site's energy intervals starting in [start, end), with idle waste summed to the level."""
    async with conn.cursor(row_factory=class_row(EnergyIntervalPublic)) as cur:
        await cur.execute(
            """
            SELECT e.line, e.machine, e.bucket_start, e.bucket_end, e.label, e.energy_kwh,
                   e.completeness, e.method, e.gap_s, i.idle_kwh, i.idle_cost, i.currency
            FROM energy_intervals AS e
            LEFT JOIN LATERAL (
                SELECT sum(w.idle_kwh) AS idle_kwh, sum(w.idle_cost) AS idle_cost,
                       min(w.currency) AS currency
                FROM idle_waste AS w
                -- idle waste exists per shift and day only: other grains skip the lookup
                WHERE e.grain IN ('shift', '1d')
                  AND w.site = e.site AND w.grain = e.grain AND w.bucket_start = e.bucket_start
                  AND (e.level = 'site' OR w.line = e.line)
                  AND (e.level <> 'machine' OR w.machine = e.machine)
                HAVING count(*) > 0
            ) AS i ON true
            WHERE e.site = %(site)s AND e.level = %(level)s AND e.grain = %(grain)s
              AND e.bucket_start >= %(start)s AND e.bucket_start < %(end)s
            ORDER BY e.bucket_start, e.line, e.machine
            """,
            {"site": site, "level": level, "grain": grain, "start": start, "end": end},
        )
        return await cur.fetchall()


async def peaks(conn: Conn, site: str, start: datetime, end: datetime) -> list[PeakPublic]:
    """A site's monthly demand peaks that began in [start, end), oldest first."""
    return await _all(
        conn,
        PeakPublic,
        "SELECT month, window_min, peak_start, peak_kw, average_kw, load_factor, "
        "demand_charge, currency, contributors FROM demand_peaks "
        "WHERE site = %s AND peak_start >= %s AND peak_start < %s ORDER BY month",
        (site, start, end),
    )


async def outages(conn: Conn, site: str, start: datetime, end: datetime) -> list[OutagePublic]:
    """A site's outages and sags that began in [start, end), oldest first."""
    return await _all(
        conn,
        OutagePublic,
        "SELECT kind, start_ts, end_ts, extract(epoch FROM end_ts - start_ts)::float8 "
        "AS duration_s, min_voltage, on_generator_s, units_lost FROM power_events "
        "WHERE site = %s AND start_ts >= %s AND start_ts < %s ORDER BY start_ts, kind",
        (site, start, end),
    )


async def costs(conn: Conn, site: str, start: datetime, end: datetime) -> list[CostPublic]:
    """A site's daily energy cost by source, for local days from start's date to before end's."""
    return await _all(
        conn,
        CostPublic,
        "SELECT day, source, energy_kwh, cost, currency, co2_kg FROM energy_costs "
        "WHERE site = %s AND day >= %s::date AND day < %s::date ORDER BY day, source",
        (site, start.date(), end.date()),
    )


async def savings(conn: Conn, site: str) -> list[SavingsPublic]:
    """The latest measured savings of a site, one row per granularity."""
    return await _all(
        conn,
        SavingsPublic,
        """
            SELECT DISTINCT ON (granularity)
                   granularity, baseline_start, baseline_end, reporting_start, reporting_end,
                   r2, cv_rmse_pct, nmbe_pct, meets_guideline14, adjusted_baseline_kwh,
                   reporting_kwh, avoided_kwh, savings_pct, fsu_pct, avoided_cost,
                   annual_avoided_cost, currency, investment, payback_years
            FROM mv_results WHERE site = %s
            ORDER BY granularity, reporting_end DESC, baseline_start DESC
            """,
        (site,),
    )


_OEE_COLUMNS = (
    "bucket_start, bucket_end, label, planned_s, operating_s, total_units, good_units, "
    "availability, performance, quality, oee, breakdown_s, setup_s, minor_stop_s, "
    "reduced_speed_s, startup_reject_units, defect_units"
)
_OEE = {
    "machine": f"SELECT line, machine, 1 AS machines, {_OEE_COLUMNS} FROM oee_shifts",
    "line": f"SELECT line, NULL AS machine, machines, {_OEE_COLUMNS} FROM oee_lines",
}


async def oee(conn: Conn, site: str, by: OeeBy, start: datetime, end: datetime) -> list[OeePublic]:
    """OEE per machine or line and shift, for shifts starting in [start, end)."""
    return await _all(
        conn,
        OeePublic,
        f"""
            {_OEE[by]}
            WHERE site = %(site)s AND bucket_start >= %(start)s AND bucket_start < %(end)s
            ORDER BY bucket_start, line, machine
            """,
        {"site": site, "start": start, "end": end},
    )


def status_fields(status: str | None) -> tuple[bool, int | None]:
    """Whether an edge status says online, and its spool backlog if it reported one.

    The contract's status is the text ``online`` or ``offline``; a JSON object with a
    ``status`` member and a ``pending`` count (messages waiting in the spool) is read too.
    """
    if status is None:
        return False, None
    try:
        parsed = json.loads(status)
    except ValueError:
        return status == "online", None
    if not isinstance(parsed, dict):
        return status == "online", None
    pending = parsed.get("pending")
    backlog = pending if isinstance(pending, int) and not isinstance(pending, bool) else None
    return parsed.get("status") == "online", backlog


async def edges(conn: Conn, site: str) -> list[EdgePublic]:
    """A site's edge gateways, their last status, message counts and sequence gaps."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT edge_id, status, status_at,
                   greatest(status_at, last_received_at) AS last_seen,  -- NULLs ignored
                   messages, buffered_messages, gaps, missing_messages
            FROM edge_health WHERE site = %s ORDER BY edge_id
            """,
            (site,),
        )
        rows = await cur.fetchall()
    found = []
    for row in rows:
        online, backlog = status_fields(row["status"])
        found.append(EdgePublic(**row, online=online, spool_backlog=backlog))
    return found


async def portfolio(
    conn: Conn, only: str | None, start: datetime, end: datetime
) -> list[PortfolioSitePublic]:
    """Every site (or only ``only``) with its pilot figures, by id.

    The period is the latest savings reporting period, else [start, end).
    A fault counts as caught when an alert of the same machine opened in the 14 days
    before the fault state began.
    """
    return await _all(
        conn,
        PortfolioSitePublic,
        """
            WITH site_period AS (
                SELECT si.site, si.name, mv.savings_pct, mv.avoided_cost, mv.currency,
                       coalesce(mv.reporting_start, %(start)s) AS period_start,
                       coalesce(mv.reporting_end, %(end)s) AS period_end,
                       CASE WHEN mv.site IS NULL THEN 'last 30 days' ELSE 'pilot' END
                           AS period
                FROM sites AS si
                LEFT JOIN LATERAL (
                    SELECT * FROM mv_results WHERE site = si.site
                    ORDER BY reporting_end DESC, baseline_start DESC LIMIT 1
                ) AS mv ON true
                WHERE %(only)s::text IS NULL OR si.site = %(only)s
            )
            SELECT p.site, p.name, p.period_start, p.period_end, p.period,
                   coalesce(e.energy_kwh, 0) AS energy_kwh, c.completeness,
                   p.savings_pct, p.avoided_cost, p.currency,
                   s.up_s / nullif(s.up_s + s.fault_s, 0) AS uptime,
                   f.faults, f.caught AS faults_caught, a.open_alerts
            FROM site_period AS p
            LEFT JOIN LATERAL (
                SELECT sum(energy_kwh) AS energy_kwh FROM energy_intervals
                WHERE site = p.site AND level = 'site' AND grain = '1h'
                  AND bucket_start >= p.period_start AND bucket_start < p.period_end
            ) AS e ON true
            LEFT JOIN LATERAL (
                SELECT avg(completeness) AS completeness FROM energy_intervals
                WHERE site = p.site AND level = 'machine' AND grain = '1h'
                  AND bucket_start >= p.period_start AND bucket_start < p.period_end
            ) AS c ON true
            LEFT JOIN LATERAL (
                SELECT
                    coalesce(sum(extract(epoch FROM least(end_ts, p.period_end)
                                 - greatest(start_ts, p.period_start)))
                             FILTER (WHERE state IN (1, 2)), 0)::float8 AS up_s,
                    coalesce(sum(extract(epoch FROM least(end_ts, p.period_end)
                                 - greatest(start_ts, p.period_start)))
                             FILTER (WHERE state = 3), 0)::float8 AS fault_s
                FROM machine_states
                WHERE site = p.site AND start_ts < p.period_end AND end_ts > p.period_start
            ) AS s ON true
            LEFT JOIN LATERAL (
                SELECT count(*) AS faults,
                       count(*) FILTER (WHERE EXISTS (
                           SELECT 1 FROM maintenance_alerts AS al
                           WHERE al.site = ms.site AND al.line = ms.line
                             AND al.machine = ms.machine AND al.opened_at <= ms.start_ts
                             AND al.opened_at > ms.start_ts - interval '14 days'
                       )) AS caught
                FROM machine_states AS ms
                WHERE ms.site = p.site AND ms.state = 3
                  AND ms.start_ts >= p.period_start AND ms.start_ts < p.period_end
            ) AS f ON true
            LEFT JOIN LATERAL (
                SELECT count(*) AS open_alerts FROM maintenance_alerts
                WHERE site = p.site AND closed_at IS NULL
            ) AS a ON true
            ORDER BY p.site
            """,
        {"only": only, "start": start, "end": end},
    )


# ------------------------------------------------------------------ registry writes
# Inserts raise psycopg.errors.UniqueViolation on a duplicate id (the routes make it a 409);
# updates and inserts under a parent return None when the parent or the row is unknown.


def _set(changes: dict[str, Any]) -> sql.Composed:
    """``SET col = %(col)s, …`` for the changed fields (names come from the models)."""
    return sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in changes
    )


async def create_site(conn: Conn, fields: dict[str, Any]) -> SitePublic:
    """Insert a site; UniqueViolation if its id is taken."""
    names = list(fields)
    query = sql.SQL("INSERT INTO sites ({}) VALUES ({}) RETURNING " + SITE_COLUMNS).format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(map(sql.Placeholder, names)),
    )
    async with conn.cursor(row_factory=class_row(SitePublic)) as cur:
        await cur.execute(query, fields)
        row = await cur.fetchone()
    assert row is not None
    return row


async def update_site(conn: Conn, site: str, changes: dict[str, Any]) -> SitePublic | None:
    """Change a site's fields; None if unknown."""
    query = sql.SQL("UPDATE sites SET {} WHERE site = %(site_)s RETURNING " + SITE_COLUMNS).format(
        _set(changes)
    )
    async with conn.cursor(row_factory=class_row(SitePublic)) as cur:
        await cur.execute(query, {**changes, "site_": site})
        return await cur.fetchone()


_LINE = "SELECT l.id FROM lines l JOIN sites s ON s.id = l.site_id WHERE s.site = %(site_)s "


async def create_line(conn: Conn, site: str, line: str, name: str | None) -> LineRecordPublic:
    """Insert a line of a known site; UniqueViolation if the site has it already."""
    cur = await conn.execute(
        "INSERT INTO lines (site_id, line, name) SELECT id, %s, %s FROM sites WHERE site = %s "
        "RETURNING name, active",
        (line, name, site),
    )
    row = await cur.fetchone()
    assert row is not None  # the route checked the site
    return LineRecordPublic(site=site, line=line, name=row[0], active=row[1])


async def update_line(
    conn: Conn, site: str, line: str, changes: dict[str, Any]
) -> LineRecordPublic | None:
    """Change a line's fields; None if unknown."""
    query = sql.SQL(
        "UPDATE lines SET {} WHERE id = (" + _LINE + "AND l.line = %(line_)s) "
        "RETURNING name, active"
    ).format(_set(changes))
    cur = await conn.execute(query, {**changes, "site_": site, "line_": line})
    row = await cur.fetchone()
    if row is None:
        return None
    return LineRecordPublic(site=site, line=line, name=row[0], active=row[1])


_MACHINE_COLUMNS = "name, kind, rated_power_w, ideal_cycle_s, active"


async def create_machine(
    conn: Conn, site: str, line: str, fields: dict[str, Any]
) -> MachineRecordPublic | None:
    """Insert a machine on a line; None if the line is unknown, UniqueViolation if taken."""
    names = list(fields)
    query = sql.SQL(
        "INSERT INTO machines (line_id, {}) SELECT l.id, {} FROM lines l "
        "JOIN sites s ON s.id = l.site_id WHERE s.site = %(site_)s AND l.line = %(line_)s "
        "RETURNING machine, " + _MACHINE_COLUMNS
    ).format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(map(sql.Placeholder, names)),
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {**fields, "site_": site, "line_": line})
        row = await cur.fetchone()
    return None if row is None else MachineRecordPublic(site=site, line=line, **row)


_MACHINE = (
    "SELECT m.id FROM machines m JOIN lines l ON l.id = m.line_id JOIN sites s "
    "ON s.id = l.site_id WHERE s.site = %(site_)s AND l.line = %(line_)s "
    "AND m.machine = %(machine_)s"
)


async def update_machine(
    conn: Conn, site: str, line: str, machine: str, changes: dict[str, Any]
) -> MachineRecordPublic | None:
    """Change a machine's fields; None if unknown."""
    query = sql.SQL(
        "UPDATE machines SET {} WHERE id = ("
        + _MACHINE
        + ") RETURNING machine, "
        + _MACHINE_COLUMNS
    ).format(_set(changes))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, {**changes, "site_": site, "line_": line, "machine_": machine})
        row = await cur.fetchone()
    return None if row is None else MachineRecordPublic(site=site, line=line, **row)


async def create_sensor(
    conn: Conn, site: str, line: str, machine: str, metric: str, unit: str | None
) -> SensorPublic | None:
    """Insert a sensor of a machine; None if the machine is unknown, UniqueViolation if taken."""
    cur = await conn.execute(
        "INSERT INTO sensors (machine_id, metric, unit) SELECT id, %(metric)s, %(unit)s "
        "FROM (" + _MACHINE + ") AS m RETURNING unit, active",
        {"metric": metric, "unit": unit, "site_": site, "line_": line, "machine_": machine},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return SensorPublic(
        site=site, line=line, machine=machine, metric=metric, unit=row[0], active=row[1]
    )


async def update_sensor(
    conn: Conn, site: str, line: str, machine: str, metric: str, changes: dict[str, Any]
) -> SensorPublic | None:
    """Change a sensor's fields; None if unknown."""
    query = sql.SQL(
        "UPDATE sensors SET {} WHERE machine_id = (" + _MACHINE + ") AND metric = %(metric_)s "
        "RETURNING unit, active"
    ).format(_set(changes))
    params = {**changes, "site_": site, "line_": line, "machine_": machine, "metric_": metric}
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        return None
    return SensorPublic(
        site=site, line=line, machine=machine, metric=metric, unit=row[0], active=row[1]
    )


# ------------------------------------------------------------------ edge credentials

_CREDENTIAL_COLUMNS = "site, edge_id, username, created_at, revoked_at"
ENABLED_EDGES = (
    "SELECT site, edge_id, username, password_hash FROM edge_credentials "
    "WHERE revoked_at IS NULL ORDER BY username"
)


async def create_edge_credential(
    conn: Conn, site: str, edge_id: str, username: str, password_hash: str
) -> EdgeCredentialPublic:
    """Store a new edge's login; UniqueViolation if the site has that edge (or the user) already."""
    async with conn.cursor(row_factory=class_row(EdgeCredentialPublic)) as cur:
        await cur.execute(
            "INSERT INTO edge_credentials (site, edge_id, username, password_hash) "
            f"VALUES (%s, %s, %s, %s) RETURNING {_CREDENTIAL_COLUMNS}",
            (site, edge_id, username, password_hash),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def revoke_edge_credential(
    conn: Conn, site: str, edge_id: str
) -> EdgeCredentialPublic | None:
    """Revoke an edge's login (the first revocation's time stays); None if unknown."""
    async with conn.cursor(row_factory=class_row(EdgeCredentialPublic)) as cur:
        await cur.execute(
            "UPDATE edge_credentials SET revoked_at = coalesce(revoked_at, now()) "
            f"WHERE site = %s AND edge_id = %s RETURNING {_CREDENTIAL_COLUMNS}",
            (site, edge_id),
        )
        return await cur.fetchone()


async def enabled_edges(conn: Conn) -> list[tuple[str, str, str, str]]:
    """(site, edge_id, username, password hash) of every edge not revoked."""
    cur = await conn.execute(ENABLED_EDGES)
    return [(r[0], r[1], r[2], r[3]) for r in await cur.fetchall()]

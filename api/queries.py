"""Every statement the API runs: registry, readings, roll-ups and analytics results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from api.models import (
    AlertPublic,
    Bucket,
    HealthReadingPublic,
    LinePublic,
    MachineHealthPublic,
    MachinePublic,
    RulPublic,
    SiteDetailPublic,
    SitePublic,
    TelemetryPointPublic,
)

Conn = AsyncConnection[Any]


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
    async with conn.cursor(row_factory=class_row(SitePublic)) as cur:
        await cur.execute(
            "SELECT site, name, timezone FROM sites "
            "WHERE %(only)s::text IS NULL OR site = %(only)s ORDER BY site",
            {"only": only},
        )
        return await cur.fetchall()


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


_TELEMETRY = {
    "raw": "SELECT ts, line, machine, metric, unit, value, NULL::float8 AS min, "
    "NULL::float8 AS max, NULL::bigint AS n FROM telemetry",
    "1m": "SELECT ts, line, machine, metric, unit, avg AS value, min, max, n FROM telemetry_1m",
    "1h": "SELECT ts, line, machine, metric, unit, avg AS value, min, max, n FROM telemetry_1h",
}


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
    async with conn.cursor(row_factory=class_row(TelemetryPointPublic)) as cur:
        await cur.execute(
            f"""
            {_TELEMETRY[bucket]}
            WHERE site = %(site)s AND ts >= %(start)s AND ts < %(end)s
              AND (%(line)s::text IS NULL OR line = %(line)s)
              AND (%(machine)s::text IS NULL OR machine = %(machine)s)
              AND (%(metric)s::text IS NULL OR metric = %(metric)s)
            ORDER BY ts, line, machine, metric
            LIMIT %(limit)s
            """,
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
        return await cur.fetchall()


_ALERT_COLUMNS = (
    "alert_id, site, line, machine, opened_at, closed_at, severity, min_health, peak_at, "
    "peak_score, reasons, acknowledged_at, acknowledged_by, ack_comment"
)


async def alerts(conn: Conn, site: str, is_open: bool | None) -> list[AlertPublic]:
    """A site's alerts, newest first; only open or only closed ones when asked."""
    async with conn.cursor(row_factory=class_row(AlertPublic)) as cur:
        await cur.execute(
            f"""
            SELECT {_ALERT_COLUMNS} FROM maintenance_alerts
            WHERE site = %(site)s
              AND (%(open)s::boolean IS NULL OR (closed_at IS NULL) = %(open)s)
            ORDER BY opened_at DESC, alert_id DESC
            """,
            {"site": site, "open": is_open},
        )
        return await cur.fetchall()


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

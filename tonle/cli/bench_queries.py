"""``tonle bench queries``: the heaviest dashboard and API queries, raw and from the roll-ups.

A fresh database is filled with a factory's history through the real ingest path
(:mod:`tonle.cli.bench_load`: edges → broker → ``tonle ingest`` → PostgreSQL), the
roll-ups are brought up to date, the tables analysed and (optionally) the energy
analytics run. Each question is then asked the way the code asks it — the dashboards'
panel SQL expanded as Grafana expands it, the API's statements — once from the
roll-ups and once from raw readings, and timed over repeated runs after a warm-up.
Last, the disk the readings take: table, indexes and roll-ups per stored reading, and
TimescaleDB's compressed size where the extension is present.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sized
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from tonle.cli.bench_api import Progress, fresh_database, percentile_ms
from tonle.cli.bench_load import SITE, START, Factory, load_through_mqtt
from tonle.db.maintenance import refresh_all_rollups
from tonle.db.migrate import migrate, storage_mode

# ThingsBoard's published single-node PostgreSQL figures (see docs/performance.md).
THINGSBOARD_RECOMMENDED_POINTS_S = 3_000
THINGSBOARD_POINTS_S = 3_333
THINGSBOARD_DISK_BYTES_DAY = 4.8e9
THINGSBOARD_BYTES_PER_POINT = THINGSBOARD_DISK_BYTES_DAY / (THINGSBOARD_POINTS_S * 86_400)


@dataclass(frozen=True)
class QueryBenchSettings:
    """The factory loaded and how the queries are timed."""

    database: str = "tonle_bench_queries"
    factory: Factory = field(default_factory=Factory)
    edges: int = 2
    ingesters: int = 2
    repetitions: int = 20
    # A query is repeated until ``repetitions`` or this much time, but at least 3 times.
    budget_s: float = 60.0
    analytics: bool = True


@dataclass(frozen=True)
class Timed:
    """One question asked one way, timed."""

    question: str
    source: str
    rows: int
    runs: int
    p50_ms: float
    p95_ms: float


Call = Callable[[], int]  # runs the query once, returns the rows it got


def _time(call: Call, settings: QueryBenchSettings) -> tuple[int, list[float]]:
    rows = call()  # warm-up
    durations: list[float] = []
    started = time.perf_counter()
    while len(durations) < settings.repetitions and (
        len(durations) < 3 or time.perf_counter() - started < settings.budget_s
    ):
        t0 = time.perf_counter()
        rows = call()
        durations.append(time.perf_counter() - t0)
    return rows, durations


# --------------------------------------------------------------------- questions


_TRUNC = {
    "1m": "date_trunc('minute', ts)",
    "1h": "date_trunc('hour', ts)",
    "1d": "date_trunc('day', ts, 'UTC')",
}


def _raw_telemetry(grain: str) -> str:
    """The API's telemetry roll-up question asked of raw readings (the ``telemetry`` view)."""
    trunc = _TRUNC[grain]
    return (
        f"SELECT {trunc} AS ts, line, machine, metric, unit, avg(value) AS value, "
        "min(value) AS min, max(value) AS max, count(*) AS n FROM telemetry "
        "WHERE site = %(site)s AND ts >= %(start)s AND ts < %(end)s "
        "AND (%(line)s::text IS NULL OR line = %(line)s) "
        "AND (%(machine)s::text IS NULL OR machine = %(machine)s) "
        "AND (%(metric)s::text IS NULL OR metric = %(metric)s) "
        "GROUP BY 1, line, machine, metric, unit ORDER BY ts, line, machine, metric "
        "LIMIT %(limit)s"
    )


def _panel(
    sql: str,
    span: tuple[datetime, datetime],
    interval: timedelta,
    names: tuple[list[str], list[str]],
    timescale: bool,
) -> str:
    """A dashboard panel's SQL as Grafana sends it, with every line and machine selected."""
    from dashboards.macros import QueryContext, Variable, expand

    lines, machines = names
    return expand(
        sql,
        QueryContext(
            time_from=span[0],
            time_to=span[1],
            interval=interval,
            variables={
                "site": Variable.single(SITE),
                "line": Variable.many(lines),
                "machine": Variable.many(machines),
            },
            timescaledb=timescale,
        ),
    )


def time_queries(
    url: str, settings: QueryBenchSettings, analytics_ran: bool, progress: Progress
) -> list[Timed]:
    """Every question, from the roll-ups and from raw readings, timed."""
    from api import queries as api_queries
    from api.queries import telemetry_sql
    from dashboards import queries as panels

    factory = settings.factory
    lines = sorted({factory.machine(i)[0] for i in range(factory.machines)})
    machines = [factory.machine(i)[1] for i in range(factory.machines)]
    names = (lines, machines)
    start, end = START, factory.end
    last_day = max(start, end - timedelta(days=1))
    results: list[Timed] = []

    with psycopg.connect(url, autocommit=True) as conn:
        timescale = storage_mode(conn) == "timescaledb"

        def rows_of(statement: str, params: dict[str, Any] | None = None) -> Call:
            def call() -> int:
                return len(conn.execute(statement.encode(), params).fetchall())

            return call

        def ask(question: str, source: str, call: Call) -> None:
            progress(f"  {question} — {source}")
            rows, durations = _time(call, settings)
            results.append(
                Timed(question, source, rows, len(durations), percentile_ms(durations, 50),
                      percentile_ms(durations, 95))
            )  # fmt: skip

        one = {"site": SITE, "start": start, "end": end, "line": None, "machine": machines[0],
               "metric": "active_power", "limit": 100_000}  # fmt: skip
        q = "API telemetry: hourly power of 1 machine, whole range"
        ask(q, "readings_1h", rows_of(telemetry_sql("1h"), one))
        ask(q, "raw readings", rows_of(_raw_telemetry("1h"), one))
        q = "API telemetry: daily power of 1 machine, whole range"
        ask(q, "readings_1h", rows_of(telemetry_sql("1d"), one))
        ask(q, "raw readings", rows_of(_raw_telemetry("1d"), one))
        day = one | {"start": last_day, "machine": None}
        q = "API telemetry: 1-minute power of every machine, last day"
        ask(q, "readings_1m", rows_of(telemetry_sql("1m"), day))
        ask(q, "raw readings", rows_of(_raw_telemetry("1m"), day))

        # The panel reads the 1-minute roll-up under a 1 h interval and the hourly one from
        # 1 h up; each variant below makes both of its branches read one source instead.
        live = panels.LIVE_POWER.sql
        raw_live = live.replace("avg FROM telemetry_1m", "value AS avg FROM telemetry").replace(
            "avg FROM telemetry_1h", "value AS avg FROM telemetry"
        )
        minute_live = live.replace("avg FROM telemetry_1h", "avg FROM telemetry_1m")
        minute = timedelta(minutes=1)
        q = "Dashboard live power (1 min), every machine, last day"
        ask(q, "readings_1m", rows_of(_panel(live, (last_day, end), minute, names, timescale)))
        ask(q, "raw readings", rows_of(_panel(raw_live, (last_day, end), minute, names, timescale)))
        hour = timedelta(hours=1)
        q = "Dashboard live power (1 h), every machine, whole range"
        ask(q, "readings_1h", rows_of(_panel(live, (start, end), hour, names, timescale)))
        ask(q, "readings_1m", rows_of(_panel(minute_live, (start, end), hour, names, timescale)))
        ask(q, "raw readings", rows_of(_panel(raw_live, (start, end), hour, names, timescale)))

        # The API's statements are coroutines on an async connection, kept open throughout.
        loop = asyncio.new_event_loop()
        aconn = loop.run_until_complete(psycopg.AsyncConnection.connect(url, autocommit=True))
        try:

            def run(coroutine: Callable[[], Coroutine[Any, Any, Sized]]) -> Call:
                return lambda: len(loop.run_until_complete(coroutine()))

            # As the API asks it: raw readings up to 7 days, the hourly roll-up beyond, with
            # the typical interval measured on the whole range (raw) or the last day (1 h).
            q = "API completeness, every sensor, whole range"
            ask(q, "readings_1h", run(lambda: api_queries.completeness(
                aconn, SITE, "1h", start, end, last_day, None)))  # fmt: skip
            ask(q, "raw readings", run(lambda: api_queries.completeness(
                aconn, SITE, "raw", start, end, start, None)))  # fmt: skip
            if analytics_ran:
                q = "API energy: site by day, whole range"
                ask(q, "energy_intervals", run(lambda: api_queries.energy(
                    aconn, SITE, "site", "1d", start, end)))  # fmt: skip
                q = "API energy: every machine by hour, whole range"
                ask(q, "energy_intervals", run(lambda: api_queries.energy(
                    aconn, SITE, "machine", "1h", start, end)))  # fmt: skip
                ask("API portfolio", "analytics results",
                    run(lambda: api_queries.portfolio(aconn, None, start, end)))  # fmt: skip
                kwh = _panel(panels.KWH_BY_MACHINE.sql, (start, end), hour, names, timescale)
                q = "Dashboard kWh by machine (1 h), whole range"
                ask(q, "energy_intervals", rows_of(kwh))
        finally:
            loop.run_until_complete(aconn.close())
            loop.close()
    return results


# -------------------------------------------------------------------------- disk

_SIZES = """
SELECT pg_total_relation_size('readings'), pg_relation_size('readings'),
       pg_indexes_size('readings'), pg_total_relation_size('readings_1m'),
       pg_total_relation_size('readings_1h')
"""


def disk_figures(url: str, readings: int, readings_per_day: float) -> dict[str, Any]:
    """Bytes per stored reading: raw table and indexes, with the roll-ups, compressed."""
    with psycopg.connect(url, autocommit=True) as conn:
        timescale = storage_mode(conn) == "timescaledb"
        if timescale:
            # Hypertable and continuous aggregates: their chunks hold the bytes.
            row = conn.execute(
                "SELECT (SELECT total_bytes FROM hypertable_detailed_size('readings')), "
                "(SELECT table_bytes FROM hypertable_detailed_size('readings')), "
                "(SELECT index_bytes FROM hypertable_detailed_size('readings')), "
                "(SELECT sum(total_bytes) FROM timescaledb_information.continuous_aggregates c, "
                " hypertable_detailed_size(format('%I.%I', c.materialization_hypertable_schema,"
                " c.materialization_hypertable_name)::regclass)), 0"
            ).fetchone()
        else:
            row = conn.execute(_SIZES).fetchone()
        assert row is not None
        total, table, indexes, rollup_1m, rollup_1h = (int(str(v or 0)) for v in row)
        compressed: int | None = None
        if timescale:
            conn.execute("SELECT compress_chunk(c, if_not_compressed => true) "
                         "FROM show_chunks('readings') AS c")  # fmt: skip
            got = conn.execute(
                "SELECT sum(after_compression_total_bytes) "
                "FROM hypertable_compression_stats('readings')"
            ).fetchone()
            compressed = int(str(got[0])) if got and got[0] is not None else None
    per = max(readings, 1)
    figures: dict[str, Any] = {
        "readings_table_bytes": table,
        "readings_index_bytes": indexes,
        "readings_total_bytes": total,
        "rollup_1m_bytes": rollup_1m,
        "rollup_1h_bytes": rollup_1h,
        "bytes_per_reading_raw": round(total / per, 1),
        "bytes_per_reading_with_rollups": round((total + rollup_1m + rollup_1h) / per, 1),
        "bytes_per_reading_compressed": round(compressed / per, 1) if compressed else None,
        "timescaledb": timescale,
    }
    figures["disk_mb_per_day"] = round(
        figures["bytes_per_reading_with_rollups"] * readings_per_day / 1e6, 1
    )
    return figures


# --------------------------------------------------------------------------- run


def run_queries_bench(
    server_url: str,
    mqtt_url: str,
    mqtt5: bool,
    settings: QueryBenchSettings,
    logs: Path,
    progress: Progress,
) -> tuple[dict[str, Any], list[Timed]]:
    """Create and fill the bench database through MQTT, time the queries; the figures.

    Args:
        server_url: a URL of the PostgreSQL server whose role may create databases.
        mqtt_url: the broker the simulated edges and the ingesters use.
        mqtt5: whether the broker speaks MQTT 5 (else one ingester over 3.1.1).
        settings: the factory's size and the timing.
        logs: where the ingesters' logs go.
        progress: called with a line of progress now and then.
    """
    factory = settings.factory
    url = fresh_database(server_url, settings.database)
    migrate(url, create_database=False)
    progress(f"loading {factory.days:g} days of {factory.machines} machines × 4 metrics every "
             f"{factory.interval_s:g} s ({factory.readings:,} readings) through MQTT "
             f"into {settings.database}")  # fmt: skip
    figures: dict[str, Any] = {
        "machines": factory.machines,
        "days": factory.days,
        "interval_s": factory.interval_s,
        "readings_per_message": factory.steps * 4,
    }
    figures |= load_through_mqtt(
        url, mqtt_url, mqtt5, factory, edges=settings.edges, ingesters=settings.ingesters,
        logs=logs, progress=progress,
    )  # fmt: skip

    progress("bringing the roll-ups up to date and analysing the tables")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        figures["rollup_hours_left"] = refresh_all_rollups(conn)
        figures["rollup_seconds"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        figures["vacuum_analyze_seconds"] = round(time.perf_counter() - started, 1)

    if settings.analytics:
        from analytics.runner import run_once

        progress("running the energy and maintenance analytics for the site")
        started = time.perf_counter()
        run_once(url, [SITE], START, factory.end, None, progress)
        figures["analytics_seconds"] = round(time.perf_counter() - started, 1)

    readings_per_day = factory.machines * 4 * 86_400 / factory.interval_s
    figures |= disk_figures(url, figures["readings_loaded"], readings_per_day)
    figures["thingsboard_recommended_points_per_s"] = THINGSBOARD_RECOMMENDED_POINTS_S
    figures["thingsboard_bytes_per_point"] = round(THINGSBOARD_BYTES_PER_POINT, 2)

    progress(f"timing the queries ({settings.repetitions} runs each after a warm-up, "
             f"at most {settings.budget_s:g} s per query)")  # fmt: skip
    timings = time_queries(url, settings, settings.analytics, progress)
    for t in timings:
        key = _key(t.question, t.source)
        figures[f"{key}_p50_ms"] = t.p50_ms
        figures[f"{key}_p95_ms"] = t.p95_ms
    return figures, timings


def _key(question: str, source: str) -> str:
    """A JSON key for a question and its source."""
    text = f"{question.split(',')[0]} {source.split(' (')[0]}".lower()
    return "_".join("".join(c if c.isalnum() else " " for c in text).split())

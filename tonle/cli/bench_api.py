"""``tonle bench api``: API latency on 30 days of a 40-machine factory, beside the same SQL.

A fresh database is filled with generated readings (a daily shift pattern with noise)
through the ingester's batched COPY path, the roll-ups are refreshed and the energy
analytics run, so the API reads what a real site would hold. The real app then runs
in-process (FastAPI's TestClient, a staff token) and each request is timed end to end:
routing, token check, the query and JSON encoding. The telemetry query is also run
directly with psycopg, to show what the HTTP layer adds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from analytics.runner import run_once
from api.app import create_app
from api.queries import telemetry_sql
from api.tokens import create_token
from ingest.store import Batch, Store
from tonle.db.maintenance import refresh_all_rollups
from tonle.db.migrate import migrate
from tonle.settings import Settings

Progress = Callable[[str], None]

SITE = "bench-factory"
# Local midnight, Monday 5 January 2026 in Phnom Penh (UTC+7).
START = datetime(2026, 1, 4, 17, 0, tzinfo=UTC)
BATCH_ROWS = 50_000
# metric: unit
METRICS = {"active_power": "W", "energy": "kWh", "current": "A", "vibration_rms": "mm/s"}


@dataclass(frozen=True)
class ApiBenchSettings:
    """The factory loaded and the requests timed."""

    database: str = "tonle_bench_api"
    machines: int = 40
    lines: int = 4
    days: int = 30
    interval_s: float = 60.0
    requests: int = 200
    energy_requests: int = 50
    # Each machine-level 1 h request returns 28,800 intervals and takes seconds.
    machine_energy_requests: int = 10
    seed: int = 1


def machine_ids(settings: ApiBenchSettings) -> list[tuple[str, str]]:
    """(line, machine) of every machine, spread evenly over the lines."""
    return [(f"line-{i % settings.lines + 1}", f"m{i + 1:02d}") for i in range(settings.machines)]


def machine_readings(
    rng: np.random.Generator, offsets_s: np.ndarray, interval_s: float
) -> dict[str, np.ndarray]:
    """One machine's readings: a 07:00-16:00 local shift (Mon-Sat) with noise and idle draw."""
    rated_w = rng.uniform(2_000.0, 15_000.0)
    local_h = (offsets_s / 3600.0) % 24.0
    weekday = (offsets_s // 86_400) % 7  # day 0 is a Monday
    running = (local_h >= 7.0) & (local_h < 16.0) & (weekday < 6)
    load = np.where(running, rng.uniform(0.6, 0.95, offsets_s.size), 0.08)
    power_w = np.maximum(rated_w * load * (1.0 + rng.normal(0.0, 0.03, offsets_s.size)), 0.0)
    return {
        "active_power": power_w,
        "energy": np.cumsum(power_w) * interval_s / 3.6e6,
        "current": power_w / (400.0 * 1.732 * 0.85),
        "vibration_rms": np.where(running, 2.5, 0.3) + np.abs(rng.normal(0, 0.2, offsets_s.size)),
    }


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server at ``server_url``; its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(server_url, dbname=name)


def drop_database(server_url: str, url: str) -> None:
    """Drop the database ``url`` names."""
    name = str(conninfo_to_dict(url)["dbname"])
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def load_factory(url: str, settings: ApiBenchSettings, progress: Progress) -> dict[str, Any]:
    """Register the factory and write its readings through Store's COPY path."""
    store = Store(url)
    store.connect()
    machines = machine_ids(settings)
    store.register(
        [
            ((SITE, line, m, metric), unit)
            for line, m in machines
            for metric, unit in METRICS.items()
        ],
        create=True,
    )
    samples = int(settings.days * 86_400 / settings.interval_s)
    offsets_s = np.arange(samples) * settings.interval_s
    local_offset_s = 7 * 3600.0  # Phnom Penh: the shift pattern is in local time
    stamps = [START + timedelta(seconds=float(s)) for s in offsets_s]
    rng = np.random.default_rng(settings.seed)
    readings = 0
    started = time.perf_counter()
    try:
        for index, (line, machine) in enumerate(machines, start=1):
            values = machine_readings(rng, offsets_s + local_offset_s, settings.interval_s)
            rows: list[tuple[datetime, int, float]] = []
            for metric, series in values.items():
                sensor = store.known((SITE, line, machine, metric))
                assert sensor is not None  # registered above
                rows.extend(zip(stamps, [sensor.id] * samples, series.tolist(), strict=True))
            for first in range(0, len(rows), BATCH_ROWS):
                readings += store.write(
                    Batch(rows=rows[first : first + BATCH_ROWS])
                ).readings_stored
            if index % 5 == 0 or index == len(machines):
                rate = readings / (time.perf_counter() - started)
                progress(f"loaded {index}/{len(machines)} machines: {readings:,} readings "
                         f"({rate:,.0f}/s)")  # fmt: skip
    finally:
        store.close()
    return {"readings_loaded": readings, "load_seconds": round(time.perf_counter() - started, 1)}


def percentile_ms(samples_s: list[float], q: float) -> float:
    """The ``q``-th percentile of durations in seconds, in milliseconds."""
    return round(float(np.percentile(np.array(samples_s) * 1000.0, q)), 2)


def _timed(call: Callable[[], object], count: int) -> list[float]:
    durations: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return durations


def time_requests(url: str, settings: ApiBenchSettings, progress: Progress) -> dict[str, Any]:
    """p50/p95 of the telemetry and energy routes in-process, and of the telemetry SQL."""
    from fastapi.testclient import TestClient

    _, token = create_token(url, "staff", None, "bench-api")
    headers = {"Authorization": f"Bearer {token}"}
    end = START + timedelta(days=settings.days)
    window = {"start": START.isoformat(), "end": end.isoformat()}
    machines = [m for _, m in machine_ids(settings)]
    rng = np.random.default_rng(settings.seed)
    picks = [str(m) for m in rng.choice(machines, size=settings.requests)]
    points: list[int] = []

    app = create_app(Settings().model_copy(update={"database_url": url}))
    with TestClient(app) as client:

        def get(path: str, params: dict[str, str]) -> Any:
            response = client.get(path, params=params, headers=headers)
            response.raise_for_status()
            return response.json()

        def telemetry(machine: str) -> None:
            params = window | {"machine": machine, "metric": "active_power", "bucket": "1h"}
            points.append(len(get(f"/sites/{SITE}/telemetry", params)["points"]))

        telemetry(machines[0])  # warm-up: opens the pool
        points.clear()
        progress(
            f"timing {settings.requests} telemetry requests ({settings.days} days, 1 h buckets)"
        )
        queue = iter(picks)
        telemetry_s = _timed(lambda: telemetry(next(queue)), settings.requests)

        site_daily = window | {"level": "site", "grain": "1d"}
        machine_hourly = window | {"level": "machine", "grain": "1h"}
        site_days = len(get(f"/sites/{SITE}/energy", site_daily)["intervals"])
        machine_hours = len(get(f"/sites/{SITE}/energy", machine_hourly)["intervals"])
        progress(f"timing {settings.energy_requests} site energy summaries (site, 1 d) and "
                 f"{settings.machine_energy_requests} by machine (1 h)")  # fmt: skip
        energy_s = _timed(
            lambda: get(f"/sites/{SITE}/energy", site_daily), settings.energy_requests
        )
        machine_s = _timed(
            lambda: get(f"/sites/{SITE}/energy", machine_hourly), settings.machine_energy_requests
        )

    progress(f"timing {settings.requests} telemetry queries directly in SQL")
    with psycopg.connect(url, autocommit=True) as conn:

        def query() -> None:
            params = {"site": SITE, "start": START, "end": end, "line": None, "limit": 10_000,
                      "machine": next(queue), "metric": "active_power"}  # fmt: skip
            conn.execute(telemetry_sql("1h"), params).fetchall()

        queue = iter([machines[0], *picks])
        query()  # warm-up, as for the API
        sql_s = _timed(query, settings.requests)

    return {
        "telemetry_p50_ms": percentile_ms(telemetry_s, 50),
        "telemetry_p95_ms": percentile_ms(telemetry_s, 95),
        "telemetry_points_per_request": round(sum(points) / len(points)),
        "energy_summary_p50_ms": percentile_ms(energy_s, 50),
        "energy_summary_p95_ms": percentile_ms(energy_s, 95),
        "energy_summary_intervals": site_days,
        "energy_machine_1h_p50_ms": percentile_ms(machine_s, 50),
        "energy_machine_1h_p95_ms": percentile_ms(machine_s, 95),
        "energy_machine_1h_intervals": machine_hours,
        "sql_p50_ms": percentile_ms(sql_s, 50),
        "sql_p95_ms": percentile_ms(sql_s, 95),
    }


def run_api_bench(
    server_url: str, settings: ApiBenchSettings, progress: Progress
) -> dict[str, Any]:
    """Create, fill and analyse the bench database, then time the API; the figures.

    Args:
        server_url: a URL of the PostgreSQL server whose role may create databases.
        settings: the factory's size and the number of requests.
        progress: called with a line of progress now and then.
    """
    url = fresh_database(server_url, settings.database)
    migrate(url, create_database=False)
    machines, metrics = settings.machines, len(METRICS)
    progress(f"loading {settings.days} days of {machines} machines × {metrics} metrics "
             f"every {settings.interval_s:g} s into {settings.database}")  # fmt: skip
    figures: dict[str, Any] = {
        "machines": machines,
        "days": settings.days,
        "interval_s": settings.interval_s,
    }
    figures |= load_factory(url, settings, progress)

    progress("refreshing the 1-minute and 1-hour roll-ups")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        hours = refresh_all_rollups(conn)
    figures["rollup_hours"] = hours
    figures["rollup_seconds"] = round(time.perf_counter() - started, 1)

    progress("running the energy and maintenance analytics for the site")
    started = time.perf_counter()
    end = START + timedelta(days=settings.days)
    run_once(url, [SITE], START, end, None, progress)
    figures["analytics_seconds"] = round(time.perf_counter() - started, 1)

    figures |= time_requests(url, settings, progress)
    return figures

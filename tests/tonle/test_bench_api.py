"""The API benchmark end to end on a tiny factory (the full run is ``tonle bench api``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tonle.cli.bench_api import ApiBenchSettings, run_api_bench

pytestmark = pytest.mark.db

TIMINGS = (
    "telemetry_p50_ms",
    "telemetry_p95_ms",
    "energy_summary_p50_ms",
    "energy_summary_p95_ms",
    "energy_machine_1h_p95_ms",
    "sql_p50_ms",
    "sql_p95_ms",
)


@pytest.fixture
def bench_database(pg_admin_url: str) -> Iterator[str]:
    """A database name of this test's own, dropped afterwards."""
    name = f"tonle_t_bench_api_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_a_tiny_bench_times_the_api_and_the_sql(pg_admin_url: str, bench_database: str) -> None:
    messages: list[str] = []
    settings = ApiBenchSettings(
        database=bench_database,
        machines=3,
        lines=2,
        days=2,
        requests=20,
        energy_requests=5,
        machine_energy_requests=3,
    )
    figures = run_api_bench(pg_admin_url, settings, messages.append)
    json.dumps(figures)  # JSON-ready
    # 3 machines × 4 metrics × 2 days of one reading a minute.
    assert figures["readings_loaded"] == 3 * 4 * 2 * 1440
    assert figures["rollup_hours"] == 48
    assert figures["telemetry_points_per_request"] == 48  # one point per hour
    assert figures["energy_machine_1h_intervals"] > 0
    assert figures["energy_summary_intervals"] > 0
    for key in TIMINGS:
        assert figures[key] > 0, key
    assert figures["telemetry_p50_ms"] <= figures["telemetry_p95_ms"]
    assert messages[0].startswith("loading 2 days of 3 machines")

"""The query benchmark end to end on a tiny factory (the full run is ``tonle bench queries``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from tonle.cli import app
from tonle.cli.bench_load import Factory
from tonle.cli.bench_queries import QueryBenchSettings, run_queries_bench
from tonle.local_services import LocalBroker

pytestmark = [pytest.mark.db, pytest.mark.mqtt]

# 3 machines × 4 metrics × 6 hours every 10 s: 2,160 instants per sensor.
TINY = Factory(machines=3, lines=2, days=0.25, interval_s=10.0, per_message=40)


@pytest.fixture
def bench_database(pg_admin_url: str) -> Iterator[str]:
    """A database name of this test's own, dropped afterwards."""
    name = f"tonle_t_bench_queries_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_a_tiny_load_through_mqtt_is_stored_exactly_and_every_query_is_timed(
    pg_admin_url: str, mqtt_broker: LocalBroker | str, bench_database: str, tmp_path: Path
) -> None:
    mqtt_url = mqtt_broker if isinstance(mqtt_broker, str) else mqtt_broker.url
    mqtt5 = isinstance(mqtt_broker, str) or mqtt_broker.mqtt5
    messages: list[str] = []
    settings = QueryBenchSettings(
        database=bench_database, factory=TINY, edges=2, ingesters=2, repetitions=3, budget_s=5.0
    )
    figures, timings = run_queries_bench(
        pg_admin_url, mqtt_url, mqtt5, settings, tmp_path / "logs", messages.append
    )
    json.dumps(figures)  # JSON-ready
    assert figures["readings_loaded"] == 3 * 4 * 2160
    assert figures["messages_published"] == 3 * 2160 // 10  # 10 instants × 4 metrics each
    assert figures["load_readings_per_s"] > 0
    assert messages[0].startswith("loading 0.25 days of 3 machines")

    rows = {(t.question, t.source): t.rows for t in timings}
    hourly = "API telemetry: hourly power of 1 machine, whole range"
    assert rows[(hourly, "readings_1h")] == rows[(hourly, "raw readings")] == 6
    daily = "API telemetry: daily power of 1 machine, whole range"
    assert rows[(daily, "readings_1h")] == rows[(daily, "raw readings")] == 1
    minute = "API telemetry: 1-minute power of every machine, last day"
    assert rows[(minute, "readings_1m")] == rows[(minute, "raw readings")] == 3 * 360
    live = "Dashboard live power (1 min), every machine, last day"
    assert rows[(live, "readings_1m")] == rows[(live, "raw readings")] == 3 * 360
    live_h = "Dashboard live power (1 h), every machine, whole range"
    assert {rows[(live_h, s)] for s in ("readings_1h", "readings_1m",
                                        "raw readings")} == {3 * 6}  # fmt: skip
    complete = "API completeness, every sensor, whole range"
    assert rows[(complete, "readings_1h")] == rows[(complete, "raw readings")] == 12
    assert rows[("API energy: every machine by hour, whole range", "energy_intervals")] > 0
    for t in timings:
        assert t.runs == 3, t
        assert 0 < t.p50_ms <= t.p95_ms, t

    assert figures["timescaledb"] is False  # plain PostgreSQL here
    assert figures["bytes_per_reading_compressed"] is None
    assert 20 < figures["bytes_per_reading_raw"] < figures["bytes_per_reading_with_rollups"] < 1000
    assert figures["thingsboard_bytes_per_point"] == 16.67


def test_the_command_prints_a_table_then_one_json_line(
    pg_admin_url: str,
    mqtt_url: str,
    bench_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TONLE_DATABASE_URL", pg_admin_url)
    monkeypatch.setenv("TONLE_MQTT_URL", mqtt_url)
    result = CliRunner().invoke(
        app,
        ["bench", "queries", "--machines", "2", "--days", "0.1", "--repetitions", "3",
         "--no-analytics", "--database", bench_database, "--workdir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert "tonle bench queries" in result.stdout
    figures = json.loads(lines[-1])
    assert figures["readings_loaded"] == 2 * 4 * 864
    assert figures["api_telemetry_hourly_power_of_1_machine_readings_1h_p95_ms"] > 0
    assert "analytics_seconds" not in figures

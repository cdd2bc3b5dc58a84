"""``tonle bench ingest`` on the test services: short runs, sane figures, exact counts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ingest.bench import measure_ceiling
from ingest.bench_edges import Fleet
from tonle.contract import decode_payload

pytestmark = [pytest.mark.db]

_READINGS_OF_SITE = """
SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id
JOIN machines m ON m.id = s.machine_id JOIN lines l ON l.id = m.line_id
JOIN sites si ON si.id = l.site_id WHERE si.site = %s
"""


def _count(conn: psycopg.Connection[tuple[object, ...]], query: str, *args: object) -> int:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return int(str(row[0] or 0))


def test_fleet_messages_follow_the_contract_and_never_repeat_a_reading() -> None:
    fleet = Fleet("bsite", edges=2, machines=3, per_message=8, base_ms=1_767_225_600_000)
    seen = set()
    for edge in range(2):
        for seq in range(7):
            payload = decode_payload(fleet.payload(edge, seq))
            machine = fleet.machine_of(edge, seq)
            assert (payload.edge, payload.seq, len(payload.readings)) == (f"edge{edge}", seq, 8)
            assert fleet.topic(machine) == f"tonle/v1/bsite/bench/m{machine}/telemetry"
            seen.update((machine, r.metric, r.ts) for r in payload.readings)
    assert len(seen) == 2 * 7 * 8
    assert {key[0] for key, _ in fleet.sensor_keys()} == {"bsite"}
    assert len(fleet.sensor_keys()) == 2 * 3 * 4


def test_the_ceiling_stores_exactly_the_rows_it_counts(
    database_url: str, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    fleet = Fleet("bceiling", edges=1, machines=5, per_message=4, base_ms=1_767_225_600_000)
    result = measure_ceiling(database_url, fleet, seconds=1.0, progress=lambda _: None)
    assert result.window_readings == result.stored == result.published > 0
    assert result.window_readings % 10_000 == 0  # 20 sensors × 500 ms per batch
    assert result.readings_per_s == pytest.approx(result.window_readings / result.window_s)
    assert _count(conn, _READINGS_OF_SITE, "bceiling") == result.stored


@pytest.mark.mqtt
def test_the_command_measures_every_path_and_each_stored_what_it_claims(
    database_url: str,
    mqtt_url: str,
    conn: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    env = os.environ | {"TONLE_DATABASE_URL": database_url, "TONLE_MQTT_URL": mqtt_url}
    done = subprocess.run(
        [sys.executable, "-c", "from tonle.cli import main; main()", "bench", "ingest",
         "--seconds", "1", "--edges", "2", "--per-message", "100",
         "--workdir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert "best_readings_per_s" in done.stdout  # the table came first

    for key in ("readings_per_s", "readings_per_s_2proc", "naive_readings_per_s",
                "ceiling_readings_per_s", "latency_readings_per_s"):  # fmt: skip
        assert figures[key] > 0, key
    assert 0 < figures["p50_latency_s"] <= figures["p99_latency_s"] < 10
    assert figures["latency_messages"] > 0
    assert figures["cpu_s_per_100k"] > 0 and figures["cpu_s_per_100k_2proc"] > 0
    best = max(figures["readings_per_s"], figures["readings_per_s_2proc"])
    # the ratios come from the unrounded rates, the rates in the JSON are rounded
    ceiling = figures["ceiling_readings_per_s"]
    assert figures["x_naive"] == pytest.approx(best / figures["naive_readings_per_s"], rel=0.01)
    assert figures["of_ceiling"] == pytest.approx(best / ceiling, rel=0.01)
    for path in ("tonle1", "tonle2", "naive"):
        window = figures["window_readings"][path]
        # the rate is the window's rows over a window of at least --seconds
        assert 0 < figures[{"tonle1": "readings_per_s", "tonle2": "readings_per_s_2proc",
                            "naive": "naive_readings_per_s"}[path]] <= window  # fmt: skip
        assert window <= figures["stored"][path]

    # Every path stored exactly what it published, each under a site of its own.
    sites = {
        str(site): path
        for (site,) in conn.execute("SELECT site FROM sites WHERE site LIKE 'bench%'")
        for path in figures["stored"]
        if str(site).endswith(path)
    }
    assert sorted(sites.values()) == sorted(["ceiling", "tonle1", "tonle2", "latency", "naive"])
    for site, path in sites.items():
        stored = _count(conn, _READINGS_OF_SITE, site)
        assert stored == figures["stored"][path] == figures["published"][path], path
        if path in ("tonle1", "tonle2", "latency"):  # Tonle's ingester records each message
            messages = _count(conn, "SELECT sum(readings) FROM edge_messages WHERE site = %s", site)
            assert messages == stored, path
    assert _count(conn, "SELECT count(*) FROM dead_letters") == 0

    # Both ingesters of the shared subscription took a share, and together stored it all.
    shares = []
    for log in sorted((tmp_path / "logs").glob("*tonle2-ingest-*.log")):
        found = re.search(r"stopped: \d+ messages, (\d+) readings stored", log.read_text())
        assert found, log
        shares.append(int(found.group(1)))
    assert len(shares) == 2 and min(shares) > 0
    assert sum(shares) == figures["stored"]["tonle2"]

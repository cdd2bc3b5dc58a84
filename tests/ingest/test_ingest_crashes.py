"""`tonle ingest` killed, stopped and starved of its database mid-stream.

Nothing is lost, nothing is doubled.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.faults.processes import IngestProcess
from tests.mqtt_helpers import make_settings, payload, publish_all, running_ingester, wait_until
from tonle.db.migrate import migrate
from tonle.local_services import EmbeddedPostgres

pytestmark = [pytest.mark.db, pytest.mark.mqtt]

MESSAGES = 1_500
PER_MESSAGE = 50


@pytest.fixture
def ingest_process(database_url: str, mqtt_url: str) -> Iterator[IngestProcess]:
    proc = IngestProcess(
        database_url, mqtt_url, f"kill-test-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}"
    )
    yield proc
    proc.close()


def _stream(site: str) -> list[tuple[str, str]]:
    messages = []
    for seq in range(MESSAGES):
        machine = f"m{seq % 10}"
        base = seq // 10 * PER_MESSAGE
        readings = [
            {
                "ts": 1_795_834_800_000 + (base + i) * 1000,
                "metric": "active_power",
                "value": float(seq + i),
            }
            for i in range(PER_MESSAGE)
        ]
        messages.append(
            (f"tonle/v1/{site}/sewing-1/{machine}/telemetry", payload("edge-k", seq, readings))
        )
    return messages


def _stored(url: str, site: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry WHERE site = %s", (site,)).fetchone()
    return int(str(row[0])) if row else 0


def _publish_in_background(mqtt_url: str, messages: list[tuple[str, str]]) -> threading.Thread:
    def paced() -> None:
        for start in range(0, len(messages), 100):
            publish_all(mqtt_url, messages[start : start + 100])
            time.sleep(0.02)

    thread = threading.Thread(target=paced, name="test-publisher")
    thread.start()
    return thread


def test_sigkill_mid_stream_loses_and_doubles_nothing(
    database_url: str, mqtt_url: str, ingest_process: IngestProcess, site_id: str
) -> None:
    ingest_process.start()
    publisher = _publish_in_background(mqtt_url, _stream(site_id))
    wait_until(lambda: _stored(database_url, site_id) > 10_000, timeout_s=30)
    assert ingest_process.signal(signal.SIGKILL) == -signal.SIGKILL
    killed_at = _stored(database_url, site_id)
    assert killed_at < MESSAGES * PER_MESSAGE, "the stream should still be going when killed"
    publisher.join(60)
    ingest_process.start()
    wait_until(lambda: _stored(database_url, site_id) == MESSAGES * PER_MESSAGE, timeout_s=60)
    time.sleep(1.0)  # anything redelivered late must not add rows
    assert _stored(database_url, site_id) == MESSAGES * PER_MESSAGE
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT count(*), min(seq), max(seq) FROM edge_messages WHERE site = %s", (site_id,)
        ).fetchone() == (MESSAGES, 0, MESSAGES - 1)
    ingest_process.signal(signal.SIGTERM)


def test_sigterm_flushes_acknowledges_and_exits_cleanly(
    database_url: str, mqtt_url: str, ingest_process: IngestProcess, site_id: str
) -> None:
    ingest_process.start()
    publisher = _publish_in_background(mqtt_url, _stream(site_id))
    wait_until(lambda: _stored(database_url, site_id) > 10_000, timeout_s=30)
    assert ingest_process.signal(signal.SIGTERM) == 0
    assert any("stopped:" in line for line in ingest_process.lines)
    publisher.join(60)
    ingest_process.start()
    wait_until(lambda: _stored(database_url, site_id) == MESSAGES * PER_MESSAGE, timeout_s=60)
    assert ingest_process.signal(signal.SIGTERM) == 0


def test_database_outage_stops_acks_and_loses_nothing(
    mqtt_url: str, tmp_path: Path, site_id: str
) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg").start()
    try:
        url = pg.database_url("postgres")
        migrate(url, create_database=False)
        messages = _stream(site_id)[:400]
        with running_ingester(make_settings(url, mqtt_url, backoff_max_s=1.0)) as ingester:
            publish_all(mqtt_url, messages[:100])
            wait_until(lambda: _stored(url, site_id) == 100 * PER_MESSAGE)
            pg.stop()
            publish_all(mqtt_url, messages[100:])
            wait_until(lambda: ingester.stats.store_failures >= 2, timeout_s=30)
            acked_during_outage = ingester.stats.batches
            pg.start()
            wait_until(lambda: _stored(url, site_id) == 400 * PER_MESSAGE, timeout_s=60)
            assert ingester.stats.batches > acked_during_outage
    finally:
        pg.stop()

"""PostgreSQL restarted, and gone for a minute, mid-stream: the ingester stops acknowledging,
retries, and resumes; nothing is lost or doubled.

Each test runs a PostgreSQL of its own (``EmbeddedPostgres``) so it can stop and start it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from tests.faults.processes import IngestProcess
from tests.faults.streams import (
    RampSource,
    assert_edge_stored_exactly,
    edge_config,
    finish,
    wait_stored,
)
from tests.mqtt_helpers import wait_until
from tonle.db.migrate import migrate
from tonle.local_services import EmbeddedPostgres, LocalBroker

pytestmark = [pytest.mark.faults, pytest.mark.db, pytest.mark.mqtt, pytest.mark.timeout(300)]

OUTAGE_S = 60.0  # "PostgreSQL unreachable for a minute"
READINGS = 16_000
RATE_PER_S = 2_000.0
RETRYING = "retrying in"  # what the ingester logs each time a commit or connect fails


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A private PostgreSQL with the Tonle schema, which the test may stop and start."""
    server = EmbeddedPostgres(tmp_path / "pg").start()
    try:
        migrate(server.database_url("postgres"), create_database=False)
        yield server
    finally:
        server.stop()


def _stream_through_outage(
    postgres: EmbeddedPostgres,
    broker: LocalBroker,
    ingester: IngestProcess,
    site: str,
    spool: Path,
    outage_s: float,
) -> None:
    url = postgres.database_url("postgres")
    ingester.start()
    source = RampSource(READINGS, RATE_PER_S)
    agent = EdgeAgent(edge_config(site, "edge-d", broker.url, spool), sources=[source]).start()
    try:
        wait_stored(url, site, READINGS // 5, timeout_s=30)
        retries_before = ingester.logged(RETRYING)
        postgres.stop()
        down_at = time.monotonic()
        # The ingester notices (its next commit fails) and keeps retrying without acking.
        wait_until(lambda: ingester.logged(RETRYING) > retries_before, timeout_s=30)
        time.sleep(max(0.0, outage_s - (time.monotonic() - down_at)))
        assert ingester.running, "the ingester gave up during the outage"
        assert "nothing acknowledged" in "".join(ingester.lines[-50:])
        postgres.start()
    finally:
        finish(agent)
    wait_stored(url, site, READINGS, timeout_s=60)
    assert ingester.signal(signal.SIGTERM) == 0
    assert_edge_stored_exactly(url, site, "edge-d", source, agent)


def test_postgres_restarted_mid_stream(
    postgres: EmbeddedPostgres,
    private_broker: LocalBroker,
    ingest_processes: Callable[..., IngestProcess],
    group: str,
    site_id: str,
    tmp_path: Path,
) -> None:
    """PostgreSQL stopped and started again at once (a restart), while readings flow."""
    ingester = ingest_processes(
        postgres.database_url("postgres"), private_broker.url, group=group, backoff_max_s="1"
    )
    _stream_through_outage(
        postgres, private_broker, ingester, site_id, tmp_path / "edge.spool", outage_s=0.0
    )


def test_postgres_unreachable_for_a_minute(
    postgres: EmbeddedPostgres,
    private_broker: LocalBroker,
    ingest_processes: Callable[..., IngestProcess],
    group: str,
    site_id: str,
    tmp_path: Path,
) -> None:
    """PostgreSQL down for OUTAGE_S while the edge keeps publishing; the broker holds it all."""
    ingester = ingest_processes(
        postgres.database_url("postgres"), private_broker.url, group=group, backoff_max_s="2"
    )
    _stream_through_outage(
        postgres, private_broker, ingester, site_id, tmp_path / "edge.spool", outage_s=OUTAGE_S
    )

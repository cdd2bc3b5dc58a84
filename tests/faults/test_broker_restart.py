"""The broker restarted mid-stream: the edge spools and replays, the ingester reconnects."""

from __future__ import annotations

import signal
from collections.abc import Callable
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
from tonle.local_services import LocalBroker

pytestmark = [pytest.mark.faults, pytest.mark.db, pytest.mark.mqtt, pytest.mark.timeout(240)]

READINGS = 20_000
RATE_PER_S = 2_000.0


def _kill(broker: LocalBroker) -> None:
    """SIGKILL the broker: no chance to save its sessions."""
    assert broker.process is not None
    broker.process.kill()
    broker.process.wait()
    broker.process = None


@pytest.mark.parametrize("how", ["restarted", "killed"])
def test_broker_restarted_mid_stream(
    database_url: str,
    private_broker: LocalBroker,
    ingest_processes: Callable[..., IngestProcess],
    group: str,
    site_id: str,
    tmp_path: Path,
    how: str,
) -> None:
    """Mosquitto (persistence on) goes away mid-stream and is started again on the same port.

    ``restarted``: stopped with SIGTERM (what ``systemctl restart`` does); it saves its
    sessions when it stops, so the ingester's persistent session and the messages queued
    for it come back. ``killed``: SIGKILL; Mosquitto saves only every
    ``autosave_interval`` (30 minutes by default), so the ingester's session is lost and
    it subscribes afresh. What the edge publishes before the ingester has subscribed
    again reaches no subscriber; the broker says so in its PUBACK and the edge keeps
    those messages and sends them again. Either way what the edge sampled meanwhile
    waits in its spool.
    """
    ingester = ingest_processes(database_url, private_broker.url, group=group)
    ingester.start()
    source = RampSource(READINGS, RATE_PER_S)
    config = edge_config(site_id, "edge-b", private_broker.url, tmp_path / "edge.spool")
    agent = EdgeAgent(config, sources=[source]).start()
    try:
        wait_stored(database_url, site_id, READINGS // 5, timeout_s=30)
        sessions_before = ingester.logged("(session ")
        if how == "restarted":
            private_broker.stop()
        else:
            _kill(private_broker)
        wait_until(lambda: not agent.stats.connected, timeout_s=10)
        spooled_at_stop = agent.stats.spooled_readings
        # The edge keeps sampling into its spool while the broker is away.
        wait_until(lambda: agent.stats.spooled_readings >= spooled_at_stop + 2_000, timeout_s=10)
        assert agent.stats.pending > 0
        assert not agent.sources_done, "the stream should still be going"
        private_broker.start()
        wait_until(lambda: ingester.logged("(session ") > sessions_before, timeout_s=30)
        resumed = ingester.logged("(session resumed)")
        assert resumed == (1 if how == "restarted" else 0)
    finally:
        finish(agent)
    assert agent.stats.buffered_published > 0, "nothing was replayed from the spool"
    wait_stored(database_url, site_id, READINGS, timeout_s=60)
    assert ingester.signal(signal.SIGTERM) == 0
    assert_edge_stored_exactly(database_url, site_id, "edge-b", source, agent)

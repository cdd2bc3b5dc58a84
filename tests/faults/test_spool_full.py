"""A full spool drops its oldest messages, and counts exactly what it dropped."""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from tests.faults.streams import (
    RampSource,
    edge_config,
    edge_health,
    stored,
    stored_count,
    wait_stored,
)
from tests.mqtt_helpers import make_settings, running_ingester, wait_until
from tonle.local_services import LocalBroker

pytestmark = [pytest.mark.faults, pytest.mark.db, pytest.mark.mqtt, pytest.mark.timeout(240)]

READINGS = 20_000
RATE_PER_S = 4_000.0
SPOOL_MB = 0.2  # about 45 messages of 50 readings
MAX_INFLIGHT = 100  # messages; the rest of the stream waits in (and overflows) the spool


def _stopped(broker: LocalBroker, agent: EdgeAgent) -> None:
    broker.stop()
    wait_until(lambda: not agent.stats.connected, timeout_s=10)


def _partitioned(broker: LocalBroker, agent: EdgeAgent) -> None:
    # A frozen broker is what a cut cable looks like: publishes go unacknowledged and
    # pile up in flight until the keepalive gives up on the connection.
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)
    wait_until(lambda: agent.stats.inflight > 20, timeout_s=10)
    wait_until(lambda: not agent.stats.connected, timeout_s=30)


@pytest.mark.parametrize("outage", ["stopped", "partitioned"])
def test_full_spool_drops_the_oldest_and_counts_them_exactly(
    database_url: str, private_broker: LocalBroker, site_id: str, tmp_path: Path, outage: str
) -> None:
    """dropped_readings (the spool's lifetime counter) == readings missing from the database.

    ``stopped``: the broker is stopped cleanly, nothing is in flight. ``partitioned``: the
    broker freezes (SIGSTOP) with messages in flight; the full spool drops some of them,
    the MQTT client sends them again when the broker comes back (SIGCONT), and those
    that arrive are taken off the drop counters.
    """
    source = RampSource(READINGS, RATE_PER_S)
    config = edge_config(
        site_id,
        "edge-f",
        private_broker.url,
        tmp_path / "edge.spool",
        spool={"max_mb": SPOOL_MB},
        broker={"keepalive_s": 5},
        publish={"max_inflight": MAX_INFLIGHT},
    )
    with running_ingester(make_settings(database_url, private_broker.url)) as ingester:
        agent = EdgeAgent(config, sources=[source]).start()
        try:
            wait_stored(database_url, site_id, 1_000, timeout_s=30)
            (_stopped if outage == "stopped" else _partitioned)(private_broker, agent)
            assert agent.wait_sources_done(60)
            assert agent.stats.readings_sampled == READINGS
            # Everything sampled has been batched into the spool (or dropped from it).
            wait_until(lambda: agent.stats.spooled_readings == READINGS, timeout_s=10)
            dropped_during = agent.stats.dropped_readings
            assert dropped_during > 0, "the spool never filled"
            if outage == "stopped":
                private_broker.start()
            else:
                assert private_broker.process is not None
                os.kill(private_broker.process.pid, signal.SIGCONT)
            wait_until(lambda: ingester.client.subscribed.is_set(), timeout_s=60)
            assert agent.wait_drained(60), f"the edge did not drain: {agent.stats}"
        finally:
            final = agent.stop(timeout_s=30)
        wait_stored(database_url, site_id, READINGS - final.dropped_readings, timeout_s=30)
    rows = stored(database_url, site_id)
    got = [i for _, i in rows]
    assert len(got) == len(set(got)), "a reading was stored twice"
    missing = set(range(READINGS)) - set(got)
    assert len(missing) == final.dropped_readings
    assert stored_count(database_url, site_id) == READINGS - final.dropped_readings
    # The oldest went: per machine, the missing readings are one run, after the
    # readings acknowledged before the outage and before those the spool kept.
    by_machine: dict[int, list[int]] = defaultdict(list)
    for i in sorted(missing):
        by_machine[i % 4].append(i)
    for machine, lost in by_machine.items():
        kept_between = [i for i in got if i % 4 == machine and lost[0] < i < lost[-1]]
        assert not kept_between, f"m{machine}: readings kept among the dropped ones"
    assert max(missing) < max(got)
    # Partitioned: some dropped messages were in flight and arrived after all. A clean
    # stop may also catch a few in flight (the last publishes before it): they arrive
    # after all too, and only then leave the drop counters.
    arrived_after_all = dropped_during - final.dropped_readings
    assert arrived_after_all >= 0
    if outage == "partitioned":
        assert arrived_after_all > 0
    _, gaps, missing_messages = edge_health(database_url, site_id, "edge-f")
    assert (gaps, missing_messages) == (1, final.dropped_messages)
    print(
        f"{outage}: sampled {READINGS}, dropped {final.dropped_readings} readings in "
        f"{final.dropped_messages} messages ({arrived_after_all} more dropped in flight and "
        f"delivered after all), stored {len(got)}"
    )

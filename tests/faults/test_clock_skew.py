"""An edge whose clock runs ahead: future readings are dead-lettered, the rest is stored.

What is dead-lettered is the whole message (``ingest/decode.py``): a message is the unit
the broker delivers, the ingester acknowledges and ``dead_letters`` keeps as raw bytes.
A message holding one reading too far ahead goes to ``dead_letters`` with every reading
it carries, good ones included, and the reason names the first bad reading; nothing in
it is stored, and nothing in it is lost: the raw bytes are kept for a replay once the
gateway's clock is fixed. Every other message of the stream is stored in full.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from edge.agent import EdgeAgent
from edge.sources import Sample
from tests.faults.streams import RampSource, assert_exact, edge_config, finish, stored
from tests.mqtt_helpers import make_settings, payload, publish_all, running_ingester, wait_until
from tonle.contract import format_timestamp, parse_timestamp, telemetry_topic
from tonle.local_services import LocalBroker

pytestmark = [pytest.mark.faults, pytest.mark.db, pytest.mark.mqtt, pytest.mark.timeout(120)]

MAX_FUTURE_S = 3_600.0  # the ingester's setting (its default)
SKEW = timedelta(hours=2)  # how far the gateway's clock jumps ahead
SKEWED_READINGS = 2_000
JUMP_AT = 1_000  # reading index at which the gateway's clock jumps
FUTURE = "ahead of the ingester's clock"


@dataclass
class JumpingClock:
    """Readings stamped by a clock that jumps SKEW ahead at reading JUMP_AT."""

    base: datetime
    name: str = "jumping"
    realtime: bool = True
    stamps: dict[int, datetime] = field(default_factory=dict)

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        for i in range(SKEWED_READINGS):
            if stop.is_set():
                return
            ts = self.base + timedelta(milliseconds=i) + (SKEW if i >= JUMP_AT else timedelta())
            self.stamps[i] = ts
            if i % 50 == 0:
                stop.wait(0.005)
            yield Sample("assembly", "clock", "active_power", ts, float(i), "W")


def _dead_letters(url: str, site: str) -> list[tuple[list[dict[str, object]], str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT payload, reason FROM dead_letters WHERE topic LIKE %s",
            (f"tonle/v1/{site}/%",),
        ).fetchall()
    return [(json.loads(bytes(p))["readings"], str(r)) for p, r in rows]


def _stored_values(url: str, site: str, machine: str) -> list[float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT value FROM telemetry WHERE site = %s AND machine = %s", (site, machine)
        ).fetchall()
    return [float(str(v)) for (v,) in rows]


def test_readings_from_the_future_are_dead_lettered_and_the_rest_stored(
    database_url: str, private_broker: LocalBroker, site_id: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, private_broker.url, max_future_s=MAX_FUTURE_S)
    fine = RampSource(4_000, 4_000.0)
    skewed = JumpingClock(base=datetime.now(UTC) - timedelta(minutes=5))
    url = private_broker.url
    with running_ingester(settings) as ingester:
        agents = [
            EdgeAgent(edge_config(site_id, "edge-ok", url, tmp_path / "ok.spool"), [fine]),
            EdgeAgent(edge_config(site_id, "edge-skew", url, tmp_path / "skew.spool"), [skewed]),
        ]
        for agent in agents:
            agent.start()
        for agent in agents:
            finish(agent)
        # One message mixing fine readings with one from the future, sent as is.
        now = datetime.now(UTC)
        mixed = [
            {"ts": format_timestamp(now - timedelta(seconds=2)), "metric": "voltage", "value": 1.0},
            {"ts": format_timestamp(now + SKEW), "metric": "voltage", "value": 2.0},
            {"ts": format_timestamp(now - timedelta(seconds=1)), "metric": "voltage", "value": 3.0},
        ]
        publish_all(
            url,
            [(telemetry_topic(site_id, "assembly", "mixed"), payload("edge-mixed", 0, mixed))],
        )
        skewed_messages = agents[1].stats.acked
        wait_until(
            lambda: ingester.stats.messages >= agents[0].stats.acked + skewed_messages + 1,
            timeout_s=30,
        )
    # The stream of the edge with a good clock: stored in full.
    assert_exact(stored(database_url, site_id), fine.expected())
    letters = _dead_letters(database_url, site_id)
    assert letters, "nothing was dead-lettered"
    for readings, reason in letters:
        assert FUTURE in reason, reason
        # Each dead letter holds at least one reading beyond max_future (from its sending).
        assert any(parse_timestamp(r["ts"]) > skewed.base + SKEW / 2 for r in readings)
    # The mixed message went whole: its fine readings are in dead_letters, not stored.
    assert _stored_values(database_url, site_id, "mixed") == []
    assert [[r["value"] for r in readings] for readings, _ in letters if len(readings) == 3] == [
        [1.0, 2.0, 3.0]
    ]
    assert "readings.1.ts" in next(reason for readings, reason in letters if len(readings) == 3)
    # The jumping clock's readings: stored, or dead-lettered with their message; never both,
    # never neither. Everything before the jump is stored unless a message straddled it.
    stored_skewed = _stored_values(database_url, site_id, "clock")
    lettered = [
        float(str(r["value"]))
        for readings, _ in letters
        for r in readings
        if r["metric"] == "active_power"
    ]
    assert len(stored_skewed) == len(set(stored_skewed))
    assert sorted(stored_skewed + lettered) == [float(i) for i in range(SKEWED_READINGS)]
    assert all(v < JUMP_AT for v in stored_skewed)
    assert set(range(JUMP_AT, SKEWED_READINGS)) <= {int(v) for v in lettered}
    assert ingester.stats.dead_letters == len(letters)
    print(
        f"stored {len(stored_skewed)} of the jumping clock's readings; dead-lettered "
        f"{len(letters)} messages holding {len(lettered) + 3} readings"
    )

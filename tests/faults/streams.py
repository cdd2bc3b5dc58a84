"""Deterministic readings for the fault matrix, and exact accounting of what was stored.

Reading ``i`` of a :class:`RampSource` is machine ``m{i % machines}``, metric
``active_power``, timestamp ``START + i ms``, value ``i``: from a stored row the test
recovers ``i`` and so knows exactly which readings arrived, which are missing and which
(if any) were stored twice.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from edge.agent import EdgeAgent
from edge.config import EdgeConfig, parse_config
from edge.sources import Sample
from tests.mqtt_helpers import wait_until

START = datetime(2026, 11, 20, tzinfo=UTC)
LINE = "press-1"
_START_MS = int(START.timestamp() * 1000)
_TICK_S = 0.01


@dataclass
class RampSource:
    """Readings ``first`` … ``first + count - 1``, paced at ``rate_per_s``, then ends."""

    count: int
    rate_per_s: float
    first: int = 0
    machines: int = 4
    name: str = "ramp"
    realtime: bool = True

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        per_tick = max(1, round(self.rate_per_s * _TICK_S))
        began = time.monotonic()
        for n in range(self.count):
            if n % per_tick == 0:
                delay = began + n / self.rate_per_s - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
                if stop.is_set():
                    return
            yield ramp_sample(self.first + n, self.machines)

    def expected(self) -> set[tuple[str, int]]:
        """Every (machine, i) this source emits."""
        return {key(i, self.machines) for i in range(self.first, self.first + self.count)}


def ramp_sample(i: int, machines: int = 4) -> Sample:
    """Reading ``i`` of the ramp."""
    return Sample(
        LINE,
        f"m{i % machines}",
        "active_power",
        START + timedelta(milliseconds=i),
        float(i),
        "W",
    )


def key(i: int, machines: int = 4) -> tuple[str, int]:
    """How a stored reading is identified in these tests: (machine, i)."""
    return (f"m{i % machines}", i)


def stored(url: str, site: str) -> list[tuple[str, int]]:
    """Every ramp reading of ``site`` in the database, as (machine, i), duplicates kept."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT machine, round(extract(epoch FROM ts) * 1000)::bigint - %s, value"
            " FROM telemetry WHERE site = %s AND line = %s",
            (_START_MS, site, LINE),
        ).fetchall()
    result = []
    for machine, offset, value in rows:
        i = int(str(offset))
        assert float(str(value)) == float(i), f"reading {i} stored with value {value}"
        result.append((str(machine), i))
    return result


def stored_count(url: str, site: str) -> int:
    """How many readings of ``site`` the database holds."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry WHERE site = %s", (site,)).fetchone()
    return int(str(row[0])) if row else 0


def assert_exact(rows: list[tuple[str, int]], expected: Iterable[tuple[str, int]]) -> None:
    """Stored == emitted, per (machine, i), and nothing stored twice."""
    wanted = set(expected)
    doubled = [k for k, n in Counter(rows).items() if n > 1]
    got = set(rows)
    missing = sorted(wanted - got, key=lambda k: k[1])
    extra = sorted(got - wanted, key=lambda k: k[1])
    assert not doubled, f"{len(doubled)} readings stored more than once, e.g. {doubled[:5]}"
    assert not missing and not extra, (
        f"{len(missing)} emitted readings missing (e.g. {missing[:5]}), "
        f"{len(extra)} stored that were not emitted (e.g. {extra[:5]})"
    )
    assert len(rows) == len(wanted)


def edge_health(url: str, site: str, edge_id: str) -> tuple[int, int, int]:
    """(messages, gaps, missing_messages) of one edge, from the edge_health view."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT messages, gaps, missing_messages FROM edge_health"
            " WHERE site = %s AND edge_id = %s",
            (site, edge_id),
        ).fetchone()
    assert row is not None, f"no edge_health row for {site}/{edge_id}"
    return (int(str(row[0])), int(str(row[1])), int(str(row[2])))


def edge_config(
    site: str, edge_id: str, mqtt_url: str, spool_path: Path, **sections: dict[str, Any]
) -> EdgeConfig:
    """An edge configuration for the fault tests: small batches, quick reconnects."""
    document: dict[str, Any] = {
        "site": site,
        "edge_id": edge_id,
        "broker": {"url": mqtt_url, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "batch": {"max_readings": 50, "max_delay_s": 0.2},
        "spool": {"path": str(spool_path), "synchronous": "normal"},
        "publish": {"drain_timeout_s": 10},
        "sources": [{"type": "system"}],  # replaced by the source the test passes in
    }
    for name, values in sections.items():
        document[name] = {**document.get(name, {}), **values}
    return parse_config(document, source="fault test")


def assert_edge_stored_exactly(
    url: str, site: str, edge_id: str, source: RampSource, agent: EdgeAgent
) -> None:
    """All the edge emitted is stored once, and ``edge_health`` counts every acknowledged
    message with no sequence gap and nothing missing."""
    assert_exact(stored(url, site), source.expected())
    assert edge_health(url, site, edge_id) == (agent.stats.acked, 0, 0)


def finish(agent: EdgeAgent, timeout_s: float = 60) -> None:
    """Wait until the agent's finite sources are done and the broker acknowledged all; stop it."""
    try:
        assert agent.wait_sources_done(timeout_s), "the edge's source did not finish"
        assert agent.wait_drained(timeout_s), f"the edge did not drain: {agent.stats}"
    finally:
        agent.stop(timeout_s=30)


def wait_stored(url: str, site: str, at_least: int, timeout_s: float = 60) -> int:
    """Wait until ``site`` has at least ``at_least`` readings stored; return the count."""
    result: int = wait_until(
        lambda: (n := stored_count(url, site)) >= at_least and n, timeout_s=timeout_s
    )
    return result

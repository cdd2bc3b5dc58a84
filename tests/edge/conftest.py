"""Fixtures for the edge tests: fake sources, a test-side subscriber, configurations."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import EdgeConfig, parse_config
from edge.sources import Sample
from tonle.contract import Payload, decode_payload
from tonle.settings import parse_mqtt_url

START = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


@dataclass
class CountingSource:
    """A backfill: ``count`` readings round-robin over ``machines``, 1 ms apart, then ends."""

    count: int
    machines: int = 3
    name: str = "counting"
    realtime: bool = False

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        for i in range(self.count):
            if stop.is_set():
                return
            yield Sample(
                "line-1",
                f"m{i % self.machines}",
                "active_power",
                START + timedelta(milliseconds=i),
                float(i),
                "W",
            )


@dataclass
class TickingSource:
    """Real time: ``per_tick`` readings every ``interval_s`` until stopped; distinct timestamps."""

    interval_s: float = 0.02
    per_tick: int = 4
    name: str = "ticking"
    realtime: bool = True
    produced: int = 0

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        while not stop.is_set():
            for _ in range(self.per_tick):
                i = self.produced
                yield Sample(
                    "line-2",
                    f"m{i % 2}",
                    "vibration_rms",
                    START + timedelta(milliseconds=i),
                    round(i * 0.01, 2),
                    "mm/s",
                )
                self.produced += 1
            stop.wait(self.interval_s)


@dataclass(frozen=True)
class Received:
    """One message as the test subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool


@dataclass
class Collector:
    """A test-side subscriber that records every message on its filters."""

    url: str
    filters: list[str]
    persistent: bool = False
    client_id: str = field(default_factory=lambda: f"test-sub-{uuid.uuid4().hex[:8]}")
    received: list[Received] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> Collector:
        broker = parse_mqtt_url(self.url)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.persistent:
            properties.SessionExpiryInterval = 600
        self._client.connect(
            broker.host, broker.port, clean_start=not self.persistent, properties=properties
        )
        self._client.loop_start()
        assert self.subscribed.wait(10), "test subscriber did not subscribe"
        return self

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def payloads(self) -> list[Payload]:
        """Every telemetry message, decoded (fails the test if one breaks the contract)."""
        return [decode_payload(m.payload) for m in self.messages() if "/telemetry" in m.topic]

    def on_topic(self, topic: str) -> list[Received]:
        return [m for m in self.messages() if m.topic == topic]

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe([(f, 1) for f in self.filters])

    def _on_subscribe(self, *_: Any) -> None:
        self.subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append(Received(message.topic, bytes(message.payload), message.retain))


@pytest.fixture
def collector() -> Iterator[Callable[..., Collector]]:
    """Start test subscribers; each is closed when the test ends."""
    started: list[Collector] = []

    def start(url: str, filters: list[str], persistent: bool = False) -> Collector:
        subscriber = Collector(url, filters, persistent=persistent).start()
        started.append(subscriber)
        return subscriber

    yield start
    for subscriber in started:
        subscriber.close()


def make_config(tmp_path: Path, url: str, site: str, **sections: Any) -> EdgeConfig:
    """An edge configuration for a test: its own spool, fast batching and reconnects."""
    document: dict[str, Any] = {
        "site": site,
        "edge_id": "edge-01",
        "broker": {"url": url, "reconnect_min_s": 1, "reconnect_max_s": 1, "keepalive_s": 5},
        "batch": {"max_readings": 50, "max_delay_s": 0.1},
        "spool": {"path": str(tmp_path / "edge.spool"), "max_mb": 64},
        "publish": {"max_inflight": 100, "drain_timeout_s": 5},
        "sources": [{"type": "system", "interval_s": 60}],
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            document[key] = {**document.get(key, {}), **value}
        else:
            document[key] = value
    return parse_config(document)


def wait_for(predicate: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Poll until ``predicate()`` is truthy, or fail the test."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.02)

"""Test-side MQTT and ingester helpers: an independent publisher and an in-thread ingester."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.service import Ingester, IngestStats
from tonle.settings import IngestSettings, Settings, parse_mqtt_url


def publish_all(
    url: str,
    messages: Iterable[tuple[str, bytes | str]],
    *,
    retain: bool = False,
    timeout_s: float = 60,
) -> int:
    """Publish (topic, payload) pairs at QoS 1 and wait for every PUBACK; return the count."""
    broker = parse_mqtt_url(url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-pub-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [
            client.publish(topic, payload, qos=1, retain=retain) for topic, payload in messages
        ]
        deadline = time.monotonic() + timeout_s
        for info in infos:
            info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge a test message"
        return len(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def payload(edge: str, seq: int, readings: list[dict[str, Any]], buffered: bool = False) -> str:
    """A v1 payload as JSON text."""
    return json.dumps(
        {"v": 1, "edge": edge, "seq": seq, "buffered": buffered, "readings": readings}
    )


def make_settings(database_url: str, mqtt_url: str, **ingest: Any) -> Settings:
    """Settings for one test's ingester: its own client id and group."""
    defaults: dict[str, Any] = {
        "client_id": f"test-ingest-{uuid.uuid4().hex[:8]}",
        "group": f"g{uuid.uuid4().hex[:8]}",
        "max_delay_s": 0.1,
    }
    defaults.update(ingest)
    return Settings(database_url=database_url, mqtt_url=mqtt_url, ingest=IngestSettings(**defaults))


@contextlib.contextmanager
def running_ingester(settings: Settings) -> Iterator[Ingester]:
    """An ingester running in a thread for the duration of the block."""
    ingester = Ingester(settings)
    result: list[IngestStats | BaseException] = []

    def target() -> None:
        try:
            result.append(ingester.run())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            result.append(exc)

    thread = threading.Thread(target=target, name="test-ingester")
    thread.start()
    if not ingester.client.subscribed.wait(10):
        ingester.stop()
        thread.join(10)
        raise AssertionError("ingester did not connect to the broker")
    try:
        yield ingester
    finally:
        ingester.stop()
        thread.join(30)
        assert not thread.is_alive(), "ingester did not stop"
        if result and isinstance(result[0], BaseException):
            raise result[0]


def wait_until(predicate: Any, timeout_s: float = 20, interval_s: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns a truthy value; return it or fail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s")

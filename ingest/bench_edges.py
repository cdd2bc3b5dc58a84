"""Simulated edges for ``tonle bench ingest``: batched readings published at QoS 1.

Each edge is a process of its own with one MQTT connection, as a gateway would be. Its
messages follow the v1 contract exactly as the edge agent sends them (RFC 3339 times,
units, a ``seq`` per edge), and no two readings share a (sensor, ts), so what is stored
can be compared with what was published, row for row.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tonle.contract import telemetry_topic
from tonle.settings import parse_mqtt_url

METRICS = (("active_power", "W"), ("current", "A"), ("voltage", "V"), ("power_factor", None))
LINE = "bench"


@dataclass(frozen=True)
class Fleet:
    """The simulated edges of one measurement: ``edges`` gateways of ``machines`` each.

    Message ``k`` of an edge carries ``per_message`` readings of machine ``k % machines``:
    the four metrics at ``per_message / 4`` consecutive milliseconds, so every reading has
    a (sensor, ts) of its own and the stored count is the published count, exactly.
    """

    site: str
    edges: int
    machines: int
    per_message: int
    base_ms: int

    def topic(self, machine: int) -> str:
        """The telemetry topic of machine number ``machine``."""
        return telemetry_topic(self.site, LINE, f"m{machine}")

    def payload(self, edge: int, seq: int) -> bytes:
        """Message ``seq`` of edge number ``edge``, as an edge agent would send it."""
        steps = self.per_message // len(METRICS)
        first_ms = self.base_ms + (seq // self.machines) * steps
        parts = []
        for step in range(steps):
            ts = datetime.fromtimestamp((first_ms + step) / 1000, UTC)
            text = ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for index, (metric, unit) in enumerate(METRICS):
                value = (first_ms + step) % 1000 + index
                unit_json = f',"unit":"{unit}"' if unit else ""
                parts.append(f'{{"ts":"{text}","metric":"{metric}","value":{value}{unit_json}}}')
        return (
            f'{{"v":1,"edge":"{self.edge_id(edge)}","seq":{seq},"buffered":false,'
            f'"readings":[{",".join(parts)}]}}'
        ).encode()

    def edge_id(self, edge: int) -> str:
        """The id edge number ``edge`` publishes as."""
        return f"edge{edge}"

    def machine_of(self, edge: int, seq: int) -> int:
        """Which machine message ``seq`` of edge ``edge`` is about (machines are per edge)."""
        return edge * self.machines + seq % self.machines

    def sensor_keys(self) -> list[tuple[tuple[str, str, str, str], str | None]]:
        """Every (site, line, machine, metric) the fleet publishes, with its unit."""
        return [
            ((self.site, LINE, f"m{m}", metric), unit)
            for m in range(self.edges * self.machines)
            for metric, unit in METRICS
        ]


def run_edge(
    mqtt_url: str,
    fleet: Fleet,
    edge: int,
    allowed: Synchronized[int],
    stop: Any,
    rate_msgs_s: float | None,
    results: Any,
) -> None:
    """One simulated edge: publish at QoS 1 until ``stop``; report each message's send time."""
    broker = parse_mqtt_url(mqtt_url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{fleet.site}-edge{edge}")
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set()
    client.max_inflight_messages_set(200)
    client.connect(broker.host, broker.port)
    client.loop_start()
    sent_at: list[float] = []
    window: deque[paho.MQTTMessageInfo] = deque()
    started = time.time()
    seq = 0
    while not stop.is_set():
        if seq >= allowed.value:
            time.sleep(0.002)
            continue
        if rate_msgs_s is not None:
            wait_s = started + seq / rate_msgs_s - time.time()
            if wait_s > 0:
                time.sleep(min(wait_s, 0.05))
                continue
        body = fleet.payload(edge, seq)
        topic = fleet.topic(fleet.machine_of(edge, seq))
        sent_at.append(time.time())
        window.append(client.publish(topic, body, qos=1))
        while len(window) > 400:
            window.popleft().wait_for_publish(60)
        seq += 1
    for info in window:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    results.put((edge, sent_at))

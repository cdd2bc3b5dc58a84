"""Load a factory's history through the real ingest path: edges → broker → ``tonle ingest``.

Publisher processes play the factory's edge gateways: each owns some machines and
publishes their readings in time order, ``per_message`` readings a message (the four
metrics of one machine at consecutive instants), at QoS 1, as v1 payloads with RFC 3339
times and a ``seq`` per edge. ``tonle ingest`` subprocesses store them. The publishers
stay at most a window of messages ahead of what is stored, so no broker queue limit
can drop anything, and the load ends when every message is in ``edge_messages``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from tonle.cli.bench_api import METRICS, Progress, machine_readings
from tonle.contract import telemetry_topic
from tonle.errors import TonleError
from tonle.settings import parse_mqtt_url

SITE = "bench-factory"
# Local midnight, Monday 5 January 2026 in Phnom Penh (UTC+7), as in ``tonle bench api``.
START = datetime(2026, 1, 4, 17, 0, tzinfo=UTC)
LOCAL_OFFSET_S = 7 * 3600.0
AHEAD_MESSAGES = 2_000  # how far each edge may run ahead of what is stored
_STALL_S = 120.0  # no progress this long ends the load with an error
_INGEST = (sys.executable, "-c", "from tonle.cli import main; main()", "ingest", "--no-migrate")


class LoadError(TonleError):
    """The load did not store exactly what was published."""


@dataclass(frozen=True)
class Factory:
    """The factory loaded: its machines, how long and how often they report."""

    machines: int = 40
    lines: int = 4
    days: float = 30.0
    interval_s: float = 10.0
    per_message: int = 200  # readings per MQTT message, a multiple of the metrics
    seed: int = 1

    @property
    def samples(self) -> int:
        """Instants per sensor."""
        return round(self.days * 86_400 / self.interval_s)

    @property
    def steps(self) -> int:
        """Instants per message."""
        return max(1, self.per_message // len(METRICS))

    @property
    def readings(self) -> int:
        """Readings the whole load publishes."""
        return self.machines * len(METRICS) * self.samples

    @property
    def end(self) -> datetime:
        """Just after the last reading."""
        return START + timedelta(seconds=self.samples * self.interval_s)

    def machine(self, index: int) -> tuple[str, str]:
        """(line, machine) of machine number ``index``, spread evenly over the lines."""
        return f"line-{index % self.lines + 1}", f"m{index + 1:02d}"


def _stamps(factory: Factory) -> list[str]:
    """Every instant as RFC 3339 UTC text with milliseconds, as the edge agent writes it."""
    offsets_ms = np.round(np.arange(factory.samples) * factory.interval_s * 1000).astype("int64")
    base = np.datetime64(START.replace(tzinfo=None), "ms")
    text = np.datetime_as_string(base + offsets_ms.astype("timedelta64[ms]"), unit="ms")
    return [f"{t}Z" for t in text.tolist()]


def run_edge(
    mqtt_url: str,
    factory: Factory,
    edge: int,
    machines: list[int],
    allowed: Any,
    published: Any,
) -> None:
    """One simulated gateway: publish its machines' history in time order at QoS 1."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    stamps = _stamps(factory)
    offsets_s = np.arange(factory.samples) * factory.interval_s + LOCAL_OFFSET_S
    series: list[tuple[str, list[list[float]]]] = []
    for index in machines:
        rng = np.random.default_rng([factory.seed, index])
        values = machine_readings(rng, offsets_s, factory.interval_s)
        line, machine = factory.machine(index)
        series.append((telemetry_topic(SITE, line, machine), [values[m].tolist() for m in METRICS]))
    prefixes = [
        ('{"ts":"', f'","metric":"{m}","value":', f',"unit":"{u}"}}') for m, u in METRICS.items()
    ]
    broker = parse_mqtt_url(mqtt_url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{SITE}-edge{edge}")
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set()
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    window: deque[Any] = deque()
    seq = 0
    try:
        for first in range(0, factory.samples, factory.steps):
            last = min(first + factory.steps, factory.samples)
            for topic, columns in series:
                while seq >= allowed.value:
                    time.sleep(0.01)
                parts = [
                    f"{a}{stamps[i]}{b}{columns[k][i]!r}{c}"
                    for i in range(first, last)
                    for k, (a, b, c) in enumerate(prefixes)
                ]
                body = (
                    f'{{"v":1,"edge":"edge-{edge}","seq":{seq},"buffered":false,'
                    f'"readings":[{",".join(parts)}]}}'
                )
                window.append(client.publish(topic, body.encode(), qos=1))
                while len(window) > 1000:
                    window.popleft().wait_for_publish(120)
                seq += 1
                published.value = seq
        for info in window:
            info.wait_for_publish(120)
    finally:
        client.disconnect()
        client.loop_stop()


@dataclass
class _Ingester:
    process: subprocess.Popen[bytes]
    log_path: Path

    def wait_subscribed(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "subscribed" in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise LoadError(f"`tonle ingest` did not subscribe; its log: {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_ingesters(
    database_url: str, mqtt_url: str, count: int, mqtt5: bool, logs: Path
) -> list[_Ingester]:
    """``count`` × ``tonle ingest`` sharing one subscription (one where MQTT 5 is missing)."""
    logs.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "TONLE_DATABASE_URL": database_url,
        "TONLE_MQTT_URL": mqtt_url,
        "TONLE_LOG_LEVEL": "INFO",
        "TONLE_INGEST__GROUP": "benchqueries",
        "TONLE_INGEST__PROTOCOL": "5" if mqtt5 else "3.1.1",
        "TONLE_INGEST__SESSION_EXPIRY_S": "0",
    }
    ingesters = []
    for i in range(count if mqtt5 else 1):
        log_path = logs / f"ingest-{i}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                _INGEST,
                env=env | {"TONLE_INGEST__CLIENT_ID": f"bench-queries-ingest-{i}"},
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        ingesters.append(_Ingester(process, log_path))
    return ingesters


def _stored_by_edge(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        "SELECT edge_id, count(*), sum(readings) FROM edge_messages WHERE site = %s "
        "GROUP BY edge_id",
        (SITE,),
    ).fetchall()
    return {str(e): (int(str(m)), int(str(r))) for e, m, r in rows}


def load_through_mqtt(
    database_url: str,
    mqtt_url: str,
    mqtt5: bool,
    factory: Factory,
    *,
    edges: int,
    ingesters: int,
    logs: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Publish the factory's history through the broker into ``tonle ingest``; the figures."""
    edges = max(1, min(edges, factory.machines))
    owned = [list(range(e, factory.machines, edges)) for e in range(edges)]
    messages = [len(m) * -(-factory.samples // factory.steps) for m in owned]
    running = start_ingesters(database_url, mqtt_url, ingesters, mqtt5, logs)
    # Forked, not spawned: spawning starts a resource tracker process that outlives the run.
    # Each shared counter has one writer, so it needs no lock.
    ctx = mp.get_context("fork")
    allowed = [ctx.RawValue("q", AHEAD_MESSAGES) for _ in range(edges)]
    published = [ctx.RawValue("q", 0) for _ in range(edges)]
    processes: list[Any] = []
    try:
        for ingester in running:
            ingester.wait_subscribed()
        started = time.perf_counter()
        for e in range(edges):
            args = (mqtt_url, factory, e, owned[e], allowed[e], published[e])
            processes.append(ctx.Process(target=run_edge, args=args, name=f"bench-edge-{e}"))
            processes[-1].start()
        stored_readings, last_change, last_note = -1, time.monotonic(), time.monotonic()
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                stored = _stored_by_edge(conn)
                for e in range(edges):
                    allowed[e].value = stored.get(f"edge-{e}", (0, 0))[0] + AHEAD_MESSAGES
                now_readings = sum(r for _, r in stored.values())
                if now_readings != stored_readings:
                    stored_readings, last_change = now_readings, time.monotonic()
                if sum(m for m, _ in stored.values()) >= sum(messages):
                    break
                failed = [p for p in processes if p.exitcode not in (None, 0)]
                if failed or [i for i in running if i.process.poll() is not None]:
                    raise LoadError(f"a publisher or an ingester stopped early; logs in {logs}")
                if time.monotonic() - last_change > _STALL_S:
                    raise LoadError(f"nothing stored for {_STALL_S:.0f} s; logs in {logs}")
                if time.monotonic() - last_note > 15:
                    last_note = time.monotonic()
                    rate = stored_readings / (time.perf_counter() - started)
                    progress(f"  stored {stored_readings:,} of {factory.readings:,} readings "
                             f"({rate:,.0f}/s)")  # fmt: skip
                time.sleep(0.5)
        load_s = time.perf_counter() - started
        for process in processes:
            process.join(60)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)
        for ingester in running:
            ingester.stop()
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
        count = int(str(row[0])) if row else 0
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    if count != factory.readings or (dead and int(str(dead[0]))):
        raise LoadError(
            f"published {factory.readings:,} readings but {count:,} are stored "
            f"(dead letters: {dead[0] if dead else '?'}); logs in {logs}"
        )
    return {
        "readings_loaded": count,
        "messages_published": sum(messages),
        "load_seconds": round(load_s, 1),
        "load_readings_per_s": round(count / load_s),
        "edges": edges,
        "ingesters": len(running),
    }

"""Ingest throughput, measured against a baseline in the same run.

``store``: the batched path (COPY into staging + INSERT … ON CONFLICT, 10k rows per
transaction) against the naive one (one INSERT and commit per 50-reading message).
``pipeline``: messages of 50 readings queued at QoS 1 in the broker for the ingester's
persistent session; the clock runs from the ingester's start to the last row committed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.service import Ingester
from ingest.store import Batch, Store
from tonle.settings import Settings

Progress = Callable[[str], None]
_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def checkpoint(url: str) -> None:
    """Flush PostgreSQL's dirty pages, so one measurement does not pay for the last one."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        pass  # not a superuser: measure without it


def _sensor_ids(url: str, site: str, count: int) -> list[int]:
    store = Store(url)
    store.connect()
    keys = [((site, "bench", f"m{i}", "active_power"), "W") for i in range(count)]
    store.register(keys, create=True)
    ids = [sensor.id for key, _ in keys if (sensor := store.known(key)) is not None]
    store.close()
    return ids


def bench_store(url: str, readings: int, progress: Progress) -> dict[str, Any]:
    """Rows per second stored by the batched path and by the per-message baseline."""
    site = f"bench{uuid.uuid4().hex[:6]}"
    sensors = _sensor_ids(url, site, 20)
    rows = [
        (_T0 + timedelta(seconds=i // len(sensors)), sensors[i % len(sensors)], float(i))
        for i in range(readings)
    ]
    store = Store(url)
    store.connect()
    checkpoint(url)
    progress(f"batched: {readings} rows in 10k-row transactions")
    started = time.perf_counter()
    for start in range(0, readings, 10_000):
        store.write(Batch(rows=rows[start : start + 10_000]))
    batched_s = time.perf_counter() - started
    store.close()

    baseline_rows = min(readings, 50_000)
    shifted = [(ts + timedelta(days=1), sid, v) for ts, sid, v in rows[:baseline_rows]]
    checkpoint(url)
    progress(f"baseline: {baseline_rows} rows, one INSERT and commit per 50-row message")
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for start in range(0, baseline_rows, 50):
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO readings (ts, sensor_id, value) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    shifted[start : start + 50],
                )
            conn.commit()
        baseline_s = time.perf_counter() - started
    return {
        "store_batched_rows_per_s": round(readings / batched_s),
        "store_baseline_rows_per_s": round(baseline_rows / baseline_s),
        "store_speedup": round((readings / batched_s) / (baseline_rows / baseline_s), 1),
    }


def _publish(settings: Settings, bodies: list[tuple[str, str]]) -> None:
    """Publish every (topic, body) at QoS 1 and wait for the PUBACKs."""
    address = settings.broker
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        for info in [client.publish(topic, body, qos=1) for topic, body in bodies]:
            info.wait_for_publish(120)
    finally:
        client.disconnect()
        client.loop_stop()


def _run_until(ingester: Ingester, done: Callable[[], bool], timeout_s: float) -> bool:
    """Run ``ingester`` until ``done()`` or the timeout; return whether it got done."""
    thread = threading.Thread(target=ingester.run, name="bench-ingester")
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not (finished := done()) and time.monotonic() < deadline:
            time.sleep(0.005)
        return finished
    finally:
        ingester.stop()
        thread.join(60)


def bench_pipeline(
    settings: Settings, messages: int, per_message: int, progress: Progress
) -> dict[str, Any]:
    """Readings per second an ingester stores while draining a backlog the broker holds.

    The ingester's persistent session is created first, then the messages are
    published while it is away, so the clock measures broker → ingester → PostgreSQL
    alone, not the publisher competing for the same two cores.
    """
    site = f"bench{uuid.uuid4().hex[:6]}"
    bodies = [
        (
            f"tonle/v1/{site}/bench/m{seq % 20}/telemetry",
            json.dumps(
                {
                    "v": 1,
                    "edge": "bench",
                    "seq": seq,
                    "readings": [
                        {
                            "ts": 1_767_225_600_000 + (seq // 20 * per_message + i) * 1000,
                            "metric": "active_power",
                            "value": float(i),
                        }
                        for i in range(per_message)
                    ],
                }
            ),
        )
        for seq in range(messages)
    ]
    total = messages * per_message
    first = Ingester(settings)
    if not _run_until(first, first.client.subscribed.is_set, timeout_s=15):
        raise RuntimeError(f"the ingester did not subscribe at {settings.broker}")
    progress(f"pipeline: {messages} messages × {per_message} readings queued at QoS 1")
    _publish(settings, bodies)
    checkpoint(settings.database_url)
    second = Ingester(settings)
    started = time.perf_counter()
    _run_until(second, lambda: second.stats.readings_stored >= total, timeout_s=300)
    stored_s = time.perf_counter() - started
    stored = second.stats.readings_stored
    return {
        "pipeline_messages": messages,
        "pipeline_readings": total,
        "pipeline_stored": stored,
        "pipeline_readings_per_s": round(stored / stored_s),
        "pipeline_messages_per_s": round(messages / stored_s),
    }

"""Ingest throughput, measured against a baseline in the same run.

``store``: the batched path (COPY into staging + INSERT … ON CONFLICT, 10k rows per
transaction) against the naive one (one INSERT and commit per 50-reading message).
``pipeline``: messages of 50 readings published at QoS 1 to the broker while an
ingester stores them; the clock runs from the first publish to the last row committed.
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
    progress(f"batched: {readings} rows in 10k-row transactions")
    started = time.perf_counter()
    for start in range(0, readings, 10_000):
        store.write(Batch(rows=rows[start : start + 10_000]))
    batched_s = time.perf_counter() - started
    store.close()

    baseline_rows = min(readings, 50_000)
    shifted = [(ts + timedelta(days=1), sid, v) for ts, sid, v in rows[:baseline_rows]]
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


def bench_pipeline(
    settings: Settings, messages: int, per_message: int, progress: Progress
) -> dict[str, Any]:
    """Readings per second from first publish to last commit, through broker and ingester."""
    site = f"bench{uuid.uuid4().hex[:6]}"
    ingester = Ingester(settings)
    thread = threading.Thread(target=ingester.run, name="bench-ingester")
    thread.start()
    try:
        if not ingester.client.subscribed.wait(15):
            raise RuntimeError(f"the ingester did not subscribe at {settings.broker}")
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
        progress(f"pipeline: {messages} messages × {per_message} readings at QoS 1")
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
        started = time.perf_counter()
        infos = [client.publish(topic, body, qos=1) for topic, body in bodies]
        for info in infos:
            info.wait_for_publish(120)
        published_s = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while ingester.stats.readings_stored < total and time.monotonic() < deadline:
            time.sleep(0.01)
        stored_s = time.perf_counter() - started
        client.disconnect()
        client.loop_stop()
        stored = ingester.stats.readings_stored
    finally:
        ingester.stop()
        thread.join(60)
    return {
        "pipeline_messages": messages,
        "pipeline_readings": total,
        "pipeline_stored": stored,
        "pipeline_publish_s": round(published_s, 2),
        "pipeline_readings_per_s": round(stored / stored_s),
        "pipeline_messages_per_s": round(messages / stored_s),
    }

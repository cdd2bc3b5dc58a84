"""``tonle bench edge``: what the edge agent costs a gateway, and how fast its spool moves.

Three measurements, each on the real code:

- **Live**: ``tonle edge --config`` runs as a process of its own with a simulated factory
  paced in real time at the chosen rate (a layout written for the run: machines of four
  electrical metrics each, one reading per metric per interval), publishing to a private
  broker where a plain subscriber counts what arrives. After a warm-up, the process's
  resident memory (``VmRSS``) and CPU time (``utime + stime``) are read from ``/proc``
  once a second over the window.
- **Spool write**: with no broker at all, messages of the size the live run sent are
  appended to a fresh spool one per transaction (``synchronous=full``, WAL, as the agent
  opens it) for a while; the rate is what was committed.
- **Replay**: a spool holding a backlog of such messages is handed to the agent, in
  process and without sources, when the broker is up; the rate is the readings the
  broker acknowledged, from start until the spool is empty, and the subscriber must
  have received every one of them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tonle.errors import TonleError
from tonle.settings import parse_mqtt_url

Progress = Callable[[str], None]

SITE = "bench-edge"
EDGE_ID = "edge-01"
METRICS = (("active_power", "W"), ("current", "A"), ("power_factor", None), ("energy", "Wh"))
_EDGE = (sys.executable, "-c", "from tonle.cli import main; main()", "edge", "--config")
_SPOOL_BYTES = 256 * 1024 * 1024  # the example configuration's max_mb


class EdgeBenchError(TonleError):
    """The edge did not deliver what the benchmark expected."""


@dataclass(frozen=True)
class EdgeBenchSettings:
    """The live rate and window, the spool test's length, the replayed backlog."""

    readings_per_s: float = 100.0
    warmup_s: float = 10.0
    window_s: float = 60.0
    max_readings: int = 50  # batch.max_readings, as in edge.example.yaml
    max_delay_s: float = 1.0  # batch.max_delay_s, as in edge.example.yaml
    spool_s: float = 10.0
    backlog_readings: int = 360_000  # an hour offline at 100 readings/s


def bench_layout(readings_per_s: float) -> tuple[dict[str, Any], int, float]:
    """A simulator layout producing ``readings_per_s``: the layout, machines and interval."""
    machines = max(1, math.ceil(readings_per_s / len(METRICS)))
    interval_s = machines * len(METRICS) / readings_per_s
    layout = {
        "site": SITE,
        "name": "Edge benchmark",
        "lines": [
            {
                "id": "line-1",
                "machines": [
                    {
                        "id": f"m{i + 1:02d}",
                        "kind": "production",
                        "rated_power_w": 1500,
                        "interval_s": interval_s,
                        "metrics": [metric for metric, _ in METRICS],
                    }
                    for i in range(machines)
                ],
            }
        ],
    }
    return layout, machines, interval_s


class Subscriber:
    """A plain MQTT subscriber on the site's telemetry: counts messages and readings."""

    def __init__(self, mqtt_url: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages = 0
        self.readings = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        broker = parse_mqtt_url(mqtt_url)
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-edge-sub")
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_: self._ready.set()
        self._client.on_message = self._on_message
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        if not self._ready.wait(10):
            self.close()
            raise EdgeBenchError(f"could not subscribe at {broker}")

    def _on_connect(self, client: Any, *_: Any) -> None:
        client.subscribe(f"tonle/v1/{SITE}/+/+/telemetry", qos=1)

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        readings = len(json.loads(message.payload)["readings"])
        with self._lock:
            self.messages += 1
            self.readings += readings

    def counts(self) -> tuple[int, int]:
        """(messages, readings) received so far."""
        with self._lock:
            return self.messages, self.readings

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def _proc_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds used, resident bytes) of process ``pid``, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return cpu_s, int(line.split()[1]) * 1024
    return cpu_s, 0


def edge_config(
    mqtt_url: str, spool: Path, sources: list[dict[str, Any]], s: EdgeBenchSettings
) -> dict[str, Any]:
    """An ``edge.yaml`` document for the benchmark."""
    return {
        "site": SITE,
        "edge_id": EDGE_ID,
        "broker": {"url": mqtt_url, "protocol": "3.1.1"},
        "batch": {"max_readings": s.max_readings, "max_delay_s": s.max_delay_s},
        "spool": {"path": str(spool), "max_mb": _SPOOL_BYTES / 1024 / 1024, "synchronous": "full"},
        "sources": sources,
    }


def measure_live(
    mqtt_url: str, settings: EdgeBenchSettings, workdir: Path, progress: Progress
) -> dict[str, Any]:
    """RSS and CPU of ``tonle edge`` at the chosen rate, and what reached the broker."""
    layout, machines, interval_s = bench_layout(settings.readings_per_s)
    layout_path = workdir / "layout.yaml"
    layout_path.write_text(yaml.safe_dump(layout))
    source = {"type": "simulator", "layout": str(layout_path), "seed": 1, "realtime": True}
    config_path = workdir / "edge.yaml"
    config_path.write_text(
        yaml.safe_dump(edge_config(mqtt_url, workdir / "live.spool", [source], settings))
    )
    progress(f"running `tonle edge`: {machines} machines × {len(METRICS)} metrics every "
             f"{interval_s:g} s ({settings.readings_per_s:g} readings/s); warm-up "
             f"{settings.warmup_s:g} s, window {settings.window_s:g} s")  # fmt: skip
    subscriber = Subscriber(mqtt_url)
    log_path = workdir / "edge.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [*_EDGE, str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(settings.warmup_s)
        if process.poll() is not None:
            raise EdgeBenchError(f"`tonle edge` stopped early; its log: {log_path}")
        cpu0, rss = _proc_sample(process.pid)
        got0 = subscriber.counts()
        wall0 = time.monotonic()
        rss_samples = [rss]
        cpu_samples: list[float] = []
        last_cpu, last_wall = cpu0, wall0
        while time.monotonic() - wall0 < settings.window_s:
            time.sleep(1.0)
            cpu, rss = _proc_sample(process.pid)
            now = time.monotonic()
            rss_samples.append(rss)
            cpu_samples.append((cpu - last_cpu) / (now - last_wall) * 100.0)
            last_cpu, last_wall = cpu, now
        cpu1, _ = _proc_sample(process.pid)
        got1 = subscriber.counts()
        window = time.monotonic() - wall0
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        subscriber.close()
    messages, readings = got1[0] - got0[0], got1[1] - got0[1]
    if readings == 0:
        raise EdgeBenchError(f"nothing reached the broker; the edge's log: {log_path}")
    cpu_samples.sort()
    return {
        "live_readings_per_s": round(readings / window, 1),
        "live_readings_per_message": round(readings / max(messages, 1), 1),
        "edge_cpu_pct_mean": round((cpu1 - cpu0) / window * 100.0, 2),
        "edge_cpu_pct_max_1s": round(cpu_samples[-1], 1) if cpu_samples else None,
        "edge_rss_mb_mean": round(sum(rss_samples) / len(rss_samples) / 1e6, 1),
        "edge_rss_mb_max": round(max(rss_samples) / 1e6, 1),
        "live_window_s": round(window, 1),
    }


def _batches(count: int, per_message: int, machines: int) -> list[Any]:
    """``count`` messages of ``per_message`` readings, encoded by the edge's own batcher."""
    from edge.batching import Batcher
    from edge.sources import Sample

    batcher = Batcher(SITE, max_readings=per_message, max_delay_s=3600.0)
    out: list[Any] = []
    ts = datetime(2026, 1, 5, tzinfo=UTC)
    step = 0
    while len(out) < count:
        machine = f"m{step % machines + 1:02d}"
        at = ts + timedelta(seconds=step // machines)
        for metric, unit in METRICS:
            value = 1234.5 + (step % 97) * 0.25
            out.extend(batcher.add(Sample("line-1", machine, metric, at, value, unit), 0.0))
        step += 1
    return out[:count]


def measure_spool_write(
    settings: EdgeBenchSettings, per_message: int, workdir: Path, progress: Progress
) -> dict[str, Any]:
    """Readings per second a fresh spool commits, one message per transaction, no broker."""
    from edge.spool import Spool

    _, machines, _ = bench_layout(settings.readings_per_s)
    batches = _batches(2_000, per_message, machines)
    path = workdir / "write.spool"
    progress(f"appending {per_message}-reading messages to a spool for {settings.spool_s:g} s "
             "(synchronous=full, one message per transaction)")  # fmt: skip
    with Spool(path, max_bytes=_SPOOL_BYTES, synchronous="full") as spool:
        written = 0
        started = time.perf_counter()
        while time.perf_counter() - started < settings.spool_s:
            spool.append([batches[written % len(batches)]])
            written += 1
        elapsed = time.perf_counter() - started
        stored = spool.counts().messages
    if stored != written:
        raise EdgeBenchError(f"appended {written} messages but the spool holds {stored}")
    return {
        "spool_write_messages_per_s": round(written / elapsed),
        "spool_write_readings_per_s": round(written * per_message / elapsed),
        "spool_write_readings_per_message": per_message,
    }


def measure_replay(
    mqtt_url: str,
    settings: EdgeBenchSettings,
    per_message: int,
    workdir: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Readings per second the agent replays from a spool backlog once the broker is there."""
    from edge.agent import EdgeAgent
    from edge.config import parse_config
    from edge.spool import Spool

    _, machines, _ = bench_layout(settings.readings_per_s)
    count = -(-settings.backlog_readings // per_message)
    path = workdir / "replay.spool"
    progress(f"filling a spool with {count:,} messages of {per_message} readings "
             "(the backlog of an edge cut off from its broker)")  # fmt: skip
    with Spool(path, max_bytes=_SPOOL_BYTES, synchronous="full") as spool:
        batches = _batches(count, per_message, machines)
        for first in range(0, count, 1_000):
            spool.append(batches[first : first + 1_000])
    readings = count * per_message
    config = parse_config(edge_config(mqtt_url, path, [{"type": "system"}], settings))
    subscriber = Subscriber(mqtt_url)
    try:
        progress(f"replaying {readings:,} readings to the broker")
        started = time.perf_counter()
        agent = EdgeAgent(config, sources=[]).start()
        try:
            if not agent.wait_drained(600):
                raise EdgeBenchError(f"the backlog did not drain: {agent.stats}")
            elapsed = time.perf_counter() - started
            stats = agent.stats
        finally:
            agent.stop()
        deadline = time.monotonic() + 30
        while subscriber.counts()[1] < readings and time.monotonic() < deadline:
            time.sleep(0.1)
        received = subscriber.counts()[1]
    finally:
        subscriber.close()
    if stats.acked_readings != readings or received < readings:
        raise EdgeBenchError(
            f"replayed {readings} readings: {stats.acked_readings} acknowledged, "
            f"{received} received by the subscriber"
        )
    return {
        "replay_readings": readings,
        "replay_seconds": round(elapsed, 2),
        "replay_readings_per_s": round(readings / elapsed),
        "replay_messages_per_s": round(count / elapsed),
        "replay_received_readings": received,
    }


def run_edge_bench(
    mqtt_url: str, settings: EdgeBenchSettings, progress: Progress
) -> dict[str, Any]:
    """The live, spool-write and replay measurements; the figures."""
    with tempfile.TemporaryDirectory(prefix="tonle-bench-edge-") as tmp:
        workdir = Path(tmp)
        figures: dict[str, Any] = {"target_readings_per_s": settings.readings_per_s}
        figures |= measure_live(mqtt_url, settings, workdir, progress)
        per_message = max(1, round(figures["live_readings_per_message"]))
        figures |= measure_spool_write(settings, per_message, workdir, progress)
        figures |= measure_replay(mqtt_url, settings, per_message, workdir, progress)
    return figures

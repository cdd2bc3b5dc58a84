"""``tonle bench edge``: what the edge agent costs a gateway, and how fast its spool moves.

Four measurements, each on the real code:

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
- **Modbus polling**: a :class:`~simulators.devices.modbus_server.ModbusDeviceServer` in
  this process serves N simulated SDM630 meters (unit ids 1..N) on one Modbus TCP port,
  their values changed once a second by a thread; ``tonle edge --config`` polls all of
  them (every metric of the map) with one ``type: modbus`` source. Over the window, the
  edge's RSS and CPU as for the live run; the readings stamped inside the window that
  reached the broker (every poll complete, and N × metrics × window / interval of them
  within one poll round, else the run fails); and the requests the server counted per
  poll.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tonle.errors import TonleError
from tonle.settings import parse_mqtt_url

if TYPE_CHECKING:
    from simulators.devices.modbus_server import ModbusDeviceServer

Progress = Callable[[str], None]

SITE = "bench-edge"
EDGE_ID = "edge-01"
METRICS = (("active_power", "W"), ("current", "A"), ("power_factor", None), ("energy", "Wh"))
_EDGE = (sys.executable, "-c", "from tonle.cli import main; main()", "edge", "--config")
_SPOOL_BYTES = 256 * 1024 * 1024  # the example configuration's max_mb
MODBUS_MAP = "sdm630"


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
    modbus_meters: int = 10  # 0: no Modbus measurement
    modbus_interval_s: float = 1.0


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
    """A plain MQTT subscriber on the site's telemetry: counts messages and readings.

    Args:
        mqtt_url: the broker.
        stamp_except: if given, also count readings per (topic, timestamp), i.e. per poll
            of a polled device, leaving out these metrics.
    """

    def __init__(self, mqtt_url: str, stamp_except: Collection[str] | None = None) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages = 0
        self.readings = 0
        self._stamp_except = None if stamp_except is None else frozenset(stamp_except)
        self._stamps: Counter[tuple[str, str]] = Counter()
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
        readings = json.loads(message.payload)["readings"]
        with self._lock:
            self.messages += 1
            self.readings += len(readings)
            if self._stamp_except is not None:
                for reading in readings:
                    if reading["metric"] not in self._stamp_except:
                        self._stamps[(message.topic, reading["ts"])] += 1

    def counts(self) -> tuple[int, int]:
        """(messages, readings) received so far."""
        with self._lock:
            return self.messages, self.readings

    def stamped_since(self, at: datetime) -> int:
        """Topics that have delivered a reading stamped at or after ``at``."""
        with self._lock:
            stamps = list(self._stamps)
        return len({topic for topic, ts in stamps if datetime.fromisoformat(ts) >= at})

    def polls_between(self, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
        """Readings per (topic, timestamp) stamped in ``[start, end)``: one entry per poll."""
        with self._lock:
            stamps = dict(self._stamps)
        return {
            key: n for key, n in stamps.items() if start <= datetime.fromisoformat(key[1]) < end
        }

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


class _Usage:
    """CPU and RSS of a process over a window, read from ``/proc`` once a second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0_s, rss = _proc_sample(pid)
        self.wall0 = time.monotonic()
        self.rss_samples = [rss]
        self.cpu_samples: list[float] = []
        self.cpu1_s = self.cpu0_s
        self.window_s = 0.0

    def watch(self, window_s: float) -> _Usage:
        """Sample until ``window_s`` has passed since this object was made."""
        last_cpu, last_wall = self.cpu0_s, self.wall0
        while time.monotonic() - self.wall0 < window_s:
            time.sleep(1.0)
            cpu, rss = _proc_sample(self.pid)
            now = time.monotonic()
            self.rss_samples.append(rss)
            self.cpu_samples.append((cpu - last_cpu) / (now - last_wall) * 100.0)
            last_cpu, last_wall = cpu, now
        self.cpu1_s, _ = _proc_sample(self.pid)
        self.window_s = time.monotonic() - self.wall0
        return self

    def figures(self, prefix: str) -> dict[str, Any]:
        """Mean and highest CPU (% of one core) and RSS (MB), keys starting ``prefix``."""
        highest_cpu = max(self.cpu_samples) if self.cpu_samples else None
        return {
            f"{prefix}_cpu_pct_mean": round((self.cpu1_s - self.cpu0_s) / self.window_s * 100, 2),
            f"{prefix}_cpu_pct_max_1s": None if highest_cpu is None else round(highest_cpu, 1),
            f"{prefix}_rss_mb_mean": round(sum(self.rss_samples) / len(self.rss_samples) / 1e6, 1),
            f"{prefix}_rss_mb_max": round(max(self.rss_samples) / 1e6, 1),
        }


def _start_edge(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``tonle edge --config`` as a process of its own, its output into ``log_path``."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [*_EDGE, str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def _stop_edge(process: subprocess.Popen[bytes]) -> None:
    """Ask the edge to stop (it flushes what it holds), kill it if it does not."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
    process = _start_edge(config_path, log_path)
    try:
        time.sleep(settings.warmup_s)
        if process.poll() is not None:
            raise EdgeBenchError(f"`tonle edge` stopped early; its log: {log_path}")
        usage = _Usage(process.pid)
        got0 = subscriber.counts()
        usage.watch(settings.window_s)
        got1 = subscriber.counts()
    finally:
        _stop_edge(process)
        subscriber.close()
    messages, readings = got1[0] - got0[0], got1[1] - got0[1]
    if readings == 0:
        raise EdgeBenchError(f"nothing reached the broker; the edge's log: {log_path}")
    window = usage.window_s
    return {
        "live_readings_per_s": round(readings / window, 1),
        "live_readings_per_message": round(readings / max(messages, 1), 1),
        **usage.figures("edge"),
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


def _vary_meters(server: ModbusDeviceServer, units: range, stop: threading.Event) -> None:
    """Give every meter new values once a second until ``stop``: mains voltage with noise,
    a load that wanders, energy that adds up what the load drew."""
    rng = random.Random(1)  # noqa: S311 - test values, not secrets
    power_w = {unit: 2_000.0 + 500.0 * unit for unit in units}
    energy_wh = {unit: 1_000_000.0 * unit for unit in units}
    while True:
        for unit in units:
            power_w[unit] = min(20_000.0, max(100.0, power_w[unit] + rng.gauss(0.0, 150.0)))
            energy_wh[unit] += power_w[unit] / 3600.0
            pf = 0.92 + rng.uniform(-0.03, 0.03)
            volts = [230.0 + rng.gauss(0.0, 1.5) for _ in range(3)]
            amps = [power_w[unit] / 3 / (v * pf) for v in volts]
            values = {
                "voltage": sum(volts) / 3,
                "current": sum(amps) / 3,
                "active_power": power_w[unit],
                "power_factor": pf,
                "frequency": 50.0 + rng.gauss(0.0, 0.02),
                "energy": energy_wh[unit],
            }
            for phase in range(3):
                values[f"voltage_l{phase + 1}"] = volts[phase]
                values[f"current_l{phase + 1}"] = amps[phase]
                values[f"active_power_l{phase + 1}"] = power_w[unit] / 3
                values[f"power_factor_l{phase + 1}"] = pf
            server.update(unit, values)
        if stop.wait(1.0):
            return


def modbus_source(port: int, meters: int, interval_s: float) -> dict[str, Any]:
    """The ``type: modbus`` source of the benchmark: every metric of meters 1..``meters``."""
    return {
        "type": "modbus",
        "name": "bench-meters",
        "host": "127.0.0.1",
        "port": port,
        "interval_s": interval_s,
        "devices": [
            {"unit_id": unit, "map": MODBUS_MAP, "line": "line-1", "machine": f"meter-{unit:02d}"}
            for unit in range(1, meters + 1)
        ],
    }


def measure_modbus(
    mqtt_url: str, settings: EdgeBenchSettings, workdir: Path, progress: Progress
) -> dict[str, Any]:
    """RSS and CPU of ``tonle edge`` polling simulated meters; what reached the broker."""
    from edge.modbus.maps import load_map
    from edge.modbus.source import ONLINE_METRIC
    from simulators.devices.modbus_server import ModbusDeviceServer

    meters, interval_s = settings.modbus_meters, settings.modbus_interval_s
    register_map = load_map(MODBUS_MAP)
    metrics = len(register_map.select())
    planned_requests = len(register_map.plan())
    units = range(1, meters + 1)
    log_path = workdir / "edge-modbus.log"
    progress(f"running `tonle edge` polling {meters} simulated {MODBUS_MAP} meters "
             f"({metrics} metrics each) every {interval_s:g} s over Modbus TCP; warm-up "
             f"{settings.warmup_s:g} s, window {settings.window_s:g} s")  # fmt: skip
    with contextlib.ExitStack() as cleanup:  # unwound last in, first out
        server = cleanup.enter_context(ModbusDeviceServer([(u, MODBUS_MAP) for u in units]))
        stop = threading.Event()
        varier = threading.Thread(
            target=_vary_meters, args=(server, units, stop), name="bench-meter-values"
        )
        varier.start()
        cleanup.callback(varier.join)
        cleanup.callback(stop.set)
        source = modbus_source(server.port, meters, interval_s)
        config_path = workdir / "edge-modbus.yaml"
        config_path.write_text(
            yaml.safe_dump(edge_config(mqtt_url, workdir / "modbus.spool", [source], settings))
        )
        subscriber = Subscriber(mqtt_url, stamp_except={ONLINE_METRIC})
        cleanup.callback(subscriber.close)
        process = _start_edge(config_path, log_path)
        cleanup.callback(_stop_edge, process)
        time.sleep(settings.warmup_s)
        if process.poll() is not None:
            raise EdgeBenchError(f"`tonle edge` stopped early; its log: {log_path}")
        usage = _Usage(process.pid)
        start, requests0, got0 = datetime.now(UTC), server.requests(), subscriber.counts()
        usage.watch(settings.window_s)
        end, requests1, got1 = datetime.now(UTC), server.requests(), subscriber.counts()
        # Readings stamped before the end may still wait in a batch; each meter's
        # messages arrive in order, so once every meter has sent one stamped after the
        # end, the window is complete.
        deadline = time.monotonic() + settings.max_delay_s + interval_s + 5.0
        while subscriber.stamped_since(end) < meters and time.monotonic() < deadline:
            time.sleep(0.05)
        polls = subscriber.polls_between(start, end)
    try:
        checked = poll_figures(
            list(polls.values()),
            requests1 - requests0,
            meters=meters,
            metrics=metrics,
            planned_requests=planned_requests,
            interval_s=interval_s,
            window_s=(end - start).total_seconds(),
        )
    except EdgeBenchError as exc:
        raise EdgeBenchError(f"{exc}; the edge's log: {log_path}") from None
    messages, readings = got1[0] - got0[0], got1[1] - got0[1]
    return {
        "modbus_meters": meters,
        "modbus_interval_s": interval_s,
        "modbus_metrics_per_meter": metrics,
        **checked,
        "modbus_readings_per_message": round(readings / max(messages, 1), 1),
        **usage.figures("modbus"),
    }


def poll_figures(
    polls: Collection[int],
    requests: int,
    *,
    meters: int,
    metrics: int,
    planned_requests: int,
    interval_s: float,
    window_s: float,
) -> dict[str, Any]:
    """Rates of the polls seen in a window; EdgeBenchError if readings or polls are missing.

    Args:
        polls: readings that reached the broker, one count per poll stamped in the window.
        requests: read requests the simulated meters answered in the window.
        meters: meters polled.
        metrics: metrics per meter; every poll must bring all of them.
        planned_requests: read requests per poll of a meter, as its map plans them.
        interval_s: between polls of each meter.
        window_s: the window's length.
    """
    readings = sum(polls)
    expected = meters * metrics * window_s / interval_s
    incomplete = sum(1 for n in polls if n != metrics)
    # The window's edges fall anywhere in a poll round: one round either way is no loss.
    if incomplete or abs(readings - expected) > meters * metrics:
        raise EdgeBenchError(
            f"{readings} readings from {len(polls)} polls ({incomplete} incomplete) reached "
            f"the broker in {window_s:.1f} s; {expected:.0f} expected, give or take "
            f"{meters * metrics}"
        )
    # Requests are counted when asked, polls stamped when answered: a round may straddle.
    if abs(requests - len(polls) * planned_requests) > meters * planned_requests:
        raise EdgeBenchError(
            f"the meters answered {requests} requests for {len(polls)} polls, "
            f"{planned_requests} per poll planned"
        )
    return {
        "modbus_polls_per_s": round(len(polls) / window_s, 2),
        "modbus_readings_per_s": round(readings / window_s, 1),
        "modbus_expected_readings_per_s": round(meters * metrics / interval_s, 1),
        "modbus_requests_per_poll": round(requests / max(len(polls), 1), 3),
        "modbus_window_s": round(window_s, 1),
    }


def run_edge_bench(
    mqtt_url: str, settings: EdgeBenchSettings, progress: Progress
) -> dict[str, Any]:
    """The live, spool-write, replay and Modbus measurements; the figures."""
    with tempfile.TemporaryDirectory(prefix="tonle-bench-edge-") as tmp:
        workdir = Path(tmp)
        figures: dict[str, Any] = {"target_readings_per_s": settings.readings_per_s}
        figures |= measure_live(mqtt_url, settings, workdir, progress)
        per_message = max(1, round(figures["live_readings_per_message"]))
        figures |= measure_spool_write(settings, per_message, workdir, progress)
        figures |= measure_replay(mqtt_url, settings, per_message, workdir, progress)
        if settings.modbus_meters > 0:
            figures |= measure_modbus(mqtt_url, settings, workdir, progress)
    return figures

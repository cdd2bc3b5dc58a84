"""One path of ``tonle bench ingest``: edges → broker → consumer processes → PostgreSQL.

The consumers (``tonle ingest`` processes, or the naive reference) run as real
subprocesses. The rate is the rows committed in a window after a warm-up (``count(*)``
at both ends), with the consumers' CPU time (utime + stime from ``/proc``) over the same
window. With a target rate, each message's publish → visible-in-database latency is
measured too: a poller looks every 10 ms for the message's row in ``edge_messages``,
which commits in the same transaction as its readings.

The edges never run more than about two seconds of work ahead of what is stored, so the
broker always has a backlog to deliver but never an unbounded one; when publishing
stops, the backlog is drained and the path must have stored exactly what was
published, or :class:`BenchError` is raised.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import psycopg

from ingest.bench_edges import METRICS, Fleet, run_edge
from ingest.store import Store
from tonle.errors import TonleError
from tonle.settings import Settings

Progress = Callable[[str], None]

TONLE_INGEST = (sys.executable, "-c", "from tonle.cli import main; main()", "ingest")
_POLL_S = 0.01  # latency poll interval
_FEED_S = 0.1  # how often the edges' allowance is renewed
_BACKLOG_S = 2.0  # the edges run this far ahead of what is stored
_START_TIMEOUT_S = 60.0
_DRAIN_TIMEOUT_S = 120.0


class BenchError(TonleError):
    """A benchmark could not run, or a path did not store exactly what was published."""


@dataclass
class _EdgeHandles:
    process: mp.process.BaseProcess
    allowed: Synchronized[int]  # messages the edge may have published so far


# -------------------------------------------------------------- the consumers


@dataclass
class Consumer:
    """An ingester process under test and where its log goes."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def wait_ready(self, marker: str = "subscribed", timeout_s: float = _START_TIMEOUT_S) -> None:
        """Wait until the process logs ``marker`` (its subscription is in place)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if marker in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError(f"{self.process.args!r} did not subscribe; its log: {self.log_path}")

    def cpu_s(self) -> float:
        """User + system CPU seconds the process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM (the ingester flushes and acknowledges what it holds), then wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_consumer(command: Sequence[str], env: dict[str, str], log_path: Path) -> Consumer:
    """Start ``command`` with ``env`` added to this environment, logging to ``log_path``."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 - argv built by the caller, no shell
            list(command),
            env=os.environ | env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return Consumer(process, log_path)


def tonle_ingesters(
    settings: Settings, site: str, processes: int, logs: Path
) -> Callable[[], list[Consumer]]:
    """Starts ``processes`` × ``tonle ingest`` sharing one subscription group of their own."""

    def start() -> list[Consumer]:
        env = {
            "TONLE_DATABASE_URL": settings.database_url,
            "TONLE_MQTT_URL": settings.mqtt_url,
            "TONLE_LOG_LEVEL": "INFO",
            "TONLE_INGEST__GROUP": site,
            "TONLE_INGEST__PROTOCOL": settings.ingest.protocol,
            # Sessions end with the process, so a finished run's ingesters never keep a
            # share of the next run's messages.
            "TONLE_INGEST__SESSION_EXPIRY_S": "0",
        }
        command = [*TONLE_INGEST, "--no-migrate"]
        return [
            start_consumer(
                command,
                env | {"TONLE_INGEST__CLIENT_ID": f"{site}-ingest{i}"},
                logs / f"{site}-ingest-{i}.log",
            )
            for i in range(processes)
        ]

    return start


# --------------------------------------------------------------- measurement


@dataclass
class PathResult:
    """What one path stored, read back from the database."""

    readings_per_s: float
    window_s: float
    window_readings: int
    cpu_s_per_100k: float | None
    published: int
    stored: int
    latencies_s: list[float] = field(default_factory=list)


class BenchDatabase:
    """The benchmark's own connection: registry, counts and polls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def register(self, fleet: Fleet) -> list[int]:
        """Register the fleet's sensors (as the ingester would on first sight); their ids."""
        store = Store(self.url)
        store.connect()
        keys = fleet.sensor_keys()
        store.register(keys, create=True)
        ids = [sensor.id for key, _ in keys if (sensor := store.known(key)) is not None]
        store.close()
        return ids

    def count(self, sensor_ids: list[int]) -> int:
        """Readings committed for these sensors, as of the statement's snapshot."""
        row = self.conn.execute(
            "SELECT count(*) FROM readings WHERE sensor_id = ANY(%s)", (sensor_ids,)
        ).fetchone()
        return int(str(row[0])) if row else 0

    def latest_ms(self, sensor_ids: list[int]) -> list[float | None]:
        """The newest reading's epoch ms per sensor (an index probe each)."""
        rows = self.conn.execute(
            "SELECT (SELECT extract(epoch FROM max(ts)) * 1000 FROM readings WHERE sensor_id = s)"
            " FROM unnest(%s::int[]) WITH ORDINALITY AS u(s, n) ORDER BY n",
            (sensor_ids,),
        ).fetchall()
        return [None if r[0] is None else float(str(r[0])) for r in rows]

    def close(self) -> None:
        self.conn.close()


class _Feeder(threading.Thread):
    """Keeps each edge about ``_BACKLOG_S`` of work ahead of what is stored."""

    def __init__(self, db_url: str, fleet: Fleet, edges: list[_EdgeHandles], probes: list[int]):
        super().__init__(name="bench-feeder", daemon=True)
        self._db = BenchDatabase(db_url)
        self._fleet = fleet
        self._edges = edges
        self._probes = probes  # one sensor of every machine, in machine order
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.stored_any = threading.Event()

    def run(self) -> None:
        try:
            history: deque[tuple[float, int]] = deque(maxlen=20)
            fleet = self._fleet
            steps = fleet.per_message // len(METRICS)
            while not self.stop.wait(_FEED_S):
                # A machine's messages commit in order (nearly, with two ingesters), so
                # its newest reading says how many of its messages are stored.
                stored = [
                    0 if latest is None else (round(latest) - fleet.base_ms) // steps + 1
                    for latest in self._db.latest_ms(self._probes)
                ]
                done = [
                    sum(stored[e * fleet.machines : (e + 1) * fleet.machines])
                    for e in range(fleet.edges)
                ]
                if any(done):
                    self.stored_any.set()
                now, total = time.monotonic(), sum(done)
                history.append((now, total))
                rate = (total - history[0][1]) / max(now - history[0][0], 1e-9)
                ahead = max(2, int(rate * _BACKLOG_S / fleet.edges))
                for handles, edge_done in zip(self._edges, done, strict=True):
                    handles.allowed.value = edge_done + ahead
        except Exception as exc:  # noqa: BLE001 - the caller raises it as a BenchError
            self.error = exc
        finally:
            self._db.close()


class _LatencyPoller(threading.Thread):
    """Notes when each message's ``edge_messages`` row first becomes visible."""

    _QUERY = """
        SELECT e.edge_id, m.seq FROM unnest(%s::text[], %s::bigint[]) AS e(edge_id, low)
        CROSS JOIN LATERAL (SELECT seq FROM edge_messages
                            WHERE site = %s AND edge_id = e.edge_id AND seq >= e.low) AS m
    """

    def __init__(self, db_url: str, fleet: Fleet) -> None:
        super().__init__(name="bench-latency", daemon=True)
        self._db = BenchDatabase(db_url)
        self._fleet = fleet
        self.seen: dict[tuple[str, int], float] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        edges = [self._fleet.edge_id(e) for e in range(self._fleet.edges)]
        low = dict.fromkeys(edges, 0)
        try:
            while not self.stop.wait(_POLL_S):
                rows = self._db.conn.execute(
                    self._QUERY, (edges, [low[e] for e in edges], self._fleet.site)
                ).fetchall()
                polled_at = time.time()  # the rows were visible by now: an upper bound
                for edge_id, seq in rows:
                    self.seen.setdefault((str(edge_id), int(str(seq))), polled_at)
                for edge_id in edges:
                    while (edge_id, low[edge_id]) in self.seen:
                        low[edge_id] += 1
        except Exception as exc:  # noqa: BLE001 - the caller raises it as a BenchError
            self.error = exc
        finally:
            self._db.close()


def measure_path(
    settings: Settings,
    fleet: Fleet,
    start_consumers: Callable[[], list[Consumer]],
    seconds: float,
    progress: Progress,
    *,
    warmup_s: float = 3.0,
    rate_readings_s: float | None = None,
) -> PathResult:
    """Feed ``fleet`` through the consumers; the stored rate over ``seconds`` after warm-up.

    With ``rate_readings_s`` the edges publish at that rate instead of at full speed, and
    each message's publish → visible-in-database latency is measured.
    """
    db = BenchDatabase(settings.database_url)
    sensor_ids = db.register(fleet)
    probes = sensor_ids[:: len(METRICS)]  # each machine's first metric
    consumers = start_consumers()
    ctx = mp.get_context("spawn")
    stop_edges = ctx.Event()
    results = ctx.Queue()
    edges: list[_EdgeHandles] = []
    feeder: _Feeder | None = None
    poller = _LatencyPoller(settings.database_url, fleet) if rate_readings_s else None
    try:
        for consumer in consumers:
            consumer.wait_ready()
        rate_msgs_s = rate_readings_s / fleet.per_message / fleet.edges if rate_readings_s else None
        for edge in range(fleet.edges):
            allowed: Synchronized[int] = ctx.Value("q", 2)
            process = ctx.Process(
                target=run_edge,
                args=(settings.mqtt_url, fleet, edge, allowed, stop_edges, rate_msgs_s, results),
                name=f"bench-edge-{edge}",
            )
            process.start()
            edges.append(_EdgeHandles(process, allowed))
        feeder = _Feeder(settings.database_url, fleet, edges, probes)
        feeder.start()
        if poller is not None:
            poller.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not feeder.stored_any.wait(0.1):
            _check(feeder, consumers, deadline, "no readings were stored")
        time.sleep(warmup_s)
        progress(f"  measuring {fleet.site} for {seconds:g} s")
        cpu0, t0 = _cpu(consumers), time.monotonic()
        count0 = db.count(sensor_ids)
        time.sleep(seconds)
        cpu1, t1 = _cpu(consumers), time.monotonic()
        count1 = db.count(sensor_ids)
        stop_edges.set()
        sent = _collect(results, edges)
        published = sum(len(times) for times in sent.values()) * fleet.per_message
        stored = _drain(db, sensor_ids, published, consumers)
        if poller is not None:
            deadline = time.monotonic() + _DRAIN_TIMEOUT_S
            while len(poller.seen) < published // fleet.per_message:
                _check(poller, consumers, deadline, "messages never became visible")
                time.sleep(_POLL_S)
    finally:
        stop_edges.set()
        for handles in edges:
            handles.process.join(30)
            if handles.process.is_alive():
                handles.process.kill()
                handles.process.join()
        for thread in (feeder, poller):
            if thread is not None and thread.is_alive():
                thread.stop.set()
                thread.join()
        for consumer in consumers:
            consumer.stop()
        db.close()
    window = count1 - count0
    latencies: list[float] = []
    if poller is not None:
        cutoff = min(min(times) for times in sent.values() if times) + warmup_s
        for edge, times in sent.items():
            for seq, sent_at in enumerate(times):
                if sent_at >= cutoff:
                    latencies.append(poller.seen[(fleet.edge_id(edge), seq)] - sent_at)
    return PathResult(
        readings_per_s=window / (t1 - t0),
        window_s=t1 - t0,
        window_readings=window,
        cpu_s_per_100k=(
            None if cpu0 is None or cpu1 is None or window <= 0 else (cpu1 - cpu0) / window * 1e5
        ),
        published=published,
        stored=stored,
        latencies_s=latencies,
    )


def _cpu(consumers: list[Consumer]) -> float | None:
    try:
        return sum(consumer.cpu_s() for consumer in consumers)
    except OSError:  # no /proc (not Linux): no CPU figure
        return None


def _check(
    thread: _Feeder | _LatencyPoller, consumers: list[Consumer], deadline: float, what: str
) -> None:
    if thread.error is not None:
        raise BenchError(f"the benchmark's {thread.name} failed: {thread.error}")
    for consumer in consumers:
        if consumer.process.poll() is not None:
            raise BenchError(f"{consumer.process.args!r} exited; its log: {consumer.log_path}")
    if time.monotonic() > deadline:
        logs = ", ".join(str(c.log_path) for c in consumers)
        raise BenchError(f"{what} in time; logs: {logs}")


def _collect(results: Any, edges: list[_EdgeHandles]) -> dict[int, list[float]]:
    """Each edge's publish times, in sequence order."""
    sent: dict[int, list[float]] = {}
    deadline = time.monotonic() + 60
    while len(sent) < len(edges):
        with contextlib.suppress(Exception):
            edge, times = results.get(timeout=0.5)
            sent[edge] = times
            continue
        dead = [h for h in edges if h.process.exitcode not in (None, 0)]
        if dead or time.monotonic() > deadline:
            raise BenchError("a simulated edge failed before reporting what it published")
    return sent


def _drain(
    db: BenchDatabase, sensor_ids: list[int], published: int, consumers: list[Consumer]
) -> int:
    """Wait until everything published is stored; fail if more, or if it never is."""
    deadline = time.monotonic() + _DRAIN_TIMEOUT_S
    while (stored := db.count(sensor_ids)) < published and time.monotonic() < deadline:
        for consumer in consumers:
            if consumer.process.poll() is not None:
                raise BenchError(f"{consumer.process.args!r} exited; log: {consumer.log_path}")
        time.sleep(0.2)
    if stored != published:
        raise BenchError(f"published {published} readings but {stored} were stored")
    return stored

"""The ingest loop: deliveries → decode → batch → one transaction → acknowledge.

At-least-once end to end, stored exactly once: a message is acknowledged only after
the transaction holding it has committed, and the unique key absorbs redeliveries.
When PostgreSQL is unreachable the loop stops acknowledging and retries with capped,
jittered backoff; the broker holds what is not acknowledged, so nothing is lost.

Two stages overlap: the calling thread decodes messages and assembles the next batch
while a writer thread commits the previous one (at most one batch waits between them),
so Python's decoding and PostgreSQL's work run side by side. On plain PostgreSQL a third
thread keeps the roll-ups current and applies retention, on a connection of its own, so
upkeep never holds up a commit.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from ingest.decode import (
    Decoded,
    EdgeStatus,
    Incoming,
    Limits,
    Rejected,
    Telemetry,
    decode,
    printable,
)
from ingest.mqtt import Delivery, IngestClient
from ingest.store import Batch, BatchRefused, SensorKey, Store, WriteResult
from tonle.db.maintenance import apply_retention, refresh_rollups
from tonle.errors import StoreError
from tonle.settings import Settings

log = logging.getLogger(__name__)

_RETENTION_EVERY_S = 3_600.0
_REPORT_EVERY_S = 10.0
_GIVE_UP_WHEN_STOPPING_AFTER = 2  # failed attempts; then exit leaving the batch unacknowledged
# Which site each provisioned edge belongs to is reloaded this often, and sooner (but at
# most this often) when a message names an edge the cache does not place at its site.
EDGE_SITES_REFRESH_S = 60.0
EDGE_SITES_RECHECK_S = 5.0


@dataclass
class IngestStats:
    """Running totals, logged periodically and returned at exit."""

    messages: int = 0
    readings_stored: int = 0
    readings_duplicate: int = 0
    dead_letters: int = 0
    batches: int = 0
    store_failures: int = 0
    acks_skipped: int = 0
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class _Pending:
    """A batch being assembled or committed, and the deliveries it will acknowledge."""

    batch: Batch = field(default_factory=Batch)
    deliveries: list[Delivery] = field(default_factory=list)
    readings: int = 0
    opened_at: float = 0.0


def backoff_s(attempt: int, cap_s: float, rng: random.Random) -> float:
    """Capped exponential backoff with jitter: about 0.5, 1, 2, 4 … s, at most ``cap_s``."""
    ceiling = min(cap_s, 0.5 * 2 ** min(attempt, 16))
    return rng.uniform(ceiling / 2, ceiling)


class Ingester:
    """Runs the decode stage in the calling thread and the commit stage in a thread of its own.

    Call :meth:`run` to consume until :meth:`stop` is called (from another thread or a
    signal handler); it flushes and acknowledges what it holds before returning.
    """

    def __init__(self, settings: Settings, *, client: IngestClient | None = None) -> None:
        self._settings = settings
        self._cfg = settings.ingest
        self._limits = Limits(
            max_future=timedelta(seconds=self._cfg.max_future_s),
            min_ts=datetime(self._cfg.min_year, 1, 1, tzinfo=UTC),
        )
        self.client = client or IngestClient(settings.broker, self._cfg)
        self.registry = Store(settings.database_url)  # decode stage: sensor look-ups
        self.store = Store(settings.database_url)  # commit stage: batches
        self.upkeep_store = Store(settings.database_url)  # roll-ups and retention
        self.stats = IngestStats()
        self._stop = threading.Event()
        self._rng = random.Random()  # noqa: S311 - jitter, not security
        self._pending = _Pending()
        self._handoff: queue.Queue[_Pending | None] = queue.Queue(maxsize=1)
        self._writer_error: BaseException | None = None
        self._upkeep_wake = threading.Event()

    def stop(self) -> None:
        """Ask the loop to flush what it holds, acknowledge it, and return."""
        self._stop.set()
        self._upkeep_wake.set()

    def refresh_soon(self) -> None:
        """Refresh the roll-ups now rather than at the next interval (native mode)."""
        self._upkeep_wake.set()

    # --------------------------------------------------------------- decode stage

    def run(self) -> IngestStats:
        """Consume until stopped; return the totals."""
        self._connect(self.store)
        self._connect(self.registry)
        writer = threading.Thread(target=self._write_loop, name="ingest-writer")
        writer.start()
        upkeep = threading.Thread(target=self._upkeep_loop, name="ingest-upkeep")
        if self.store.mode == "native":
            upkeep.start()
        try:
            self.client.start()  # inside the try: a refusal here still stops the threads
            self._decode_loop()
            # Stopping: take what was already delivered, commit it, acknowledge it.
            self._consume(timeout_s=0.0, drain=True)
            self._hand_off()
        finally:
            self.stop()
            self._finish_writer(writer)
            if upkeep.ident is not None:
                upkeep.join()
            self.client.stop()
            self.store.close()
            self.registry.close()
            self.upkeep_store.close()
        if self._writer_error is not None:
            raise self._writer_error
        log.info(
            "stopped: %d messages, %d readings stored, %d duplicates, %d dead letters",
            self.stats.messages,
            self.stats.readings_stored,
            self.stats.readings_duplicate,
            self.stats.dead_letters,
        )
        return self.stats

    def _decode_loop(self) -> None:
        last_report, reported = time.monotonic(), 0
        while not self._stop.is_set():
            if self.client.fatal is not None:
                raise self.client.fatal
            if self._writer_error is not None:
                return
            self._consume(timeout_s=self._time_left_s())
            if self._due():
                self._hand_off()
            now = time.monotonic()
            if now - last_report >= _REPORT_EVERY_S:
                stored = self.stats.readings_stored
                log.info(
                    "stored %d readings (%.0f/s), %d duplicates, %d dead letters, %d messages",
                    stored,
                    (stored - reported) / (now - last_report),
                    self.stats.readings_duplicate,
                    self.stats.dead_letters,
                    self.stats.messages,
                )
                last_report, reported = now, stored

    def _time_left_s(self) -> float:
        if not self._pending.deliveries:
            return 0.2
        waited = time.monotonic() - self._pending.opened_at
        return max(0.0, min(0.2, self._cfg.max_delay_s - waited))

    def _due(self) -> bool:
        pending = self._pending
        if not pending.deliveries:
            return False
        return (
            pending.readings >= self._cfg.batch_size
            or time.monotonic() - pending.opened_at >= self._cfg.max_delay_s
        )

    def _consume(self, timeout_s: float, *, drain: bool = False) -> None:
        """Move deliveries from the client's queue into the pending batch."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if drain:
                    delivery = self.client.deliveries.get(block=False)
                else:
                    delivery = self.client.deliveries.get(
                        timeout=max(0.0, deadline - time.monotonic())
                    )
            except queue.Empty:
                return
            self._add(delivery)
            if not drain and self._pending.readings >= self._cfg.batch_size:
                return

    def _hand_off(self) -> None:
        """Give the pending batch to the writer, waiting while it commits the previous one."""
        pending, self._pending = self._pending, _Pending()
        if not pending.deliveries:
            return
        while self._writer_error is None:
            try:
                self._handoff.put(pending, timeout=0.5)
                return
            except queue.Full:
                continue

    def _add(self, delivery: Delivery) -> None:
        pending = self._pending
        if not pending.deliveries:
            pending.opened_at = time.monotonic()
        pending.deliveries.append(delivery)
        self.stats.messages += 1
        message = delivery.message
        try:
            decoded: Decoded = decode(message, self._limits)
        except Exception as exc:  # one bad message must not stop the ingester
            log.exception("the decoder failed on a message from %s", printable(message.topic))
            decoded = Rejected(
                message.topic, message.payload, f"the decoder failed ({type(exc).__name__})"
            )
        if isinstance(decoded, Telemetry | EdgeStatus):
            decoded = self._check_edge_site(decoded, message)
        if isinstance(decoded, Telemetry):
            decoded = self._resolve(decoded, message)
        if isinstance(decoded, Rejected):
            topic, reason = printable(message.topic), printable(decoded.reason)
            pending.batch.dead_letters.append((message.received_at, topic, message.payload, reason))
            log.warning("dead letter from %s: %s", topic, reason)
        elif isinstance(decoded, EdgeStatus):
            pending.batch.statuses.append(
                (decoded.site, decoded.edge_id, decoded.status, decoded.at)
            )

    def _check_edge_site(
        self, decoded: Telemetry | EdgeStatus, message: Incoming
    ) -> Telemetry | EdgeStatus | Rejected:
        """Reject a message from a provisioned edge on another site's topic.

        An edge that is not provisioned (no ``edge_credentials`` row: a simulator, an edge
        set up by hand) passes, in strict mode too; the broker's ACL is what keeps it on
        its own site's topics.
        """
        if isinstance(decoded, Telemetry):
            site, edge_id = decoded.site, decoded.payload.edge
        else:
            site, edge_id = decoded.site, decoded.edge_id
        registry = self.registry
        sites = registry.edge_sites(edge_id)
        age_s = registry.edge_sites_age_s
        if age_s > EDGE_SITES_REFRESH_S or (site not in sites and age_s > EDGE_SITES_RECHECK_S):
            self._with_registry(registry.load_edge_sites)
            sites = registry.edge_sites(edge_id)
        if not sites or site in sites:
            return decoded
        return Rejected(
            message.topic,
            message.payload,
            f"edge {edge_id} is registered to site {', '.join(sorted(sites))}, not {site}",
        )

    def _resolve(self, telemetry: Telemetry, message: Incoming) -> Telemetry | Rejected:
        """Map readings to sensor ids (registering new sensors unless strict); add the rows."""
        site, line, machine = telemetry.site, telemetry.line, telemetry.machine
        wanted: dict[SensorKey, str | None] = {}
        for reading in telemetry.payload.readings:
            key = (site, line, machine, reading.metric)
            wanted[key] = wanted.get(key) or reading.unit
        self._register(wanted)
        ids: dict[str, int] = {}
        for key, unit in wanted.items():
            sensor = self.registry.known(key)
            if sensor is None:
                return Rejected(
                    message.topic,
                    message.payload,
                    f"unknown sensor {'/'.join(key)} (strict mode: register it first)",
                )
            if unit is not None and sensor.unit is not None and unit != sensor.unit:
                return Rejected(
                    message.topic,
                    message.payload,
                    f"metric {key[3]} arrives in {unit!r} but the sensor is registered in "
                    f"{sensor.unit!r}",
                )
            ids[key[3]] = sensor.id
        payload = telemetry.payload
        pending = self._pending
        pending.batch.rows.extend((r.ts, ids[r.metric], r.value) for r in payload.readings)
        pending.readings += len(payload.readings)
        pending.batch.messages.append(
            (
                site,
                payload.edge,
                payload.seq,
                message.received_at,
                payload.buffered,
                len(payload.readings),
            )
        )
        return telemetry

    def _register(self, wanted: dict[SensorKey, str | None]) -> None:
        """Register sensors, waiting out a database outage (nothing is acknowledged meanwhile)."""
        self._with_registry(
            lambda: self.registry.register(wanted.items(), create=not self._cfg.strict)
        )

    def _with_registry(self, action: Callable[[], None]) -> None:
        """Run a registry action, retrying through a database outage (nothing is acknowledged)."""
        attempt = 0
        while True:
            try:
                action()
                return
            except StoreError as exc:
                if self._stop.is_set():
                    raise  # stopping: nothing of the pending batch was acknowledged
                delay = backoff_s(attempt, self._cfg.backoff_max_s, self._rng)
                log.warning("%s; retrying in %.1f s (nothing acknowledged)", exc, delay)
                attempt += 1
                time.sleep(delay)
                self._reconnect_quietly(self.registry)

    # --------------------------------------------------------------- commit stage

    def _write_loop(self) -> None:
        try:
            while True:
                pending = self._handoff.get()
                if pending is None:
                    return
                self._commit(pending)
        except BaseException as exc:  # handed to the decode stage, which re-raises it
            log.exception("the ingest writer failed")
            self._writer_error = exc

    def _finish_writer(self, writer: threading.Thread) -> None:
        while writer.is_alive():
            try:
                self._handoff.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        writer.join()

    def _commit(self, pending: _Pending) -> None:
        """Commit one batch (retrying until it commits), then acknowledge its messages."""
        attempt = 0
        while True:
            try:
                result = self.store.write(pending.batch)
                break
            except BatchRefused as exc:
                log.error(
                    "%s; storing its %d messages as dead letters", exc, len(pending.deliveries)
                )
                pending.batch = Batch(
                    dead_letters=[
                        (
                            d.message.received_at,
                            printable(d.message.topic),
                            d.message.payload,
                            printable(str(exc)[:500]),
                        )
                        for d in pending.deliveries
                    ]
                )
            except StoreError as exc:
                self.stats.store_failures += 1
                if self._stop.is_set() and attempt >= _GIVE_UP_WHEN_STOPPING_AFTER:
                    log.error(
                        "stopping with %d messages unacknowledged (the broker keeps them): %s",
                        len(pending.deliveries),
                        exc,
                    )
                    return
                delay = backoff_s(attempt, self._cfg.backoff_max_s, self._rng)
                log.warning("%s; retrying in %.1f s (nothing acknowledged)", exc, delay)
                attempt += 1
                time.sleep(delay)
                self._reconnect_quietly(self.store)
        self._count(result, pending.batch)
        for delivery in pending.deliveries:
            if not self.client.ack(delivery):
                self.stats.acks_skipped += 1

    def _count(self, result: WriteResult, batch: Batch) -> None:
        self.stats.batches += 1
        self.stats.readings_stored += result.readings_stored
        self.stats.readings_duplicate += result.readings_duplicate
        self.stats.dead_letters += result.dead_letters
        for _, _, _, reason in batch.dead_letters:
            self.stats.dead_letter_reasons[reason.split(":")[0][:60]] += 1

    # ------------------------------------------------------------------- upkeep

    def _upkeep_loop(self) -> None:
        """Native mode: keep roll-ups current and apply retention, until stopped."""
        next_retention = 0.0
        while not self._stop.is_set():
            try:
                if not self.upkeep_store.connected:
                    self.upkeep_store.connect()
                while refresh_rollups(self.upkeep_store.conn) and not self._stop.is_set():
                    pass
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + _RETENTION_EVERY_S
                    apply_retention(self.upkeep_store.conn, self._settings.db.retention_days)
            except (StoreError, psycopg.Error) as exc:
                log.warning("roll-up refresh failed (will retry): %s", exc)
                self.upkeep_store.close()
            self._upkeep_wake.wait(self._settings.db.rollup_refresh_s)
            self._upkeep_wake.clear()

    # ---------------------------------------------------------------- connections

    def _connect(self, store: Store) -> None:
        attempt = 0
        while True:
            try:
                store.connect()
                return
            except StoreError as exc:
                if "tonle db migrate" in str(exc) or self._stop.is_set():
                    raise
                delay = backoff_s(attempt, self._cfg.backoff_max_s, self._rng)
                log.warning("%s; retrying in %.1f s", exc, delay)
                attempt += 1
                time.sleep(delay)

    def _reconnect_quietly(self, store: Store) -> None:
        try:
            store.connect()
        except StoreError as exc:
            log.debug("still no PostgreSQL: %s", exc)


def stop_when_set(event: threading.Event, ingester: Ingester) -> threading.Thread:
    """A daemon thread that stops ``ingester`` once ``event`` is set (by a signal handler)."""

    def watch() -> None:
        event.wait()
        ingester.stop()

    thread = threading.Thread(target=watch, name="ingest-stop", daemon=True)
    thread.start()
    return thread

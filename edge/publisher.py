"""Draining the spool to the broker: seq order, a bounded window, delete on PUBACK.

The publisher owns the MQTT link and runs on a thread of its own, driven by one queue
of events: what paho reported (connected, disconnected, acknowledged) and what the
batcher did (appended to the spool). While connected it keeps at most ``window``
QoS 1 messages unacknowledged; a message leaves the spool only when its PUBACK
arrives. When the connection drops it publishes nothing new; paho resends what was
in flight when it reconnects, and the publisher carries on after the last seq it
handed over, so nothing is sent twice by us.

A PUBACK saying "no matching subscribers" (MQTT 5 reason 0x10) means the broker took
the message and threw it away: no ingester was subscribed, or the broker restarted
without restoring the ingester's shared subscription. Such a message stays in the spool
and is sent again, as a replay, after a growing pause; nothing is lost while nobody
listens.

``buffered`` marks a message that waited for the broker: spooled while it was known
to be away (a connection attempt had failed or the connection had dropped), waiting
in the spool when the connection dropped, or left over from an earlier run. What is
spooled during the very first connection attempt is not buffered unless that attempt
fails.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.batching import Batch
from edge.mqtt import Acked, Connected, Disconnected, MqttLink, Refused, Unreachable
from edge.spool import Spool
from tonle.errors import BrokerError, TonleError

log = logging.getLogger(__name__)

_FETCH_LIMIT = 500  # spool rows read per query
_IDLE_WAIT_S = 0.5
_UNROUTED_FIRST_RETRY_S = 2.0


@dataclass(frozen=True, slots=True)
class Appended:
    """The batcher put new messages in the spool."""


@dataclass(frozen=True, slots=True)
class Closing:
    """Stop: publish what is left until ``deadline_s`` (monotonic), then say offline."""

    deadline_s: float


@dataclass(frozen=True, slots=True)
class _InFlight:
    seq: int
    readings: int


class Publisher:
    """Moves messages from the spool to the broker and deletes them once acknowledged.

    Args:
        spool: where the messages wait.
        link: the MQTT connection (not yet started).
        events: the queue the link's callbacks write to; the publisher reads it.
        edge_id: goes into every envelope.
        max_inflight: the most messages unacknowledged at once (lowered to the
            broker's Receive Maximum when it announces one).
        high_water_messages: sources pause while the spool holds more than this.
        keep_unrouted: keep and resend messages that reached no subscriber.
        unrouted_retry_max_s: the longest pause before resending them.
    """

    def __init__(
        self,
        spool: Spool,
        link: MqttLink,
        events: queue.SimpleQueue[Any],
        edge_id: str,
        max_inflight: int = 1000,
        high_water_messages: int = 10_000,
        keep_unrouted: bool = True,
        unrouted_retry_max_s: float = 60.0,
    ) -> None:
        self.spool = spool
        self.link = link
        self.edge_id = edge_id
        self.max_inflight = max_inflight
        self.high_water_messages = high_water_messages
        self._events = events
        self._state_lock = threading.Lock()
        self._window = max_inflight
        self._inflight: dict[int, _InFlight] = {}
        self._cursor = -1  # the highest seq handed to paho
        self.keep_unrouted = keep_unrouted
        self._unrouted_retry_max_s = unrouted_retry_max_s
        self._unrouted: dict[int, int] = {}  # seq -> readings, kept for a resend
        self._unrouted_delay_s = _UNROUTED_FIRST_RETRY_S
        self._unrouted_retry_at: float | None = None
        self._closing_deadline_s: float | None = None
        self._thread = threading.Thread(target=self._run, name="edge-publisher", daemon=True)
        self._unreachable_logged = False
        self.connected = False
        self._away = False  # the broker is known to be unreachable: spool as buffered
        self.failure: TonleError | None = None
        self.published = 0
        self.buffered_published = 0
        self.acked = 0
        self.acked_readings = 0
        self.rejected = 0
        self.unrouted = 0
        self.connects = 0

    # ----------------------------------------------------------- other threads

    def start(self) -> None:
        """Start connecting and publishing."""
        self.link.start()
        self._thread.start()

    def spool_append(self, batches: Sequence[Batch]) -> list[int]:
        """Append batches to the spool, marked buffered if the broker is away, and wake up."""
        with self._state_lock:
            seqs = self.spool.append(batches, buffered=self._away)
        self._events.put(Appended())
        return seqs

    def over_high_water(self, realtime: bool) -> bool:
        """True if a source should pause: the spool is past its high-water mark.

        Real-time sources pause only while the broker is connected (then the pause
        is short, and their readings are not lost); while it is away they keep
        sampling into the bounded spool. Backfill sources pause in both cases.
        """
        if self.spool.messages <= self.high_water_messages:
            return False
        return self.connected or not realtime

    @property
    def inflight(self) -> int:
        """Messages handed to paho and not yet acknowledged."""
        return len(self._inflight)

    def close(self, deadline_s: float) -> None:
        """Publish what is left until ``deadline_s`` (monotonic), say offline, disconnect."""
        if self._thread.is_alive():
            self._events.put(Closing(deadline_s))
            self._thread.join(max(0.0, deadline_s - time.monotonic()) + 10.0)
        else:
            self.link.close()

    # ------------------------------------------------------------ its own thread

    def _run(self) -> None:
        try:
            while not self._done():
                self._handle(self._next_events())
                self._fill_window()
        except Exception as exc:
            log.exception("the publisher stopped on an unexpected error")
            self.failure = TonleError(f"the publisher stopped: {exc!r}")
        finally:
            remaining_s = 2.0
            if self._closing_deadline_s is not None:
                remaining_s = max(0.5, self._closing_deadline_s - time.monotonic())
            self.link.close(offline_timeout_s=min(2.0, remaining_s))
            with self._state_lock:
                self.connected = False

    def _done(self) -> bool:
        if self.failure is not None:
            return True
        if self._closing_deadline_s is None:
            return False
        if not self.connected or time.monotonic() >= self._closing_deadline_s:
            if self.spool.messages:
                log.info("stopping with %d messages left in the spool", self.spool.messages)
            return True
        return self.spool.messages == 0

    def _next_events(self) -> list[object]:
        timeout_s = _IDLE_WAIT_S
        if self._closing_deadline_s is not None:
            timeout_s = min(timeout_s, max(0.0, self._closing_deadline_s - time.monotonic()))
        events: list[object] = []
        try:
            events.append(self._events.get(timeout=timeout_s))
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        return events

    def _handle(self, events: list[object]) -> None:
        acked_seqs: list[int] = []
        for event in events:
            if isinstance(event, Acked):
                done = self._inflight.pop(event.mid, None)
                if done is None:
                    continue  # a status message
                if event.unrouted and self.keep_unrouted:
                    self._keep_unrouted(done)
                    continue
                if not event.ok:
                    self.rejected += 1
                    log.warning("the broker refused message seq %d: %s", done.seq, event.reason)
                elif not self._unrouted:
                    self._unrouted_delay_s = _UNROUTED_FIRST_RETRY_S
                self.acked += 1
                self.acked_readings += done.readings
                acked_seqs.append(done.seq)
            elif isinstance(event, Connected):
                self._on_connected(event)
            elif isinstance(event, Disconnected):
                self._on_disconnected(event)
            elif isinstance(event, Refused):
                self._mark_away()
                self._on_refused(event)
            elif isinstance(event, Unreachable):
                self._mark_away()
                level = logging.DEBUG if self._unreachable_logged else logging.WARNING
                self._unreachable_logged = True
                log.log(level, "cannot reach the broker at %s; retrying", self.link.options.address)
            elif isinstance(event, Closing):
                self._closing_deadline_s = event.deadline_s
        if acked_seqs:
            self.spool.ack(acked_seqs)

    def _keep_unrouted(self, done: _InFlight) -> None:
        """Keep a message no subscriber took, and schedule its resend."""
        self.unrouted += 1
        self._unrouted[done.seq] = done.readings
        if self._unrouted_retry_at is None:
            self._unrouted_retry_at = time.monotonic() + self._unrouted_delay_s
            log.warning(
                "the broker has no subscriber for this edge's messages (is `tonle ingest` "
                "running?); keeping them in the spool, resending in %.0f s",
                self._unrouted_delay_s,
            )

    def _resend_unrouted(self) -> None:
        """Resend kept messages, oldest first, once their pause is over."""
        if self._unrouted_retry_at is None or time.monotonic() < self._unrouted_retry_at:
            return
        for seq in sorted(self._unrouted):
            if len(self._inflight) >= self._window:
                return  # the rest go when acknowledgements make room
            readings = self._unrouted.pop(seq)
            found = self.spool.pending(after_seq=seq - 1, limit=1)
            message = found[0] if found and found[0].seq == seq else None
            if message is None:
                # Dropped from a full spool while in flight: it is kept aside until the
                # broker settles it, and the first send may have been delivered already.
                message = self.spool.dropped_in_flight(seq)
            if message is None:
                continue
            mid = self.link.publish(message.topic, message.envelope(self.edge_id, buffered=True))
            if mid is None:
                self._unrouted[seq] = readings
                return
            self._inflight[mid] = _InFlight(seq, readings)
            self.published += 1
            self.buffered_published += 1
        self._unrouted_retry_at = None
        self._unrouted_delay_s = min(self._unrouted_retry_max_s, self._unrouted_delay_s * 2)

    def _on_connected(self, event: Connected) -> None:
        self._window = self.max_inflight
        if event.receive_maximum is not None:
            # Keep one slot free for the status message.
            self._window = max(1, min(self.max_inflight, event.receive_maximum - 1))
        with self._state_lock:
            self.connected = True
            self._away = False
        self.connects += 1
        self._unreachable_logged = False
        self.link.announce_online()
        log.info(
            "connected to %s; %d messages in the spool, %d in flight, window %d",
            self.link.options.address,
            self.spool.messages,
            len(self._inflight),
            self._window,
        )

    def _on_disconnected(self, event: Disconnected) -> None:
        if not self.connected:
            return
        with self._state_lock:
            self.connected = False
        self._mark_away()
        log.warning(
            "lost the broker (%s); spooling. %d messages wait, %d of them in flight",
            event.reason,
            self.spool.messages,
            len(self._inflight),
        )

    def _mark_away(self) -> None:
        """From now on, and for what waits unsent, messages are replays."""
        if self._away:
            return
        with self._state_lock:
            self._away = True
            self.spool.mark_buffered(after_seq=self._cursor)

    def _on_refused(self, event: Refused) -> None:
        if not event.fatal:
            log.warning("the broker refused the connection (%s); retrying", event.reason)
            return
        reason = event.reason.lower()
        if "protocol" in reason:
            hint = 'set broker.protocol: "3.1.1" for a broker without MQTT 5'
        elif "identifier" in reason:
            hint = "check broker.client_id"
        elif "banned" in reason:
            hint = "the broker has banned this client; ask its administrator"
        else:
            hint = "check broker.username and broker.password (or password_file)"
        self.failure = BrokerError(
            f"the broker at {self.link.options.address} refused the edge ({event.reason}); "
            f"{hint}. Not retrying."
        )
        log.error("%s", self.failure)

    def _fill_window(self) -> None:
        if not self.connected:
            return
        self._resend_unrouted()
        while (room := self._window - len(self._inflight)) > 0:
            messages = self.spool.pending(after_seq=self._cursor, limit=min(room, _FETCH_LIMIT))
            if not messages:
                return
            for message in messages:
                mid = self.link.publish(message.topic, message.envelope(self.edge_id))
                if mid is None:
                    return  # paho's queue is full; try again after the next ack
                self._inflight[mid] = _InFlight(message.seq, message.readings)
                self._cursor = message.seq
                self.published += 1
                if message.buffered:
                    self.buffered_published += 1

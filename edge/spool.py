"""The on-disk queue of messages between the batcher and the broker (SQLite in WAL mode).

A message enters the spool, and gets its ``seq``, in the same transaction; it leaves
only when the broker has acknowledged it. With ``synchronous=FULL`` (the default) a
committed append survives a power cut. The spool is bounded: past ``max_bytes`` of
stored messages the oldest are dropped, and counted, so a gateway cut off for weeks
keeps its most recent readings rather than filling its disk.

A dropped message may already be in the MQTT client's hands, published and not yet
acknowledged; the client sends it again when the connection returns, so it may arrive
after all. Such messages are kept aside, whole, until the broker settles them (the
in-flight window bounds how many): when the broker acknowledges one it is taken off
the drop counters again, and when the broker says no subscriber took it, it can be
sent once more like any message kept for that reason. ``dropped_messages`` and
``dropped_readings`` count what left the spool without ever being acknowledged, which
is exactly what never reaches the broker.

One connection, guarded by a lock, serves the batcher thread (appends) and the
publisher thread (reads and acks).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Literal

from edge.batching import Batch
from tonle.contract import format_timestamp
from tonle.errors import ConfigError

log = logging.getLogger(__name__)

# Counted per stored message on top of its topic and readings text: the row's other
# columns and SQLite's own bookkeeping, roughly.
ROW_OVERHEAD_BYTES = 64
DROP_LOG_INTERVAL_S = 60.0
_CHUNK = 500  # bound parameters per statement, well under SQLite's limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    readings_json TEXT NOT NULL,
    readings INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    buffered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Dropped while handed to the MQTT client: an acknowledgement may still come, or a
-- "no subscriber" answer that calls for sending it again (topic and readings_json).
CREATE TABLE IF NOT EXISTS dropped_in_flight (
    seq INTEGER PRIMARY KEY,
    readings INTEGER NOT NULL,
    topic TEXT,
    readings_json TEXT,
    buffered INTEGER NOT NULL DEFAULT 1
);
INSERT OR IGNORE INTO meta (key, value) VALUES
    ('next_seq', 0), ('dropped_messages', 0), ('dropped_readings', 0);
"""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    """A message waiting in the spool for the broker's acknowledgement."""

    seq: int
    topic: str
    readings_json: str
    readings: int
    buffered: bool

    def envelope(self, edge_id: str, buffered: bool | None = None) -> bytes:
        """The v1 payload bytes: the stored readings wrapped in the envelope."""
        flag = self.buffered if buffered is None else buffered
        # edge_id follows the id rule (no characters JSON would escape), and
        # readings_json was encoded by the batcher; plain joining is valid JSON.
        return (
            f'{{"v":1,"edge":"{edge_id}","seq":{self.seq},'
            f'"buffered":{"true" if flag else "false"},"readings":{self.readings_json}}}'
        ).encode("ascii")


@dataclass(frozen=True, slots=True)
class SpoolCounts:
    """How much the spool holds and how much it has had to drop, over its lifetime.

    ``dropped_*`` count messages the full spool discarded that the broker never
    acknowledged (a discarded message already in flight is taken off when its
    acknowledgement arrives).
    """

    messages: int
    stored_bytes: int
    next_seq: int
    dropped_messages: int
    dropped_readings: int


class Spool:
    """A durable, bounded FIFO of messages, keyed by a seq that only ever increases.

    Args:
        path: the SQLite file; its directory is created if missing.
        max_bytes: bound on the stored messages (topic and readings text plus
            ROW_OVERHEAD_BYTES each); the oldest go first beyond it.
        synchronous: ``full`` makes every commit durable; ``normal`` may lose the last
            commits on a power cut, never the database.
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"cannot open the spool at {path} ({exc}); set spool.path to a writable place"
            ) from None
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        # After a checkpoint, shrink the WAL file back rather than keep its largest size.
        self._db.execute("PRAGMA journal_size_limit=16777216")
        self._db.executescript(_SCHEMA)
        with self._transaction():
            # A spool written by an earlier version kept only seq and readings here.
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(dropped_in_flight)")}
            for column, kind in (
                ("topic", "TEXT"),
                ("readings_json", "TEXT"),
                ("buffered", "INTEGER NOT NULL DEFAULT 1"),
            ):
                if column not in columns:
                    self._db.execute(f"ALTER TABLE dropped_in_flight ADD COLUMN {column} {kind}")
            # Whatever an earlier run left behind is, by definition, replayed.
            self._db.execute("UPDATE messages SET buffered = 1 WHERE buffered = 0")
            # The client that held those in flight is gone with that run: they stay dropped.
            self._db.execute("DELETE FROM dropped_in_flight")
        self._handed_through = -1  # the highest seq read out for publishing
        self._next_seq = self._meta("next_seq")
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM messages")
        count, size = row.fetchone()
        self._messages: int = int(count)
        self._stored_bytes: int = int(size)
        self._dropped_since_log = (0, 0)
        self._last_drop_log_s = -DROP_LOG_INTERVAL_S
        if self._messages:
            log.info("spool %s holds %d messages from an earlier run", path, self._messages)

    # ------------------------------------------------------------------ writing

    def append(self, batches: Sequence[Batch], buffered: bool = False) -> list[int]:
        """Store batches as messages in one transaction; return their seqs, in order."""
        if not batches:
            return []
        created_at = format_timestamp(datetime.now(UTC))
        with self._lock:
            first = self._next_seq
            rows = [
                (
                    first + i,
                    b.topic,
                    b.readings_json,
                    b.readings,
                    len(b.topic) + len(b.readings_json) + ROW_OVERHEAD_BYTES,
                    created_at,
                    int(buffered),
                )
                for i, b in enumerate(batches)
            ]
            added_bytes = sum(row[4] for row in rows)
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO messages (seq, topic, readings_json, readings, size_bytes,"
                    " created_at, buffered) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'next_seq'", (first + len(rows),)
                )
                dropped = self._drop_oldest(self._stored_bytes + added_bytes - self.max_bytes)
            self._next_seq = first + len(rows)
            self._messages += len(rows) - dropped[0]
            self._stored_bytes += added_bytes - dropped[2]
            if dropped[0]:
                self._log_drop(dropped[0], dropped[1])
            return [row[0] for row in rows]

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete acknowledged messages in one transaction; return how many were still there."""
        wanted = sorted(set(seqs))
        if not wanted:
            return 0
        deleted = 0
        freed_bytes = 0
        arrived_messages = arrived_readings = 0
        with self._lock, self._transaction():
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                count, size = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM messages"
                    f" WHERE seq IN ({marks})",
                    chunk,
                ).fetchone()
                self._db.execute(f"DELETE FROM messages WHERE seq IN ({marks})", chunk)
                deleted += count
                freed_bytes += size
                if count < len(chunk):
                    # Some were dropped while in flight, and have arrived after all.
                    late, readings = self._db.execute(
                        "SELECT COUNT(*), COALESCE(SUM(readings), 0) FROM dropped_in_flight"
                        f" WHERE seq IN ({marks})",
                        chunk,
                    ).fetchone()
                    if late:
                        self._db.execute(
                            f"DELETE FROM dropped_in_flight WHERE seq IN ({marks})", chunk
                        )
                        arrived_messages += late
                        arrived_readings += readings
            if arrived_messages:
                self._db.executemany(
                    "UPDATE meta SET value = value - ? WHERE key = ?",
                    [
                        (arrived_messages, "dropped_messages"),
                        (arrived_readings, "dropped_readings"),
                    ],
                )
            self._messages -= deleted
            self._stored_bytes -= freed_bytes
        return deleted

    def mark_buffered(self, after_seq: int) -> int:
        """Flag every message after ``after_seq`` as replayed (the broker went away)."""
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "UPDATE messages SET buffered = 1 WHERE seq > ? AND buffered = 0", (after_seq,)
            )
            return cursor.rowcount

    # ------------------------------------------------------------------ reading

    def pending(self, after_seq: int = -1, limit: int = 1000) -> list[SpooledMessage]:
        """Up to ``limit`` messages with a seq above ``after_seq``, in seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, readings_json, readings, buffered FROM messages"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
            if rows:
                self._handed_through = max(self._handed_through, rows[-1][0])
        return [SpooledMessage(s, t, r, n, bool(b)) for s, t, r, n, b in rows]

    def dropped_in_flight(self, seq: int) -> SpooledMessage | None:
        """A message dropped while in flight and not yet settled by the broker, if kept."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, topic, readings_json, readings, buffered FROM dropped_in_flight"
                " WHERE seq = ? AND topic IS NOT NULL",
                (seq,),
            ).fetchone()
        if row is None:
            return None
        return SpooledMessage(row[0], row[1], row[2], row[3], bool(row[4]))

    @property
    def messages(self) -> int:
        """How many messages wait in the spool (kept in memory; no query)."""
        return self._messages

    def counts(self) -> SpoolCounts:
        """Sizes and lifetime drop counters."""
        with self._lock:
            return SpoolCounts(
                messages=self._messages,
                stored_bytes=self._stored_bytes,
                next_seq=self._next_seq,
                dropped_messages=self._meta("dropped_messages"),
                dropped_readings=self._meta("dropped_readings"),
            )

    def close(self) -> None:
        """Checkpoint the WAL and close the file."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # a busy checkpoint only leaves a longer WAL
                log.debug("spool checkpoint skipped: %s", exc)
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, rolled back if the block raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def _drop_oldest(self, excess_bytes: int) -> tuple[int, int, int]:
        """Drop the oldest messages to free ``excess_bytes``: (messages, readings, bytes)."""
        if excess_bytes <= 0:
            return (0, 0, 0)
        messages = readings = freed = 0
        last_seq = None
        in_flight = []
        oldest = self._db.execute("SELECT seq, readings, size_bytes FROM messages ORDER BY seq")
        for seq, count, size in oldest:
            messages += 1
            readings += count
            freed += size
            last_seq = seq
            if seq <= self._handed_through:
                in_flight.append((seq, count))
            if freed >= excess_bytes:
                break
        oldest.close()
        if last_seq is None:
            return (0, 0, 0)
        self._db.executemany(
            "INSERT OR IGNORE INTO dropped_in_flight"
            " (seq, readings, topic, readings_json, buffered)"
            " SELECT seq, readings, topic, readings_json, buffered FROM messages WHERE seq = ?",
            [(seq,) for seq, _count in in_flight],
        )
        self._db.execute("DELETE FROM messages WHERE seq <= ?", (last_seq,))
        self._db.executemany(
            "UPDATE meta SET value = value + ? WHERE key = ?",
            [(messages, "dropped_messages"), (readings, "dropped_readings")],
        )
        return (messages, readings, freed)

    def _log_drop(self, messages: int, readings: int) -> None:
        total_messages = self._dropped_since_log[0] + messages
        total_readings = self._dropped_since_log[1] + readings
        now_s = time.monotonic()
        if now_s - self._last_drop_log_s < DROP_LOG_INTERVAL_S:
            self._dropped_since_log = (total_messages, total_readings)
            return
        log.warning(
            "spool %s is full (%d bytes max): dropped the oldest %d messages (%d readings)",
            self.path,
            self.max_bytes,
            total_messages,
            total_readings,
        )
        self._dropped_since_log = (0, 0)
        self._last_drop_log_s = now_s

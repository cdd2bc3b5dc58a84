"""The ingester's side of PostgreSQL: registry look-ups and one transaction per batch.

Readings go in by ``COPY`` into a temporary staging table, then one
``INSERT … ON CONFLICT DO NOTHING`` into ``readings``, so a reading delivered twice is
stored once. Everything one batch holds — readings, message records, dead letters,
edge status — commits together or not at all; the caller acknowledges the batch's MQTT
messages only after :meth:`Store.write` returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from tonle.db.migrate import Mode, storage_mode
from tonle.errors import StoreError

log = logging.getLogger(__name__)

SensorKey = tuple[str, str, str, str]  # site, line, machine, metric

_CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS readings_stage (
    ts timestamptz NOT NULL, sensor_id integer NOT NULL, value double precision NOT NULL
) ON COMMIT DELETE ROWS
"""
_COPY_STAGE = "COPY readings_stage (ts, sensor_id, value) FROM STDIN (FORMAT BINARY)"
_MERGE = """
INSERT INTO readings (ts, sensor_id, value)
SELECT ts, sensor_id, value FROM readings_stage
ON CONFLICT (sensor_id, ts) DO NOTHING
"""
# Native mode: the UTC minutes this batch wrote, for the roll-up refresh. date_bin needs
# no time-zone lookup (date_trunc does, per row); the ORDER BY makes every ingester take
# the marks' key locks in the same order, so two batches sharing minutes cannot deadlock.
_MARK_DIRTY = """
INSERT INTO rollup_dirty_minutes (minute)
SELECT date_bin('1 minute', ts, 'epoch') FROM readings_stage GROUP BY 1 ORDER BY 1
ON CONFLICT (minute) DO NOTHING
"""
_CREATE_MESSAGES_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS messages_stage (LIKE edge_messages) ON COMMIT DELETE ROWS
"""
_COPY_MESSAGES_STAGE = (
    "COPY messages_stage (site, edge_id, seq, received_at, buffered, readings) FROM STDIN"
)
_MERGE_MESSAGES = """
INSERT INTO edge_messages SELECT * FROM messages_stage ON CONFLICT DO NOTHING
"""
_SEEN_EDGES = """
INSERT INTO edges (site, edge_id) SELECT DISTINCT site, edge_id FROM messages_stage
ON CONFLICT DO NOTHING
"""
_DEAD_LETTER = (
    "INSERT INTO dead_letters (received_at, topic, payload, reason) VALUES (%s, %s, %s, %s)"
)
_STATUS = """
INSERT INTO edges (site, edge_id, status, status_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (site, edge_id) DO UPDATE SET status = EXCLUDED.status, status_at = EXCLUDED.status_at
WHERE edges.status_at IS NULL OR edges.status_at <= EXCLUDED.status_at
"""
_LOAD_SENSORS = """
SELECT si.site, l.line, m.machine, s.metric, s.id, s.unit
FROM sensors s JOIN machines m ON m.id = s.machine_id
JOIN lines l ON l.id = m.line_id JOIN sites si ON si.id = l.site_id
"""
_REGISTER = [
    "INSERT INTO sites (site) VALUES (%(site)s) ON CONFLICT (site) DO NOTHING",
    """INSERT INTO lines (site_id, line) SELECT id, %(line)s FROM sites WHERE site = %(site)s
       ON CONFLICT (site_id, line) DO NOTHING""",
    """INSERT INTO machines (line_id, machine)
       SELECT l.id, %(machine)s FROM lines l JOIN sites si ON si.id = l.site_id
       WHERE si.site = %(site)s AND l.line = %(line)s
       ON CONFLICT (line_id, machine) DO NOTHING""",
    """INSERT INTO sensors (machine_id, metric, unit)
       SELECT m.id, %(metric)s, %(unit)s FROM machines m JOIN lines l ON l.id = m.line_id
       JOIN sites si ON si.id = l.site_id
       WHERE si.site = %(site)s AND l.line = %(line)s AND m.machine = %(machine)s
       ON CONFLICT (machine_id, metric) DO NOTHING""",
]
_SET_UNIT = "UPDATE sensors SET unit = %s WHERE id = %s AND unit IS NULL"
# Provisioned edges (revoked ones too: a revoked edge still belongs to its site).
_LOAD_EDGE_SITES = "SELECT edge_id, site FROM edge_credentials"


class BatchRefused(StoreError):
    """PostgreSQL is up but refused the batch (not a connection problem); retrying won't help."""


@dataclass(frozen=True, slots=True)
class Sensor:
    """A registered sensor: its id and the unit it was registered with."""

    id: int
    unit: str | None


@dataclass
class Batch:
    """What one transaction writes."""

    rows: list[tuple[datetime, int, float]] = field(default_factory=list)
    messages: list[tuple[str, str, int, datetime, bool, int]] = field(default_factory=list)
    dead_letters: list[tuple[datetime, str, bytes, str]] = field(default_factory=list)
    statuses: list[tuple[str, str, str, datetime]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows) + len(self.messages) + len(self.dead_letters) + len(self.statuses)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a committed batch stored."""

    readings_stored: int
    readings_duplicate: int
    dead_letters: int


class Store:
    """One connection to PostgreSQL, owned by the ingester's writer thread."""

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._sensors: dict[SensorKey, Sensor] = {}
        self._edge_sites: dict[str, frozenset[str]] = {}
        self._edge_sites_loaded_at: float | None = None
        self.mode: Mode = "native"

    # ----------------------------------------------------------------- lifecycle

    def connect(self) -> None:
        """(Re)connect, read the storage mode and load the sensor registry."""
        self.close()
        try:
            conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=self._connect_timeout_s
            )
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
        try:
            self.mode = storage_mode(conn)
            conn.execute(_CREATE_STAGE)
            conn.execute(_CREATE_MESSAGES_STAGE)
            self._sensors = {
                (str(site), str(line), str(machine), str(metric)): Sensor(
                    int(str(sid)), unit_or_none(unit)
                )
                for site, line, machine, metric, sid, unit in conn.execute(_LOAD_SENSORS)
            }
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"cannot prepare the ingest session: {exc}") from exc
        self._conn = conn
        log.info(
            "connected to PostgreSQL (%s mode, %d sensors known)", self.mode, len(self._sensors)
        )

    def close(self) -> None:
        """Close the connection if open."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def connected(self) -> bool:
        """True while the connection is open (it may still have broken underneath)."""
        return self._conn is not None and not self._conn.closed

    @property
    def conn(self) -> psycopg.Connection[tuple[object, ...]]:
        """The live connection; raise StoreError if there is none."""
        if self._conn is None or self._conn.closed:
            raise StoreError("not connected to PostgreSQL")
        return self._conn

    # ------------------------------------------------------------------ registry

    def known(self, key: SensorKey) -> Sensor | None:
        """The registered sensor for ``key``, if the registry has it."""
        return self._sensors.get(key)

    def register(self, wanted: Iterable[tuple[SensorKey, str | None]], *, create: bool) -> None:
        """Look up (and with ``create``, register) sensors not yet in the cache.

        Registration is idempotent and commits on its own, before the batch that
        needs the ids, so a failed batch never leaves half a registry behind.
        """
        missing = {key: unit for key, unit in wanted if key not in self._sensors}
        units_to_set = [
            (unit, self._sensors[key].id)
            for key, unit in wanted
            if key in self._sensors and unit and self._sensors[key].unit is None
        ]
        if not missing and not units_to_set:
            return
        try:
            with self.conn.transaction():
                cur = self.conn.cursor()
                if create:
                    for statement in _REGISTER:
                        cur.executemany(
                            statement,
                            [
                                {
                                    "site": k[0],
                                    "line": k[1],
                                    "machine": k[2],
                                    "metric": k[3],
                                    "unit": u,
                                }
                                for k, u in missing.items()
                            ],
                        )
                if units_to_set:
                    cur.executemany(_SET_UNIT, units_to_set)
            self._sensors = {
                (str(site), str(line), str(machine), str(metric)): Sensor(
                    int(str(sid)), unit_or_none(unit)
                )
                for site, line, machine, metric, sid, unit in self.conn.execute(_LOAD_SENSORS)
            }
        except psycopg.Error as exc:
            self.close()  # a fresh connection on the next try
            raise StoreError(f"could not register sensors: {exc}") from exc

    def edge_sites(self, edge_id: str) -> frozenset[str]:
        """The sites ``edge_id`` is provisioned for, as last loaded; empty if none."""
        return self._edge_sites.get(edge_id, frozenset())

    @property
    def edge_sites_age_s(self) -> float:
        """Seconds since the provisioned edges were loaded (infinite before the first load)."""
        if self._edge_sites_loaded_at is None:
            return float("inf")
        return time.monotonic() - self._edge_sites_loaded_at

    def load_edge_sites(self) -> None:
        """(Re)load which sites each provisioned edge belongs to."""
        loaded: dict[str, set[str]] = {}
        try:
            for edge_id, site in self.conn.execute(_LOAD_EDGE_SITES):
                loaded.setdefault(str(edge_id), set()).add(str(site))
        except psycopg.Error as exc:
            self.close()  # a fresh connection on the next try
            raise StoreError(f"could not load the provisioned edges: {exc}") from exc
        self._edge_sites = {edge: frozenset(sites) for edge, sites in loaded.items()}
        self._edge_sites_loaded_at = time.monotonic()

    # --------------------------------------------------------------------- write

    def write(self, batch: Batch) -> WriteResult:
        """Store one batch in one transaction; raise StoreError and store nothing on failure."""
        conn = self.conn
        try:
            with conn.transaction():
                stored = 0
                if batch.rows:
                    with conn.cursor().copy(_COPY_STAGE) as copy:
                        copy.set_types(["timestamptz", "int4", "float8"])
                        for row in batch.rows:
                            copy.write_row(row)
                    stored = conn.execute(_MERGE).rowcount
                    if self.mode == "native":
                        conn.execute(_MARK_DIRTY)
                if batch.messages:
                    with conn.cursor().copy(_COPY_MESSAGES_STAGE) as copy:
                        for message in batch.messages:
                            copy.write_row(message)
                    conn.execute(_SEEN_EDGES)
                    conn.execute(_MERGE_MESSAGES)
                if batch.statuses:
                    conn.cursor().executemany(_STATUS, batch.statuses)
                if batch.dead_letters:
                    conn.cursor().executemany(_DEAD_LETTER, batch.dead_letters)
        except psycopg.OperationalError as exc:
            self.close()
            raise StoreError(f"lost PostgreSQL while writing a batch: {exc}".strip()) from exc
        except psycopg.Error as exc:
            # Not a connection problem: a bug or a schema mismatch. Nothing was stored;
            # the caller decides whether to dead-letter the batch's messages.
            raise BatchRefused(f"PostgreSQL refused a batch: {exc}") from exc
        return WriteResult(
            readings_stored=stored,
            readings_duplicate=len(batch.rows) - stored,
            dead_letters=len(batch.dead_letters),
        )


def unit_or_none(value: object) -> str | None:
    """A registry unit as ``str``, or None where the column is NULL."""
    return None if value is None else str(value)

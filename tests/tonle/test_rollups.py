"""Native-mode roll-ups: the ingester marks minutes, a refresh recomputes only those."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from ingest.store import Batch, Store
from tonle.db.maintenance import (
    ROLLUP_LOCK_CLASS,
    dirty_minutes,
    floor_hour,
    refresh_all_rollups,
    refresh_rollups,
)
from tonle.db.migrate import load_migrations, migrate

Conn = psycopg.Connection[tuple[object, ...]]
Rollup = tuple[int, float, float, float, float]  # n, avg, min, max, sum

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


# ------------------------------------------------------------------ pure logic


def test_dirty_minutes_are_whole_utc_minutes_and_hour_marks_count_as_60() -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    minutes = [
        datetime(2026, 10, 1, 15, 47, 12, 500, tzinfo=ist),  # 10:17:12 UTC
        datetime(2026, 10, 1, 10, 17, tzinfo=UTC),  # the same minute again
    ]
    hour = datetime(2026, 10, 1, 8, tzinfo=UTC)
    got = dirty_minutes(minutes, [hour])
    assert len(got) == 61
    assert got[:60] == [hour + i * MINUTE for i in range(60)]
    assert got[60] == datetime(2026, 10, 1, 10, 17, tzinfo=UTC)
    assert floor_hour(minutes[0]) == datetime(2026, 10, 1, 10, tzinfo=UTC)
    assert dirty_minutes([], []) == []


# ------------------------------------------------------------------- database


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The ingester's store, marking dirty minutes as in production."""
    store = Store(database_url)
    store.connect()
    yield store
    store.close()


@pytest.fixture
def clean(conn: Conn) -> Conn:
    """The module's connection, with no minute or hour left dirty by an earlier test."""
    refresh_all_rollups(conn)
    return conn


def _dirty(conn: Conn) -> list[datetime]:
    rows = conn.execute("SELECT minute FROM rollup_dirty_minutes ORDER BY 1")
    return [_timestamp(minute) for (minute,) in rows]


def _timestamp(value: object) -> datetime:
    assert isinstance(value, datetime)
    return value


def _float(value: object) -> float:
    assert isinstance(value, float)
    return value


def _rollup(n: object, *floats: object) -> Rollup:
    assert isinstance(n, int)
    avg, lo, hi, total = (_float(f) for f in floats)
    return n, avg, lo, hi, total


def _rollups(conn: Conn, table: str, sensor_id: int) -> dict[datetime, Rollup]:
    rows = conn.execute(
        sql.SQL("SELECT bucket, n, avg, min, max, sum FROM {} WHERE sensor_id = %s").format(
            sql.Identifier(table)
        ),
        (sensor_id,),
    )
    return {_timestamp(b): _rollup(n, a, lo, hi, s) for b, n, a, lo, hi, s in rows}


def _from_raw(conn: Conn, unit: str, sensor_id: int) -> dict[datetime, Rollup]:
    """Roll-ups recomputed from scratch from every raw reading, in UTC buckets."""
    rows = conn.execute(
        "SELECT date_trunc(%s, ts, 'UTC'), count(*), avg(value), min(value), max(value),"
        " sum(value) FROM readings WHERE sensor_id = %s GROUP BY 1",
        (unit, sensor_id),
    )
    return {_timestamp(b): _rollup(n, a, lo, hi, s) for b, n, a, lo, hi, s in rows}


def _assert_close(got: dict[datetime, Rollup], want: dict[datetime, Rollup]) -> None:
    assert got.keys() == want.keys()
    for bucket, (n, avg, lo, hi, total) in want.items():
        g_n, g_avg, g_lo, g_hi, g_total = got[bucket]
        assert (g_n, g_lo, g_hi) == (n, lo, hi), bucket
        # Summed in another order (minute sums, then the hour's), so equal to rounding.
        assert math.isclose(g_total, total, rel_tol=1e-12), bucket
        assert math.isclose(g_avg, avg, rel_tol=1e-12), bucket
        assert math.isclose(g_avg, g_total / g_n, rel_tol=1e-15), bucket


@pytest.mark.db
def test_the_ingester_marks_minutes_and_a_round_touches_only_those(
    store: Store, clean: Conn
) -> None:
    conn, sensor, h = clean, 9101, datetime(2026, 10, 6, 10, tzinfo=UTC)
    first = [(h + m * MINUTE + k * timedelta(seconds=20), sensor, 10.0 * m + k)
             for m in (0, 1, 2, 3, 4) for k in range(3)]  # fmt: skip
    store.write(Batch(rows=first))
    assert _dirty(conn) == [h + m * MINUTE for m in range(5)]
    assert refresh_rollups(conn) == 1
    assert _dirty(conn) == []
    assert _rollups(conn, "readings_1h", sensor)[h][0] == 15

    # A wrong row in a clean minute, and a raw reading stored without a mark: a round
    # that re-read the hour from raw readings would repair both.
    conn.execute(
        "UPDATE readings_1m SET n = 100, avg = -5, min = -5, max = -5, sum = -500"
        " WHERE sensor_id = %s AND bucket = %s",
        (sensor, h + 2 * MINUTE),
    )
    conn.execute(
        "INSERT INTO readings (ts, sensor_id, value) VALUES (%s, %s, 999)",
        (h + MINUTE + timedelta(seconds=50), sensor),
    )
    store.write(Batch(rows=[(h + 4 * MINUTE + timedelta(seconds=50), sensor, 44.5),
                            (h + 7 * MINUTE, sensor, 70.0)]))  # fmt: skip
    assert _dirty(conn) == [h + 4 * MINUTE, h + 7 * MINUTE]
    assert refresh_rollups(conn) == 1
    assert _dirty(conn) == []

    minutes = _rollups(conn, "readings_1m", sensor)
    assert minutes[h + 2 * MINUTE] == (100, -5.0, -5.0, -5.0, -500.0)  # left alone
    assert minutes[h + MINUTE] == (3, 11.0, 10.0, 12.0, 33.0)  # raw not re-read
    assert minutes[h + 4 * MINUTE] == (4, 41.875, 40.0, 44.5, 167.5)  # fixed
    assert minutes[h + 7 * MINUTE] == (1, 70.0, 70.0, 70.0, 70.0)  # new
    # The hour is summed from its minute rows, the wrong one included.
    total = 3.0 + 33.0 - 500.0 + 93.0 + 167.5 + 70.0
    n = 3 + 3 + 100 + 3 + 4 + 1
    assert _rollups(conn, "readings_1h", sensor) == {h: (n, total / n, -5.0, 70.0, total)}


@pytest.mark.db
def test_hourly_rollups_equal_a_recompute_from_raw_readings(
    store: Store, clean: Conn, database_url: str
) -> None:
    rng = random.Random(7)
    sensors = (9201, 9202, 9203)
    start = datetime(2026, 10, 7, 9, 40, tzinfo=UTC)
    rows = [
        (start + timedelta(milliseconds=rng.randrange(150 * 60_000)), sid, rng.gauss(230.0, 5.0))
        for sid in sensors
        for _ in range(2_000)
    ]
    rows.sort()
    batches = [rows[i : i + 500] for i in range(0, len(rows), 500)]
    late = [(start + timedelta(seconds=s + 0.5), sensors[0], rng.uniform(-1e3, 1e3))
            for s in range(0, 600, 7)]  # fmt: skip
    # The refresher's session is in a half-hour time zone: buckets stay UTC hours.
    with psycopg.connect(database_url, autocommit=True) as refresher:
        refresher.execute("SET TimeZone = 'Asia/Kolkata'")
        pending: set[datetime] = set()
        for i, batch in enumerate(batches):
            store.write(Batch(rows=batch))
            pending |= {floor_hour(ts) for ts, _, _ in batch}
            if i % 3 == 2:
                assert refresh_rollups(refresher) == len(pending)
                pending.clear()
        store.write(Batch(rows=late))  # out of order, into the first hour
        store.write(Batch(rows=batches[4]))  # a redelivery: duplicates, nothing stored
        pending |= {floor_hour(ts) for ts, _, _ in late + batches[4]}
        assert refresh_all_rollups(refresher) == len(pending)
    assert _dirty(clean) == []
    for sid in sensors:
        hours = _rollups(clean, "readings_1h", sid)
        assert sorted(hours) == [datetime(2026, 10, 7, h, tzinfo=UTC) for h in (9, 10, 11, 12)]
        _assert_close(hours, _from_raw(clean, "hour", sid))
        _assert_close(_rollups(clean, "readings_1m", sid), _from_raw(clean, "minute", sid))


@pytest.mark.db
def test_a_failed_round_puts_its_minutes_back(store: Store, clean: Conn, database_url: str) -> None:
    conn, sensor, h = clean, 9301, datetime(2026, 10, 8, 3, tzinfo=UTC)
    store.write(Batch(rows=[(h + 5 * MINUTE, sensor, 1.0), (h + 6 * MINUTE, sensor, 2.0)]))
    with psycopg.connect(database_url, autocommit=True) as holder:
        # Another refresher holds this hour; ours gives up waiting for it.
        holder.execute(
            "SELECT pg_advisory_lock(%s::integer, %s::integer)",
            (ROLLUP_LOCK_CLASS, int(h.timestamp()) // 3600),
        )
        conn.execute("SET lock_timeout = '200ms'")
        try:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                refresh_rollups(conn)
        finally:
            conn.execute("RESET lock_timeout")
        assert _dirty(conn) == [h + 5 * MINUTE, h + 6 * MINUTE]
        assert _rollups(conn, "readings_1m", sensor) == {}
    assert refresh_rollups(conn) == 1
    assert _rollups(conn, "readings_1h", sensor) == {h: (2, 1.5, 1.0, 2.0, 3.0)}


@pytest.mark.db
def test_readings_for_a_claimed_minute_mark_it_again_without_waiting(
    store: Store, clean: Conn, database_url: str
) -> None:
    conn, sensor, h = clean, 9401, datetime(2026, 10, 9, 14, tzinfo=UTC)
    minute = h + 30 * MINUTE
    store.write(Batch(rows=[(minute, sensor, 1.0)]))
    errors: list[BaseException] = []
    with (
        psycopg.connect(database_url, autocommit=True) as holder,
        psycopg.connect(database_url, autocommit=True) as refresher,
    ):
        holder.execute(
            "SELECT pg_advisory_lock(%s::integer, %s::integer)",
            (ROLLUP_LOCK_CLASS, int(h.timestamp()) // 3600),
        )

        def refresh() -> None:
            try:
                refresh_rollups(refresher)
            except BaseException as exc:  # noqa: BLE001 - the test asserts there is none
                errors.append(exc)

        thread = threading.Thread(target=refresh, name="test-rollup-refresher")
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while _dirty(conn) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _dirty(conn) == []  # claimed; the round now waits for the hour
            # The ingester neither waits for the round nor loses the new reading.
            store.conn.execute("SET statement_timeout = '5s'")
            store.write(Batch(rows=[(minute + timedelta(seconds=30), sensor, 3.0)]))
            assert _dirty(conn) == [minute]
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
            thread.join(timeout=10)
    assert not thread.is_alive() and errors == []
    assert refresh_all_rollups(conn) == 1
    assert _rollups(conn, "readings_1m", sensor) == {minute: (2, 2.0, 1.0, 3.0, 4.0)}
    assert _rollups(conn, "readings_1h", sensor) == {h: (2, 2.0, 1.0, 3.0, 4.0)}


@pytest.mark.db
def test_upgrade_keeps_the_hour_marks_of_the_earlier_version(empty_database_url: str) -> None:
    migrate(empty_database_url, create_database=False)
    (step,) = [s for s in load_migrations() if s.name == "rollup_dirty_minutes"]
    h, sensor = datetime(2026, 10, 10, 6, tzinfo=UTC), 9501
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        # The database as the earlier version left it: hour marks and no minute table.
        conn.execute("DROP TABLE rollup_dirty_minutes")
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (step.version,))
        with conn.cursor().copy("COPY readings (ts, sensor_id, value) FROM STDIN") as copy:
            for i in range(120):
                copy.write_row((h + i * 30 * timedelta(seconds=1), sensor, float(i)))
        conn.execute(
            "INSERT INTO rollup_dirty (hour) SELECT DISTINCT date_trunc('hour', ts) FROM readings"
        )
        report = migrate(empty_database_url, create_database=False)
        assert report.applied == [f"{step.version:04d}_rollup_dirty_minutes"]
        assert refresh_all_rollups(conn) == 1
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
        assert _dirty(conn) == []
        assert len(_rollups(conn, "readings_1m", sensor)) == 60
        assert _rollups(conn, "readings_1h", sensor) == {h: (120, 59.5, 0.0, 119.0, 7140.0)}

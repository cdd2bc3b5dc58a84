"""The spool: seq order and persistence, crash safety, the size bound, the envelope."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from edge.batching import Batch, Batcher
from edge.sources import Sample
from edge.spool import ROW_OVERHEAD_BYTES, Spool
from tonle.contract import decode_payload

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "tonle/v1/site-a/line-1/m1/telemetry"


def batch(readings: int = 1, value: int = 0) -> Batch:
    items = [
        {"ts": f"2026-11-28T10:00:{i:02d}.000Z", "metric": "energy", "value": float(value)}
        for i in range(readings)
    ]
    return Batch(TOPIC, json.dumps(items, separators=(",", ":")), readings)


def test_seq_increases_by_one_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "edge.spool"
    with Spool(path, max_bytes=10**6) as spool:
        assert spool.append([batch(), batch(), batch()]) == [0, 1, 2]
        assert [m.seq for m in spool.pending()] == [0, 1, 2]
        assert [m.seq for m in spool.pending(after_seq=0, limit=1)] == [1]
        assert spool.ack([0, 1, 2, 99]) == 3
        assert spool.messages == 0
    with Spool(path, max_bytes=10**6) as spool:
        # Emptied, closed and reopened: seq carries on, it never goes back.
        assert spool.append([batch()]) == [3]
        assert spool.append([batch(), batch()]) == [4, 5]
        assert spool.counts().next_seq == 6


def test_what_an_earlier_run_left_is_replayed_as_buffered(tmp_path: Path) -> None:
    path = tmp_path / "edge.spool"
    with Spool(path, max_bytes=10**6) as spool:
        spool.append([batch(), batch()])
        spool.append([batch()], buffered=True)
        assert [m.buffered for m in spool.pending()] == [False, False, True]
        spool.ack([0])
    with Spool(path, max_bytes=10**6) as spool:
        assert [(m.seq, m.buffered) for m in spool.pending()] == [(1, True), (2, True)]
        assert spool.append([batch()]) == [3]
        assert [m.buffered for m in spool.pending()] == [True, True, False]


def test_mark_buffered_flags_only_what_was_not_handed_over(tmp_path: Path) -> None:
    with Spool(tmp_path / "s", max_bytes=10**6) as spool:
        spool.append([batch() for _ in range(5)])
        assert spool.mark_buffered(after_seq=2) == 2
        assert [m.buffered for m in spool.pending()] == [False, False, False, True, True]


def test_past_max_bytes_the_oldest_messages_are_dropped_and_counted(tmp_path: Path) -> None:
    row_bytes = len(TOPIC) + len(batch(2).readings_json) + ROW_OVERHEAD_BYTES
    path = tmp_path / "edge.spool"
    with Spool(path, max_bytes=3 * row_bytes) as spool:
        for _ in range(3):
            spool.append([batch(2)])
        assert spool.counts().stored_bytes == 3 * row_bytes
        assert spool.counts().dropped_messages == 0
        spool.append([batch(2)])  # one over: the oldest goes
        spool.append([batch(2), batch(2)])  # two over, in one append: two more go
        counts = spool.counts()
        assert [m.seq for m in spool.pending()] == [3, 4, 5]
        assert (counts.messages, counts.stored_bytes) == (3, 3 * row_bytes)
        assert (counts.dropped_messages, counts.dropped_readings) == (3, 6)
    with Spool(path, max_bytes=3 * row_bytes) as spool:
        counts = spool.counts()
        assert (counts.dropped_messages, counts.dropped_readings) == (3, 6)
        assert counts.stored_bytes == 3 * row_bytes


def test_a_message_dropped_in_flight_is_kept_until_the_broker_settles_it(
    tmp_path: Path,
) -> None:
    row_bytes = len(TOPIC) + len(batch(2).readings_json) + ROW_OVERHEAD_BYTES
    path = tmp_path / "edge.spool"
    with Spool(path, max_bytes=2 * row_bytes) as spool:
        spool.append([batch(2, value=0), batch(2, value=1)])
        assert [m.seq for m in spool.pending()] == [0, 1]  # both handed to the client
        spool.append([batch(2, value=2), batch(2, value=3)])  # drops 0 and 1, in flight
        assert (spool.counts().dropped_messages, spool.counts().dropped_readings) == (2, 4)
        # The broker said no subscriber took seq 1: it can be sent again, whole.
        kept = spool.dropped_in_flight(1)
        assert kept is not None and kept.readings == 2
        assert kept.topic == TOPIC and json.loads(kept.readings_json)[0]["value"] == 1.0
        assert spool.dropped_in_flight(2) is None  # not dropped: it waits in the spool
        assert spool.ack([1]) == 0  # arrived after all: off the drop counters, and forgotten
        assert (spool.counts().dropped_messages, spool.counts().dropped_readings) == (1, 2)
        assert spool.dropped_in_flight(1) is None
        assert spool.dropped_in_flight(0) is not None
    with Spool(path, max_bytes=2 * row_bytes) as spool:
        # The client that held seq 0 is gone with that run: it stays dropped.
        assert spool.dropped_in_flight(0) is None
        assert (spool.counts().dropped_messages, spool.counts().dropped_readings) == (1, 2)


def test_a_spool_of_the_earlier_format_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "edge.spool"
    with Spool(path, max_bytes=10**6) as spool:
        spool.append([batch()])
    with sqlite3.connect(path) as db:  # what an earlier version created
        db.execute("DROP TABLE dropped_in_flight")
        db.execute("CREATE TABLE dropped_in_flight (seq INTEGER PRIMARY KEY, readings INTEGER)")
    with Spool(path, max_bytes=10**6) as spool:
        assert [m.seq for m in spool.pending()] == [0]
        assert spool.dropped_in_flight(0) is None


def test_the_envelope_is_a_valid_v1_payload(tmp_path: Path) -> None:
    batcher = Batcher("site-a", max_readings=3)
    ts = datetime(2026, 11, 28, 10, 0, 0, 120_000, tzinfo=UTC)
    ready = []
    for metric, value, unit in [
        ("active_power", 412.5, "W"),
        ("bearing_temp", 71.25, "°C"),
        ("units_good", 3, None),
    ]:
        ready += batcher.add(Sample("line-1", "m1", metric, ts, value, unit), 0.0)
    with Spool(tmp_path / "s", max_bytes=10**6) as spool:
        spool.append(ready)
        spool.append(ready, buffered=True)
        first, second = spool.pending()
    payload = decode_payload(first.envelope("edge-01"))
    assert (payload.v, payload.edge, payload.seq, payload.buffered) == (1, "edge-01", 0, False)
    assert [(r.ts, r.metric, r.value, r.unit) for r in payload.readings] == [
        (ts, "active_power", 412.5, "W"),
        (ts, "bearing_temp", 71.25, "°C"),
        (ts, "units_good", 3.0, None),
    ]
    assert decode_payload(second.envelope("edge-01")).buffered is True
    assert decode_payload(first.envelope("edge-01", buffered=True)).buffered is True
    assert first.envelope("edge-01").startswith(
        b'{"v":1,"edge":"edge-01","seq":0,"buffered":false,'
    )


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge.batching import Batch
    from edge.spool import Spool

    spool = Spool(Path(sys.argv[1]), max_bytes=10**9)
    topic = "tonle/v1/site-a/line-1/m1/telemetry"
    while True:
        rows = [
            Batch(topic, '[{"ts":"2026-11-28T10:00:00.000Z","metric":"energy","value":%d}]' % i, 1)
            for i in range(5)
        ]
        seqs = spool.append(rows)
        print(*seqs, flush=True)  # printed only once the transaction has committed
    """
)


def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    path = tmp_path / "edge.spool"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    committed: list[int] = []
    try:
        assert writer.stdout is not None
        while len(committed) < 1000:
            line = writer.stdout.readline()
            assert line, "the writer ended early"
            committed += [int(s) for s in line.split()]
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(10)
        if writer.stdout is not None:
            writer.stdout.close()
    assert committed == list(range(len(committed)))
    with Spool(path, max_bytes=10**9) as spool:
        stored = [m.seq for m in spool.pending(limit=10**6)]
        assert stored[: len(committed)] == committed
        # Anything after that was committed but not yet printed; nothing is half there.
        assert stored == list(range(len(stored)))
        assert all(m.buffered for m in spool.pending(limit=10))
        assert spool.counts().next_seq == len(stored)
        assert spool.append([batch()]) == [len(stored)]

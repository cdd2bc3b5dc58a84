"""The batching policy, with exact numbers: size, delay, one batch per machine, 256 KiB."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from edge.batching import ENVELOPE_OVERHEAD_BYTES, Batcher, ReadingEncoder
from edge.sources import Sample
from edge.spool import SpooledMessage
from tonle.contract import MAX_PAYLOAD_BYTES, decode_payload
from tonle.errors import PayloadError, TopicError

T0 = datetime(2026, 11, 28, 10, 0, 0, 120_000, tzinfo=UTC)


def sample(machine: str = "m1", i: int = 0, line: str = "line-1", **kw: Any) -> Sample:
    fields: dict[str, object] = {
        "line": line,
        "machine": machine,
        "metric": "active_power",
        "ts": T0 + timedelta(seconds=i),
        "value": 412.5,
        "unit": "W",
    }
    fields.update(kw)
    return Sample(**fields)  # type: ignore[arg-type]


def test_a_reading_is_encoded_exactly() -> None:
    encoder = ReadingEncoder()
    assert encoder.encode(sample()) == (
        '{"ts":"2026-11-28T10:00:00.120Z","metric":"active_power","value":412.5,"unit":"W"}'
    )
    assert encoder.encode(sample(unit=None, value=3)) == (
        '{"ts":"2026-11-28T10:00:00.120Z","metric":"active_power","value":3.0}'
    )
    # Non-ASCII units are escaped, so the text length is the byte length.
    assert encoder.encode(sample(metric="bearing_temp", unit="°C")).endswith('"unit":"\\u00b0C"}')
    # Other offsets are converted to UTC.
    plus7 = datetime(2026, 11, 28, 17, 0, 0, 5_000, tzinfo=timezone(timedelta(hours=7)))
    assert '"ts":"2026-11-28T10:00:00.005Z"' in encoder.encode(sample(ts=plus7))


def test_a_batch_is_handed_back_when_it_holds_max_readings() -> None:
    batcher = Batcher("site-a", max_readings=3, max_delay_s=10)
    assert batcher.add(sample(i=0), 0.0) == []
    assert batcher.add(sample(i=1), 0.1) == []
    assert batcher.pending_readings == 2
    (batch,) = batcher.add(sample(i=2), 0.2)
    assert batch.topic == "tonle/v1/site-a/line-1/m1/telemetry"
    assert batch.readings == 3
    assert [r["ts"] for r in json.loads(batch.readings_json)] == [
        "2026-11-28T10:00:00.120Z",
        "2026-11-28T10:00:01.120Z",
        "2026-11-28T10:00:02.120Z",
    ]
    assert batcher.pending_readings == 0
    assert batcher.next_due_s() is None


def test_each_machine_has_its_own_batch() -> None:
    batcher = Batcher("site-a", max_readings=2, max_delay_s=10)
    assert batcher.add(sample("m1", 0), 0.0) == []
    assert batcher.add(sample("m2", 0), 0.0) == []
    assert batcher.add(sample("m1", 0, line="line-2"), 0.0) == []
    (full,) = batcher.add(sample("m2", 1), 0.0)
    assert (full.topic, full.readings) == ("tonle/v1/site-a/line-1/m2/telemetry", 2)
    rest = batcher.drain()
    assert sorted((b.topic, b.readings) for b in rest) == [
        ("tonle/v1/site-a/line-1/m1/telemetry", 1),
        ("tonle/v1/site-a/line-2/m1/telemetry", 1),
    ]
    assert batcher.drain() == []


def test_a_batch_falls_due_when_its_oldest_reading_has_waited_max_delay() -> None:
    batcher = Batcher("site-a", max_readings=50, max_delay_s=1.0)
    batcher.add(sample("m1", 0), 10.0)
    batcher.add(sample("m2", 0), 10.5)
    batcher.add(sample("m1", 1), 10.9)
    assert batcher.next_due_s() == 11.0
    assert batcher.due(10.999) == []
    (m1,) = batcher.due(11.0)
    assert (m1.topic, m1.readings) == ("tonle/v1/site-a/line-1/m1/telemetry", 2)
    assert batcher.next_due_s() == 11.5
    (m2,) = batcher.due(11.5)
    assert m2.readings == 1
    assert batcher.due(100.0) == []


def test_a_message_stays_under_the_payload_limit() -> None:
    encoder = ReadingEncoder()
    size = len(encoder.encode(sample()))
    limit = 4096
    capacity = (limit - ENVELOPE_OVERHEAD_BYTES - 1) // (size + 1)  # n·size + (n−1) commas + []
    batcher = Batcher("site-a", max_readings=10_000, max_delay_s=10, max_payload_bytes=limit)
    handed_back = [b for i in range(capacity + 1) for b in batcher.add(sample(i=i), 0.0)]
    assert [b.readings for b in handed_back] == [capacity]
    assert batcher.pending_readings == 1
    assert len(handed_back[0].readings_json) <= limit - ENVELOPE_OVERHEAD_BYTES


def test_a_full_size_message_with_the_longest_envelope_fits_256_kib() -> None:
    batcher = Batcher("site-a", max_readings=10_000, max_delay_s=10)
    long_metric = "m" + "_x" * 31  # 63 characters, the most the contract allows
    batches = []
    for i in range(10_000):
        batches += batcher.add(
            sample(i=i, metric=long_metric, value=-1.2345678901234567e-300, unit="kWh/m³·°C"), 0.0
        )
    assert batches, "10,000 long readings must not fit in one message"
    batch = batches[0]
    message = SpooledMessage(2**63 - 1, batch.topic, batch.readings_json, batch.readings, False)
    envelope = message.envelope("e" * 63)
    assert len(envelope) <= MAX_PAYLOAD_BYTES
    assert MAX_PAYLOAD_BYTES - len(envelope) < 200, "the batch should be nearly full"
    assert len(decode_payload(envelope).readings) == batch.readings


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"value": math.nan}, PayloadError),
        ({"value": math.inf}, PayloadError),
        ({"value": True}, PayloadError),
        ({"value": "12"}, PayloadError),
        ({"ts": datetime(2026, 11, 28, 10, 0)}, PayloadError),
        ({"metric": "ActivePower"}, PayloadError),
        ({"unit": "x" * 17}, PayloadError),
        ({"machine": "M1"}, TopicError),
        ({"line": "_edge"}, TopicError),
    ],
)
def test_a_reading_that_breaks_the_contract_is_refused_and_not_added(
    changes: dict[str, Any], error: type[Exception]
) -> None:
    batcher = Batcher("site-a", max_readings=2, max_delay_s=1)
    batcher.add(sample(), 0.0)
    with pytest.raises(error):
        batcher.add(sample(**changes), 0.0)
    assert batcher.pending_readings == 1
    (batch,) = batcher.drain()
    assert batch.readings == 1

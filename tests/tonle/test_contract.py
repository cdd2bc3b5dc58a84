"""The payload and topic contract: the shared examples, and properties of the decoder."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import SHARED
from tonle.contract import (
    MAX_PAYLOAD_BYTES,
    Payload,
    Reading,
    StatusTopic,
    TelemetryTopic,
    decode_payload,
    encode_payload,
    parse_timestamp,
    parse_topic,
    payload_json_schema,
    status_topic,
    telemetry_topic,
)
from tonle.errors import PayloadError, TopicError

CONTRACT = SHARED / "contract"


@pytest.mark.parametrize("path", sorted((CONTRACT / "valid").glob("*.json")), ids=lambda p: p.name)
def test_valid_examples_decode(path: object) -> None:
    payload = decode_payload(path.read_bytes())  # type: ignore[attr-defined]
    assert payload.v == 1
    assert all(r.ts.tzinfo is UTC for r in payload.readings)


@pytest.mark.parametrize("path", sorted((CONTRACT / "invalid").iterdir()), ids=lambda p: p.name)
def test_invalid_examples_are_rejected_with_a_reason(path: object) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_payload(path.read_bytes())  # type: ignore[attr-defined]
    assert len(str(caught.value)) > 10


def test_timestamps_are_normalised_to_utc() -> None:
    local = decode_payload((CONTRACT / "valid" / "local_offset.json").read_bytes())
    assert local.readings[0].ts == datetime(2026, 11, 28, 3, 0, 0, 250000, tzinfo=UTC)
    epoch = decode_payload((CONTRACT / "valid" / "epoch_ms.json").read_bytes())
    assert epoch.readings[0].ts == datetime(2026, 11, 28, 3, 0, 0, 120000, tzinfo=UTC)
    many = decode_payload((CONTRACT / "valid" / "many_metrics.json").read_bytes())
    assert len({(r.ts, r.metric) for r in many.readings}) == 480


def test_specific_reasons() -> None:
    def reason(document: object) -> str:
        with pytest.raises(PayloadError) as caught:
            decode_payload(json.dumps(document).encode())
        return str(caught.value)

    ok = {"ts": "2026-11-28T03:00:00Z", "metric": "active_power", "value": 1}
    assert reason(
        {"v": 1, "edge": "e", "seq": 0, "readings": [{**ok, "ts": "2026-11-28T03:00:00"}]}
    ) == ("readings.0.ts: timestamp '2026-11-28T03:00:00' has no UTC offset; send Z or +hh:mm")
    assert reason({"v": 2, "edge": "e", "seq": 0, "readings": [ok]}).startswith(
        "unsupported payload version"
    )
    assert reason({"v": 1, "edge": "e", "seq": 0, "readings": []}).startswith("readings:")
    assert "extra" in reason({"v": 1, "edge": "e", "seq": 0, "readings": [ok], "site": "x"}).lower()
    assert reason(
        {"v": 1, "edge": "e", "seq": 0, "readings": [{**ok, "ts": "2026-02-30T00:00:00Z"}]}
    ) == ("readings.0.ts: timestamp '2026-02-30T00:00:00Z' is not a real date and time")
    with pytest.raises(PayloadError, match="more than"):
        decode_payload(b" " * (MAX_PAYLOAD_BYTES + 1))


def test_topics_round_trip_and_reject_bad_ids() -> None:
    assert parse_topic(telemetry_topic("f1", "sewing-1", "m07")) == TelemetryTopic(
        "f1", "sewing-1", "m07"
    )
    assert parse_topic(status_topic("f1", "edge-01")) == StatusTopic("f1", "edge-01")
    for bad in [
        "tonle/v1/F1/a/b/telemetry",
        "tonle/v2/f1/a/b/telemetry",
        "tonle/v1/f1/a/b/other",
        "tonle/v1/f1/a/telemetry",
        "x/v1/f1/a/b/telemetry",
        "tonle/v1/f1/_edge/E 1/status",
    ]:
        with pytest.raises(TopicError):
            parse_topic(bad)
    with pytest.raises(TopicError):
        telemetry_topic("f1", "Line 1", "m")


def test_json_schema_names_the_rules() -> None:
    schema = payload_json_schema()
    reading = schema["$defs"]["Reading"]["properties"]
    assert {"type": "integer", "description": "milliseconds since 1970-01-01T00:00:00Z"} in reading[
        "ts"
    ]["anyOf"]
    assert schema["properties"]["edge"]["pattern"] == "^[a-z0-9][a-z0-9_-]{0,62}$"
    assert schema["required"] == ["v", "edge", "seq", "readings"]


# ------------------------------------------------------------------ properties

ids = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")
metrics = st.from_regex(r"\A[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,6}){0,2}\Z")
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
values = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(
    edge=ids,
    seq=st.integers(0, 2**53),
    readings=st.lists(st.tuples(instants, metrics, values), min_size=1, max_size=20),
)
def test_encode_then_decode_is_identity(
    edge: str, seq: int, readings: list[tuple[datetime, str, float]]
) -> None:
    original = Payload(
        v=1, edge=edge, seq=seq, readings=[Reading(ts=t, metric=m, value=v) for t, m, v in readings]
    )
    assert decode_payload(encode_payload(original)) == original


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_decoder_only_ever_raises_payload_error_on_bytes(raw: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode_payload(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "v": st.sampled_from([1, 1, 2, "1", True]),
            "edge": st.sampled_from(["edge-01", "E", 5]),
            "seq": st.sampled_from([0, -1, 3, 1.5, None]),
            "readings": st.lists(
                st.fixed_dictionaries(
                    {
                        "ts": st.one_of(st.integers(), st.text(max_size=30), instants.map(str)),
                        "metric": st.sampled_from(["active_power", "Active", ""]),
                        "value": json_values,
                    }
                ),
                max_size=3,
            ),
        },
        optional={"buffered": json_values, "unit": json_values},
    )
)
def test_decoder_accepts_only_what_the_contract_allows(document: dict[str, object]) -> None:
    raw = json.dumps(document, allow_nan=True).encode()
    try:
        payload = decode_payload(raw)
    except PayloadError:
        return
    assert document["v"] == 1 and document["v"] is not True
    assert document["edge"] == "edge-01"
    assert isinstance(document["seq"], int) and document["seq"] >= 0
    for reading in payload.readings:
        assert math.isfinite(reading.value)
        assert reading.ts.tzinfo is UTC


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_epoch_milliseconds(ms: int) -> None:
    assert parse_timestamp(ms) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def test_deep_nesting_is_a_payload_error_not_a_crash() -> None:
    # 100 KB, under the size limit, but deeper than Python's recursion limit.
    with pytest.raises(PayloadError, match="nests too deeply"):
        decode_payload(b"[" * 100_000)


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_whose_offset_leaves_the_calendar_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_timestamp(raw)

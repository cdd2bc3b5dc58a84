"""Fuzzing the ingester's decoder: whatever arrives, it classifies and never raises.

Pure, no sockets. Every strategy feeds :func:`ingest.decode.decode` and checks the same
property: the result is a Telemetry, an EdgeStatus or a Rejected; a Rejected carries a
non-empty reason that PostgreSQL can store; an accepted message satisfies the contract
(ids, finite values, aware UTC timestamps within the ingester's limits, a seq that fits a
bigint). Examples are derandomised, so a run is the same on every machine.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import (
    MAX_REASON_CHARS,
    MAX_SEQ,
    EdgeStatus,
    Incoming,
    Limits,
    Rejected,
    Telemetry,
    decode,
)
from tonle.contract import (
    ID_PATTERN,
    MAX_PAYLOAD_BYTES,
    METRIC_PATTERN,
    format_timestamp,
    is_valid_id,
    is_valid_metric,
    status_topic,
    telemetry_topic,
)

RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LIMITS = Limits()
TOPIC = "tonle/v1/f1/line-1/m1/telemetry"

# Derandomised (the same examples on every run) and no example database, so CI is
# deterministic; no per-example deadline, since a 300 KiB example takes longer than a tiny one.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _LOWER + "0123456789"
# Built from pieces rather than st.from_regex (several times faster); both patterns are
# checked against the contract's own regular expressions below.
ids = st.builds(
    lambda head, tail: head + tail, st.sampled_from(_ALNUM), st.text(_ALNUM + "_-", max_size=62)
)
metrics = st.builds(
    lambda head, word, parts: head + word + "".join("_" + part for part in parts),
    st.sampled_from(_LOWER),
    st.text(_ALNUM, max_size=10),
    st.lists(st.text(_ALNUM, min_size=1, max_size=8), max_size=5),
)
# Any code point, lone surrogates and NUL included: JSON can carry all of them.
any_char = st.characters(codec=None, exclude_categories=())
any_text = st.text(any_char, max_size=40)
poison_text = st.sampled_from(["\x00", "W\x00", "\ud800", "\udfff°C", "\n", "\x7f", "°C", "m³"])


def _classify(topic: str, payload: bytes) -> Telemetry | EdgeStatus | Rejected:
    """Decode one message and check the property every result must have."""
    message = Incoming(topic, payload, mid=1, qos=1, retain=False, received_at=RECEIVED)
    result = decode(message, LIMITS)
    assert isinstance(result, Telemetry | EdgeStatus | Rejected)
    if isinstance(result, Rejected):
        assert (result.topic, result.payload) == (topic, payload)
        assert result.reason.strip()
        assert len(result.reason) <= MAX_REASON_CHARS
        result.reason.encode("utf-8")  # a lone surrogate would fail here, and in psycopg
        assert result.reason.isprintable(), f"reason holds control characters: {result.reason!r}"
    elif isinstance(result, Telemetry):
        _check_accepted(topic, result)
    else:
        assert topic == status_topic(result.site, result.edge_id)
        assert result.status in ("online", "offline")
    return result


def _check_accepted(topic: str, telemetry: Telemetry) -> None:
    """An accepted message follows the contract in every field the store relies on."""
    assert topic == telemetry_topic(telemetry.site, telemetry.line, telemetry.machine)
    payload = telemetry.payload
    assert payload.v == 1
    assert is_valid_id(payload.edge)
    assert 0 <= payload.seq <= MAX_SEQ
    assert 1 <= len(payload.readings) <= 10_000
    for reading in payload.readings:
        assert is_valid_metric(reading.metric) and len(reading.metric) <= 63
        assert isinstance(reading.value, float) and math.isfinite(reading.value)
        assert reading.ts.tzinfo is UTC
        assert LIMITS.min_ts <= reading.ts <= RECEIVED + LIMITS.max_future
        if reading.unit is not None:
            reading.unit.encode("utf-8")
            assert reading.unit.isprintable() and len(reading.unit) <= 16


def _encode(document: object, ascii_only: bool) -> bytes:
    """JSON bytes as a device might send them (NaN and Infinity included when present).

    Without ``ensure_ascii`` a lone surrogate is written as its raw (invalid) UTF-8 bytes.
    """
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# ------------------------------------------------------------------ arbitrary input


@settings(FUZZ, max_examples=1_000)
@given(raw=st.binary(max_size=2_048))
def test_arbitrary_bytes_are_classified(raw: bytes) -> None:
    assert isinstance(_classify(TOPIC, raw), Rejected)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=30,
)


@settings(FUZZ, max_examples=1_000)
@given(document=json_values, ascii_only=st.booleans())
def test_arbitrary_json_is_classified(document: object, ascii_only: bool) -> None:
    _classify(TOPIC, _encode(document, ascii_only))


@settings(FUZZ, max_examples=200)
@given(
    opener=st.sampled_from(["[", '{"a":', '{"v":1,"edge":"e","seq":0,"readings":[{"ts":']),
    depth=st.integers(min_value=1, max_value=2_000)
    | st.integers(min_value=10_001, max_value=120_000),
    closed=st.booleans(),
)
def test_deep_nesting_is_rejected_not_a_recursion_error(
    opener: str, depth: int, closed: bool
) -> None:
    closer = {"[": "]", '{"a":': "}"}.get(opener, "}]}")
    text = opener * depth + ("1" + closer * depth if closed else "")
    result = _classify(TOPIC, text.encode())
    assert isinstance(result, Rejected)
    if depth > 10_000 and len(text) <= MAX_PAYLOAD_BYTES:
        assert "nests too deeply" in result.reason


@settings(FUZZ, max_examples=20)
@given(
    extra=st.integers(min_value=1, max_value=MAX_PAYLOAD_BYTES * 4), filler=st.sampled_from("x 0[")
)
def test_oversized_payloads_are_rejected_by_size(extra: int, filler: str) -> None:
    head = b'{"v":1,"edge":"e","seq":0,"readings":[],"pad":"'
    raw = head + filler.encode() * (MAX_PAYLOAD_BYTES + extra - len(head))
    result = _classify(TOPIC, raw)
    assert isinstance(result, Rejected)
    assert result.reason == f"payload is {len(raw)} bytes, more than {MAX_PAYLOAD_BYTES}"


# ------------------------------------------------- JSON shaped like a payload, wrong


@st.composite
def valid_timestamps(draw: st.DrawFn) -> object:
    """A timestamp within the ingester's limits: epoch ms, or RFC 3339 with some offset."""
    ts = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2026, 11, 28, 12, 59),
            timezones=st.just(UTC),
        )
    )
    if draw(st.booleans()):
        return int(ts.timestamp() * 1000)
    offset = timedelta(minutes=draw(st.integers(min_value=-14 * 60, max_value=14 * 60)))
    local = ts.astimezone(timezone(offset))
    return local.isoformat()


timestamps_any = st.one_of(
    st.builds(
        lambda d: d.isoformat(),
        st.datetimes(timezones=st.none() | st.just(UTC)),  # naive ones have no offset
    ),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:30:00+14:00",
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59.999999999-12:00",
            "2026-02-30T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T03:00:00",
            "2026-11-28 03:00:00z",
            "",
        ]
    ),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
    st.booleans(),
    any_text,
    st.none(),
)
values_any = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.booleans(),
    any_text,
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def readings_shaped(draw: st.DrawFn) -> object:
    """A reading whose fields are sometimes right and sometimes anything at all."""
    reading: dict[str, object] = {
        "ts": draw(valid_timestamps() | timestamps_any),
        "metric": draw(metrics | any_text | st.integers()),
        "value": draw(st.floats(min_value=-1e300, max_value=1e300) | values_any),
    }
    if draw(st.booleans()):
        reading["unit"] = draw(st.none() | st.text(max_size=4) | any_text | poison_text)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        reading[draw(any_text)] = draw(values_any)
    return reading if draw(st.integers(min_value=0, max_value=19)) else draw(values_any)


@st.composite
def payloads_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A payload whose fields are sometimes right and sometimes anything at all."""
    document: dict[str, Any] = {
        "v": draw(st.just(1) | st.integers(-2, 3) | st.booleans() | st.floats() | any_text),
        "edge": draw(ids | any_text | st.integers()),
        "seq": draw(
            st.integers(min_value=0, max_value=2**70)
            | st.sampled_from([MAX_SEQ, MAX_SEQ + 1, -1])
            | values_any
        ),
        "readings": draw(st.lists(readings_shaped(), max_size=4) | values_any),
    }
    if draw(st.booleans()):
        document["buffered"] = draw(st.booleans() | values_any)
    for key in draw(st.lists(st.sampled_from(["v", "edge", "seq", "readings"]), max_size=2)):
        document.pop(key, None)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        document[draw(st.sampled_from(["site", "line", "machine"]) | any_text)] = draw(
            values_any | ids
        )
    return document


@settings(FUZZ, max_examples=1_600)
@given(document=payloads_shaped(), ascii_only=st.booleans())
def test_payload_shaped_json_with_wrong_fields_is_classified(
    document: dict[str, Any], ascii_only: bool
) -> None:
    _classify(TOPIC, _encode(document, ascii_only))


# ------------------------------------------------------------ valid input is kept


@st.composite
def valid_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A payload the contract accepts, within the ingester's clock limits."""
    readings = [
        {
            "ts": draw(valid_timestamps()),
            "metric": draw(metrics),
            "value": draw(
                st.integers(min_value=-(10**15), max_value=10**15)
                | st.floats(allow_nan=False, allow_infinity=False)
            ),
            **(
                {"unit": draw(st.sampled_from(["W", "kWh", "°C", "m³/h", "%"]))}
                if draw(st.booleans())
                else {}
            ),
        }
        for _ in range(draw(st.integers(min_value=1, max_value=5)))
    ]
    return {
        "v": 1,
        "edge": draw(ids),
        "seq": draw(st.integers(min_value=0, max_value=MAX_SEQ)),
        "buffered": draw(st.booleans()),
        "readings": readings,
    }


@settings(FUZZ, max_examples=600)
@given(document=valid_payloads(), site=ids, line=ids, machine=ids)
def test_valid_payloads_are_accepted_exactly(
    document: dict[str, Any], site: str, line: str, machine: str
) -> None:
    result = _classify(telemetry_topic(site, line, machine), _encode(document, True))
    assert isinstance(result, Telemetry), getattr(result, "reason", "")
    assert (result.site, result.line, result.machine) == (site, line, machine)
    assert (result.payload.edge, result.payload.seq) == (document["edge"], document["seq"])
    for sent, got in zip(document["readings"], result.payload.readings, strict=True):
        assert got.metric == sent["metric"]
        assert got.value == float(sent["value"])
        assert got.unit == sent.get("unit")
        ts = sent["ts"]
        expected = (
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts)
            if isinstance(ts, int)
            else datetime.fromisoformat(ts).astimezone(UTC)
        )
        assert got.ts == expected
        assert format_timestamp(got.ts).endswith("Z")


# ----------------------------------------------------------------------- topics

topics_any = st.one_of(
    any_text,
    st.builds(lambda rest: f"tonle/v1/{rest}", any_text),
    st.builds(
        lambda parts: "/".join(["tonle", "v1", *parts]),
        st.lists(
            ids | any_text | st.sampled_from(["_edge", "telemetry", "status", "+", "#", ""]),
            max_size=7,
        ),
    ),
    st.builds(lambda s, ln, m, x: f"tonle/v1/{s}/{ln}/{m}/{x}/telemetry", ids, ids, ids, ids),
    st.builds(lambda s, ln, m: f"tonle/v2/{s}/{ln}/{m}/telemetry", ids, ids, ids),
    st.builds(telemetry_topic, ids, ids, ids),
    st.builds(status_topic, ids, ids),
)


@settings(FUZZ, max_examples=600)
@given(topic=topics_any, document=valid_payloads())
def test_wrong_topics_are_rejected_and_right_ones_accepted(
    topic: str, document: dict[str, Any]
) -> None:
    result = _classify(topic, _encode(document, True))
    parts = topic.split("/")
    is_telemetry = (
        len(parts) == 6
        and parts[:2] == ["tonle", "v1"]
        and parts[5] == "telemetry"
        and all(is_valid_id(p) for p in parts[2:5])
    )
    is_status = (
        len(parts) == 6
        and parts[:2] == ["tonle", "v1"]
        and parts[3] == "_edge"
        and parts[5] == "status"
        and is_valid_id(parts[2])
        and is_valid_id(parts[4])
    )
    if is_telemetry:
        assert isinstance(result, Telemetry)
    else:
        assert isinstance(result, Rejected)  # a status topic with a JSON payload, too
    if is_status:
        assert isinstance(result, Rejected) and result.reason.startswith("status must be")


@settings(FUZZ, max_examples=300)
@given(
    site=ids,
    edge=ids,
    raw=st.binary(max_size=64) | st.sampled_from([b"online", b'"offline"', b" online\n"]),
)
def test_status_messages_are_classified(site: str, edge: str, raw: bytes) -> None:
    result = _classify(status_topic(site, edge), raw)
    expected = raw.decode("utf-8", "replace").strip().strip('"')
    assert isinstance(result, EdgeStatus) == (expected in ("online", "offline"))


@settings(FUZZ, max_examples=100)
@given(site=ids, metric=metrics)
def test_the_id_strategies_follow_the_contract(site: str, metric: str) -> None:
    assert re.fullmatch(ID_PATTERN, site) and is_valid_id(site)
    assert re.fullmatch(METRIC_PATTERN, metric) and is_valid_metric(metric) and len(metric) <= 63


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text and text.isprintable()


@settings(FUZZ, max_examples=200)
@given(
    document=valid_payloads(),
    unit=(poison_text | st.text(any_char, min_size=1, max_size=16)).filter(
        lambda u: not _storable(u)
    ),
)
def test_units_the_database_cannot_store_are_rejected(document: dict[str, Any], unit: str) -> None:
    document["readings"][0]["unit"] = unit
    result = _classify(TOPIC, _encode(document, True))
    assert isinstance(result, Rejected)
    assert result.reason.startswith("readings.0.unit: ")


@settings(FUZZ, max_examples=100)
@given(document=valid_payloads(), seq=st.integers(min_value=MAX_SEQ + 1, max_value=2**80))
def test_seq_beyond_a_bigint_is_rejected(document: dict[str, Any], seq: int) -> None:
    document["seq"] = seq
    result = _classify(TOPIC, _encode(document, True))
    assert isinstance(result, Rejected)
    assert result.reason == f"seq: {seq} is larger than {MAX_SEQ}"

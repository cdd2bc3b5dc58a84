"""From an MQTT message to rows, or to a dead letter with a reason: pure, no sockets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tonle.contract import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Payload,
    StatusTopic,
    TelemetryTopic,
    decode_payload,
    parse_topic,
)
from tonle.errors import PayloadError, TopicError


@dataclass(frozen=True, slots=True)
class Incoming:
    """An MQTT message as the broker delivered it, before anything else looks at it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Telemetry:
    """A valid telemetry message: where it came from and what it carries."""

    site: str
    line: str
    machine: str
    payload: Payload


@dataclass(frozen=True, slots=True)
class EdgeStatus:
    """An edge announcing itself online or offline."""

    site: str
    edge_id: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that cannot be stored, and why."""

    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Limits:
    """How far from the ingester's clock a reading may be."""

    max_future: timedelta = timedelta(hours=1)
    min_ts: datetime = datetime(2000, 1, 1, tzinfo=UTC)


Decoded = Telemetry | EdgeStatus | Rejected
_TOPIC_KEYS = ("site", "line", "machine")
MAX_SEQ = 2**63 - 1  # edge_messages.seq is a bigint
MAX_REASON_CHARS = 1_000


def decode(message: Incoming, limits: Limits) -> Decoded:
    """Classify one message; never raises on bad input."""
    try:
        where = parse_topic(message.topic)
    except TopicError as exc:
        return Rejected(message.topic, message.payload, printable(str(exc)))
    if isinstance(where, StatusTopic):
        return _decode_status(message, where)
    return _decode_telemetry(message, where, limits)


def _decode_status(message: Incoming, where: StatusTopic) -> Decoded:
    text = message.payload.decode("utf-8", errors="replace").strip().strip('"')
    if text not in (STATUS_ONLINE, STATUS_OFFLINE):
        return Rejected(
            message.topic,
            message.payload,
            f"status must be 'online' or 'offline', got {text[:40]!r}",
        )
    return EdgeStatus(where.site, where.edge_id, text, message.received_at)


def _decode_telemetry(message: Incoming, where: TelemetryTopic, limits: Limits) -> Decoded:
    try:
        payload = _checked_payload(message.payload)
    except PayloadError as exc:
        reason = _topic_disagreement(message.payload, where) or str(exc)
        return Rejected(message.topic, message.payload, printable(reason))
    latest = message.received_at + limits.max_future
    for index, reading in enumerate(payload.readings):
        if reading.ts > latest:
            return Rejected(
                message.topic,
                message.payload,
                f"readings.{index}.ts: {reading.ts.isoformat()} is more than "
                f"{limits.max_future} ahead of the ingester's clock",
            )
        if reading.ts < limits.min_ts:
            return Rejected(
                message.topic,
                message.payload,
                f"readings.{index}.ts: {reading.ts.isoformat()} is before "
                f"{limits.min_ts.date()} (gateway clock not set?)",
            )
    return Telemetry(where.site, where.line, where.machine, payload)


def _checked_payload(raw: bytes) -> Payload:
    """:func:`decode_payload`, plus what the database cannot take; only PayloadError escapes."""
    try:
        payload = decode_payload(raw)
    except RecursionError:
        # json.loads gives up on nesting deeper than the interpreter's recursion limit.
        raise PayloadError("payload is not JSON: it nests too deeply") from None
    except OverflowError as exc:
        # A timestamp near year 1 or 9999 whose offset takes it outside datetime's range.
        raise PayloadError(f"a timestamp is out of range ({exc})") from None
    if payload.seq > MAX_SEQ:
        raise PayloadError(f"seq: {payload.seq} is larger than {MAX_SEQ}")
    for index, reading in enumerate(payload.readings):
        if reading.unit is not None and not _storable_text(reading.unit):
            raise PayloadError(
                f"readings.{index}.unit: {reading.unit!r} holds a control character or an "
                "unpaired surrogate"
            )
    return payload


def _storable_text(text: str) -> bool:
    """True if PostgreSQL can store ``text`` as it is: UTF-8, and no control characters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return text.isprintable()


def printable(text: str) -> str:
    """``text`` safe for a ``text`` column and a log line: escaped, and cut to a sane length."""
    if not _storable_text(text):
        text = "".join(
            ch if _storable_text(ch) else ch.encode("unicode_escape").decode("ascii") for ch in text
        )
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 1] + "…"
    return text


def _topic_disagreement(raw: bytes, where: TelemetryTopic) -> str | None:
    """Name the id a payload states differently from its topic, if it states one."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    for key in _TOPIC_KEYS:
        stated = document.get(key)
        expected = getattr(where, key)
        if stated is not None and stated != expected:
            shown = stated[:64] if isinstance(stated, str) else f"<a JSON {type(stated).__name__}>"
            return f"payload says {key}={shown!r} but the topic says {key}={expected!r}"
    return None

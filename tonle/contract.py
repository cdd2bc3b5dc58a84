"""The MQTT contract every part agrees on: topics, ids and the v1 telemetry payload.

One place for it, so the edge agent that writes messages and the ingester that reads
them cannot drift apart. Topic rules are pure functions, tested without a broker.

Topics::

    tonle/v1/{site}/{line}/{machine}/telemetry      readings
    tonle/v1/{site}/_edge/{edge_id}/status          retained "online" / "offline"

Payload (JSON, UTF-8, at most :data:`MAX_PAYLOAD_BYTES`)::

    {"v": 1, "edge": "edge-01", "seq": 1234, "buffered": false,
     "readings": [{"ts": "2026-11-28T10:00:00.120Z", "metric": "active_power",
                   "value": 412.5, "unit": "W"}]}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from tonle.errors import PayloadError, TopicError

PREFIX: Final = "tonle/v1"
MAX_PAYLOAD_BYTES: Final = 256 * 1024
ID_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,62}$"
METRIC_PATTERN: Final = r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$"
# The unit of each metric the analytics understand (None: a ratio, a count or a state).
METRIC_UNITS: Final[dict[str, str | None]] = {
    "active_power": "W",
    "energy": "Wh",
    "voltage": "V",
    "current": "A",
    "power_factor": None,
    "frequency": "Hz",
    "vibration_rms": "mm/s",
    "vibration_peak": "g",
    "bearing_temp": "°C",
    "motor_temp": "°C",
    "ambient_temp": "°C",
    "pressure": "bar",
    "units_good": None,
    "units_reject": None,
    "machine_state": None,
    "generator_on": None,
}
STATUS_ONLINE: Final = "online"
STATUS_OFFLINE: Final = "offline"

_ID = re.compile(ID_PATTERN)
_METRIC = re.compile(METRIC_PATTERN)
# RFC 3339 date-time; the offset group is optional here only so that a missing offset
# gets its own, clearer error message.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- ids


def is_valid_id(value: str) -> bool:
    """True if ``value`` may name a site, line, machine or edge."""
    return _ID.fullmatch(value) is not None


def is_valid_metric(value: str) -> bool:
    """True if ``value`` is a snake_case metric name."""
    return _METRIC.fullmatch(value) is not None


# ------------------------------------------------------------------------ topics


@dataclass(frozen=True, slots=True)
class TelemetryTopic:
    """The parts of a telemetry topic."""

    site: str
    line: str
    machine: str


@dataclass(frozen=True, slots=True)
class StatusTopic:
    """The parts of an edge status topic."""

    site: str
    edge_id: str


def telemetry_topic(site: str, line: str, machine: str) -> str:
    """The topic a machine's readings are published on."""
    for kind, value in (("site", site), ("line", line), ("machine", machine)):
        if not is_valid_id(value):
            raise TopicError(f"{kind} id {value!r} does not match {ID_PATTERN}")
    return f"{PREFIX}/{site}/{line}/{machine}/telemetry"


def status_topic(site: str, edge_id: str) -> str:
    """The retained topic an edge announces itself online or offline on."""
    for kind, value in (("site", site), ("edge", edge_id)):
        if not is_valid_id(value):
            raise TopicError(f"{kind} id {value!r} does not match {ID_PATTERN}")
    return f"{PREFIX}/{site}/_edge/{edge_id}/status"


def telemetry_filter(site: str = "+") -> str:
    """The subscription filter for the readings of one site, or of all (``+``)."""
    return f"{PREFIX}/{site}/+/+/telemetry"


def status_filter(site: str = "+") -> str:
    """The subscription filter for edge status messages."""
    return f"{PREFIX}/{site}/_edge/+/status"


def parse_topic(topic: str) -> TelemetryTopic | StatusTopic:
    """Split a topic into its ids; raise :class:`TopicError` if it is not ours."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "tonle" or parts[1] != "v1":
        raise TopicError(f"topic {topic!r} is not tonle/v1/<site>/<line>/<machine>/telemetry")
    _, _, site, second, third, leaf = parts
    if second == "_edge" and leaf == "status":
        ids = {"site": site, "edge": third}
    elif leaf == "telemetry":
        ids = {"site": site, "line": second, "machine": third}
    else:
        raise TopicError(f"topic {topic!r} ends in {leaf!r}, expected telemetry or status")
    for kind, value in ids.items():
        if not is_valid_id(value):
            raise TopicError(f"{kind} id {value!r} in topic does not match {ID_PATTERN}")
    if second == "_edge":
        return StatusTopic(site=site, edge_id=third)
    return TelemetryTopic(site=site, line=second, machine=third)


# ----------------------------------------------------------------------- payload


def parse_timestamp(raw: object) -> datetime:
    """Turn a payload ``ts`` (RFC 3339 with offset, or integer epoch ms) into UTC."""
    if isinstance(raw, bool):  # bool is an int in Python; never a timestamp
        raise ValueError("timestamp must be an RFC 3339 string or integer epoch milliseconds")
    if isinstance(raw, int):
        try:
            return _EPOCH + timedelta(milliseconds=raw)
        except OverflowError:
            raise ValueError(f"epoch milliseconds {raw} are out of range") from None
    if isinstance(raw, datetime):  # already decoded (models built in code)
        if raw.tzinfo is None:
            raise ValueError("timestamp has no UTC offset; send Z or +hh:mm")
        return _to_utc(raw)
    if not isinstance(raw, str):
        raise ValueError("timestamp must be an RFC 3339 string or integer epoch milliseconds")
    match = _RFC3339.match(raw)
    if match is None:
        raise ValueError(f"timestamp {raw[:40]!r} is not RFC 3339")
    if match.group("offset") is None:
        raise ValueError(f"timestamp {raw[:40]!r} has no UTC offset; send Z or +hh:mm")
    try:
        parsed = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {raw[:40]!r} is not a real date and time") from None
    return _to_utc(parsed)


def _to_utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a date near year 1 or 9999 whose offset leaves the calendar is refused."""
    try:
        return ts.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {ts.isoformat()[:40]!r} is out of range") from None


def format_timestamp(ts: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision, as the edge sends it."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "description": "RFC 3339 with an offset (Z or +hh:mm), or integer epoch milliseconds",
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer", "description": "milliseconds since 1970-01-01T00:00:00Z"},
            ],
        }
    ),
]
Id = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id")]
Metric = Annotated[str, Field(pattern=METRIC_PATTERN, max_length=63, description="snake_case")]


class Reading(BaseModel):
    """One timestamped value of one metric."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    ts: Timestamp
    metric: Metric
    value: float = Field(allow_inf_nan=False, description="a finite JSON number")
    unit: str | None = Field(default=None, max_length=16)


class Payload(BaseModel):
    """A v1 telemetry message: one edge, one machine (from the topic), many readings."""

    model_config = ConfigDict(
        strict=True, frozen=True, extra="forbid", title="Tonle telemetry payload v1"
    )

    v: Literal[1] = Field(description="payload version; must be 1")
    edge: Id
    seq: int = Field(ge=0, description="increases by one per message from an edge")
    buffered: bool = Field(default=False, description="replayed from the edge's spool")
    readings: list[Reading] = Field(min_length=1, max_length=10_000)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_payload(raw: bytes) -> Payload:
    """Validate raw message bytes as a v1 payload, or raise :class:`PayloadError`.

    The reason names what is wrong (field path and rule), so it can be stored beside the
    raw bytes in ``dead_letters`` and read by a person.
    """
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(raw)} bytes, more than {MAX_PAYLOAD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"payload is not UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("payload is not JSON: it nests too deeply") from None
    if not isinstance(document, dict):
        raise PayloadError(f"payload is a JSON {type(document).__name__}, expected an object")
    if document.get("v") not in (1, None) or isinstance(document.get("v"), bool):
        raise PayloadError(f"unsupported payload version v={document.get('v')!r}; expected 1")
    try:
        return Payload.model_validate(document)
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError, limit: int = 3) -> str:
    """One line naming the first few problems, e.g. ``readings.0.ts: …``."""
    problems = []
    for error in exc.errors(include_url=False)[:limit]:
        where = ".".join(str(part) for part in error["loc"]) or "payload"
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    more = exc.error_count() - limit
    if more > 0:
        problems.append(f"and {more} more")
    return "; ".join(problems)


def encode_payload(payload: Payload) -> bytes:
    """Serialise a payload as compact JSON bytes."""
    return payload.model_dump_json(exclude_none=True).encode("utf-8")


def payload_json_schema() -> dict[str, Any]:
    """The JSON Schema of the v1 payload, for device makers to validate against."""
    schema = Payload.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        f"Published on {PREFIX}/<site>/<line>/<machine>/telemetry, QoS 1, UTF-8 JSON of at "
        f"most {MAX_PAYLOAD_BYTES} bytes. Values are finite numbers (no booleans, NaN or "
        "strings). A reading is identified by (site, line, machine, metric, ts)."
    )
    return schema

"""Packing samples into messages: one open batch per machine topic, flushed by size or age.

Pure logic with no threads or clocks of its own: the caller passes the monotonic time,
so every decision can be tested with exact numbers. Readings are encoded to their JSON
text as they arrive, which is what lets a batch keep its payload under the contract's
size limit without encoding it twice.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from edge.sources import Sample
from tonle.contract import MAX_PAYLOAD_BYTES, format_timestamp, is_valid_metric, telemetry_topic
from tonle.errors import PayloadError

# What the envelope around the readings array can take at most:
# {"v":1,"edge":"<63 chars>","seq":<20 digits>,"buffered":false,"readings":[…]}
ENVELOPE_OVERHEAD_BYTES = 160
MAX_UNIT_CHARS = 16


@dataclass(frozen=True, slots=True)
class Batch:
    """The readings of one machine that will travel as one message.

    ``readings_json`` is the JSON array text, ASCII only, ready to be spliced into the
    envelope; ``readings`` is how many it holds.
    """

    topic: str
    readings_json: str
    readings: int


@dataclass(slots=True)
class _OpenBatch:
    topic: str
    opened_at_s: float
    parts: list[str] = field(default_factory=list)
    size_bytes: int = 2  # the brackets

    def close(self) -> Batch:
        return Batch(self.topic, "[" + ",".join(self.parts) + "]", len(self.parts))


class ReadingEncoder:
    """Turns samples into reading JSON, checking what the contract requires of them."""

    def __init__(self) -> None:
        self._metrics: set[str] = set()
        self._units: dict[str | None, str] = {None: ""}

    def encode(self, sample: Sample) -> str:
        """The reading's JSON object text; raise PayloadError if the sample breaks the contract."""
        if sample.metric not in self._metrics:
            if not is_valid_metric(sample.metric) or len(sample.metric) > 63:
                raise PayloadError(f"metric {sample.metric[:70]!r} is not snake_case")
            self._metrics.add(sample.metric)
        unit = self._units.get(sample.unit)
        if unit is None:
            assert sample.unit is not None  # None is always in the cache
            if len(sample.unit) > MAX_UNIT_CHARS:
                raise PayloadError(f"unit {sample.unit[:20]!r} is longer than {MAX_UNIT_CHARS}")
            unit = ',"unit":' + json.dumps(sample.unit)
            self._units[sample.unit] = unit
        if sample.ts.tzinfo is None:
            raise PayloadError(f"{sample.metric}: timestamp {sample.ts} has no time zone")
        if isinstance(sample.value, bool) or not isinstance(sample.value, (int, float)):
            raise PayloadError(f"{sample.metric}: value {sample.value!r} is not a number")
        value = float(sample.value)
        if not math.isfinite(value):
            raise PayloadError(f"{sample.metric}: value {value} is not finite")
        return (
            f'{{"ts":"{format_timestamp(sample.ts)}","metric":"{sample.metric}",'
            f'"value":{value!r}{unit}}}'
        )


class Batcher:
    """Collects samples per (line, machine) and hands back the batches that are ready.

    Args:
        site: the site id, part of every topic.
        max_readings: a batch is full, and handed back at once, with this many readings.
        max_delay_s: a batch is due once its oldest reading has waited this long.
        max_payload_bytes: the whole message, envelope included, stays at or under this.
    """

    def __init__(
        self,
        site: str,
        max_readings: int = 50,
        max_delay_s: float = 1.0,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        if max_readings < 1 or max_delay_s <= 0:
            raise ValueError("max_readings must be at least 1 and max_delay_s positive")
        if max_payload_bytes <= ENVELOPE_OVERHEAD_BYTES + 2:
            raise ValueError(f"max_payload_bytes must exceed {ENVELOPE_OVERHEAD_BYTES + 2}")
        self.site = site
        self.max_readings = max_readings
        self.max_delay_s = max_delay_s
        self.max_readings_bytes = max_payload_bytes - ENVELOPE_OVERHEAD_BYTES
        self._encoder = ReadingEncoder()
        self._topics: dict[tuple[str, str], str] = {}
        self._open: dict[tuple[str, str], _OpenBatch] = {}
        self.pending_readings = 0

    def add(self, sample: Sample, now_s: float) -> list[Batch]:
        """Add one sample; return the batches that became full (usually none).

        Raises PayloadError (or TopicError, its sibling) if the sample breaks the
        contract; nothing is added then.
        """
        part = self._encoder.encode(sample)
        key = (sample.line, sample.machine)
        ready: list[Batch] = []
        batch = self._open.get(key)
        if batch is None:
            batch = self._start(key, now_s)
        elif batch.size_bytes + 1 + len(part) > self.max_readings_bytes:
            ready.append(self._close(key))
            batch = self._start(key, now_s)
        if batch.size_bytes + len(part) > self.max_readings_bytes:
            del self._open[key]
            raise PayloadError(f"one reading of {len(part)} bytes does not fit in a message")
        batch.size_bytes += len(part) + (1 if batch.parts else 0)
        batch.parts.append(part)
        self.pending_readings += 1
        if len(batch.parts) >= self.max_readings:
            ready.append(self._close(key))
        return ready

    def due(self, now_s: float) -> list[Batch]:
        """Close and return the batches whose oldest reading has waited max_delay_s or more."""
        keys = [k for k, b in self._open.items() if now_s - b.opened_at_s >= self.max_delay_s]
        return [self._close(key) for key in keys]

    def next_due_s(self) -> float | None:
        """When the next batch falls due (monotonic seconds), or None if nothing is open."""
        if not self._open:
            return None
        return min(b.opened_at_s for b in self._open.values()) + self.max_delay_s

    def drain(self) -> list[Batch]:
        """Close and return every open batch (on shutdown)."""
        return [self._close(key) for key in list(self._open)]

    def _start(self, key: tuple[str, str], now_s: float) -> _OpenBatch:
        topic = self._topics.get(key)
        if topic is None:
            topic = telemetry_topic(self.site, *key)
            self._topics[key] = topic
        batch = _OpenBatch(topic, now_s)
        self._open[key] = batch
        return batch

    def _close(self, key: tuple[str, str]) -> Batch:
        batch = self._open.pop(key).close()
        self.pending_readings -= batch.readings
        return batch

"""Simulated time as integer milliseconds since the Unix epoch, and conversions to datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MS_PER_S: Final = 1000
MS_PER_H: Final = 3_600_000
MS_PER_DAY: Final = 86_400_000
_ONE_MS: Final = timedelta(milliseconds=1)


def to_ms(ts: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime (sub-millisecond dropped)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone; pass an aware datetime")
    return (ts - EPOCH) // _ONE_MS


def from_ms(ms: int) -> datetime:
    """The UTC datetime of milliseconds since the epoch."""
    return EPOCH + timedelta(milliseconds=ms)

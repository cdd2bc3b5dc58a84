"""The in-memory shape every analytics function takes: one sensor's readings as arrays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

MS_PER_S = 1_000
MS_PER_HOUR = 3_600_000

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    """Readings of one sensor, sorted by time, without duplicate timestamps.

    ``ts_ms`` holds UTC epoch milliseconds (int64); ``values`` the readings (float64).
    """

    ts_ms: Int64Array
    values: FloatArray

    def __post_init__(self) -> None:
        if self.ts_ms.shape != self.values.shape or self.ts_ms.ndim != 1:
            raise ValueError("ts_ms and values must be 1-D arrays of the same length")
        if self.ts_ms.size > 1 and not bool(np.all(np.diff(self.ts_ms) > 0)):
            raise ValueError("ts_ms must be strictly increasing")

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    @classmethod
    def of(cls, ts_ms: object, values: object) -> Series:
        """Build from anything array-like (sorted by time, no duplicates)."""
        return cls(np.asarray(ts_ms, dtype=np.int64), np.asarray(values, dtype=np.float64))

    @classmethod
    def empty(cls) -> Series:
        """A series with no readings."""
        return cls.of([], [])


def to_ms(instant: datetime) -> int:
    """A timezone-aware datetime as UTC epoch milliseconds."""
    if instant.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return int(instant.timestamp() * MS_PER_S)


def from_ms(ms: int) -> datetime:
    """UTC epoch milliseconds as an aware datetime."""
    return datetime.fromtimestamp(ms / MS_PER_S, tz=UTC)

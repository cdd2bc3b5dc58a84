"""The inputs of an energy baseline: aligned hourly or daily arrays of one site."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from analytics.series import MS_PER_HOUR, FloatArray, Int64Array

MS_PER_DAY = 24 * MS_PER_HOUR
HOURS_PER_WEEK = 168


def _floats(values: object, n: int, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"{what} must have one value per period ({n}), got shape {array.shape}")
    if not bool(np.all(np.isfinite(array))):
        raise ValueError(f"{what} has missing or infinite values; drop or fill those periods")
    return array


def _starts(values: object, step_ms: int) -> Int64Array:
    starts = np.asarray(values, dtype=np.int64)
    if starts.ndim != 1 or starts.size == 0:
        raise ValueError("need at least one period")
    if bool(np.any(starts % step_ms)):
        raise ValueError("period starts must be on whole hours (UTC epoch ms)")
    if starts.size > 1 and not bool(np.all(np.diff(starts) > 0)):
        raise ValueError("period starts must be strictly increasing")
    return starts


@dataclass(frozen=True)
class HourlyFrame:
    """One site's hours: start (UTC epoch ms), energy (kWh), mean air temperature (°C),
    good units made and, optionally, the fraction of the hour the site was operating.

    Gaps are allowed (missing hours simply absent); every array has one value per hour.
    """

    hour_start_ms: Int64Array
    energy_kwh: FloatArray
    ambient_c: FloatArray
    units: FloatArray
    operating: FloatArray | None = None

    @classmethod
    def of(
        cls,
        hour_start_ms: object,
        energy_kwh: object,
        ambient_c: object,
        units: object,
        operating: object | None = None,
    ) -> HourlyFrame:
        """Build from anything array-like, validating lengths, order and finiteness."""
        starts = _starts(hour_start_ms, MS_PER_HOUR)
        n = starts.size
        return cls(
            starts,
            _floats(energy_kwh, n, "energy_kwh"),
            _floats(ambient_c, n, "ambient_c"),
            _floats(units, n, "units"),
            None if operating is None else _floats(operating, n, "operating"),
        )

    def __len__(self) -> int:
        return int(self.hour_start_ms.size)

    def subset(self, mask: np.ndarray) -> HourlyFrame:
        """The hours where ``mask`` is true."""
        operating = None if self.operating is None else self.operating[mask]
        return HourlyFrame(
            self.hour_start_ms[mask],
            self.energy_kwh[mask],
            self.ambient_c[mask],
            self.units[mask],
            operating,
        )


@dataclass(frozen=True)
class DailyFrame:
    """One site's local days: start (UTC epoch ms of local midnight), energy (kWh),
    mean air temperature (°C), good units, and optionally operating hours."""

    day_start_ms: Int64Array
    energy_kwh: FloatArray
    ambient_c: FloatArray
    units: FloatArray
    operating_h: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.day_start_ms.size)


def utc_offsets_ms(ts_ms: Int64Array, timezone: str) -> Int64Array:
    """The zone's UTC offset at each instant, in ms (one zone lookup per distinct UTC day)."""
    zone = ZoneInfo(timezone)
    days = ts_ms // MS_PER_DAY
    unique, inverse = np.unique(days, return_inverse=True)
    offsets = np.empty(unique.size, dtype=np.int64)
    for i, day in enumerate(unique.tolist()):
        noon = datetime.fromtimestamp(day * 86_400 + 43_200, tz=UTC).astimezone(zone)
        delta = noon.utcoffset()
        offsets[i] = 0 if delta is None else int(delta.total_seconds() * 1000)
    # Offsets looked up at noon UTC: exact for zones without daylight saving (Phnom Penh).
    return offsets[inverse]


def hour_of_week(ts_ms: Int64Array, timezone: str) -> np.ndarray:
    """Local hour of the week, 0 = Monday 00:00–01:00, … 167 = Sunday 23:00–24:00."""
    local_ms = ts_ms + utc_offsets_ms(ts_ms, timezone)
    hours = local_ms // MS_PER_HOUR
    # The epoch (1970-01-01) was a Thursday: shift so Monday is day 0.
    return np.asarray((hours + 3 * 24) % HOURS_PER_WEEK, dtype=np.int64)


def local_day_start_ms(ts_ms: Int64Array, timezone: str) -> Int64Array:
    """UTC epoch ms of the local midnight that starts each instant's local day."""
    offsets = utc_offsets_ms(ts_ms, timezone)
    return np.asarray((ts_ms + offsets) // MS_PER_DAY * MS_PER_DAY - offsets, dtype=np.int64)


def daily_from_hourly(frame: HourlyFrame, timezone: str, *, min_hours: int = 24) -> DailyFrame:
    """Local days of an hourly frame (sums of energy and units, mean temperature).

    Days with fewer than ``min_hours`` hours present are dropped, so a partial day does
    not pass for a low-consumption one.
    """
    starts = local_day_start_ms(frame.hour_start_ms, timezone)
    unique, inverse, counts = np.unique(starts, return_inverse=True, return_counts=True)
    size = unique.size
    energy = np.bincount(inverse, weights=frame.energy_kwh, minlength=size)
    temps = np.bincount(inverse, weights=frame.ambient_c, minlength=size) / counts
    units = np.bincount(inverse, weights=frame.units, minlength=size)
    operating = (
        None
        if frame.operating is None
        else np.bincount(inverse, weights=frame.operating, minlength=size)
    )
    keep = counts >= min_hours
    return DailyFrame(
        np.asarray(unique[keep], dtype=np.int64),
        np.asarray(energy[keep], dtype=np.float64),
        np.asarray(temps[keep], dtype=np.float64),
        np.asarray(units[keep], dtype=np.float64),
        None if operating is None else np.asarray(operating[keep], dtype=np.float64),
    )

"""Power quality: outages and sags from voltage, time on generator, and production lost.

Each voltage reading is classed as an outage (below ``outage_fraction`` of nominal, 10%
by default), a sag (below ``sag_fraction``, 90%) or normal. Where a ``generator_on``
series says the generator carries the site, the grid is out whatever the voltage (the
generator restores the voltage, not the grid), so those readings are outage readings.
An event runs from its first reading to the first reading after it that is back to
normal (or one sample interval after the last reading); its boundaries are therefore
sample times, late by up to one interval. Events of one kind closer than
``merge_within_s`` merge, and events shorter than ``min_duration_s`` are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from analytics.energy import nominal_interval_s
from analytics.series import MS_PER_HOUR, MS_PER_S, Series

OUTAGE: Final = "outage"
SAG: Final = "sag"


@dataclass(frozen=True, slots=True)
class PowerEvent:
    """An outage or a sag from ``start_ms`` until ``end_ms``; ``min_voltage`` is the lowest read."""

    kind: str
    start_ms: int
    end_ms: int
    min_voltage: float

    @property
    def duration_s(self) -> float:
        """How long the event lasted."""
        return (self.end_ms - self.start_ms) / MS_PER_S


@dataclass(frozen=True, slots=True)
class PowerQualitySummary:
    """Counts and total durations of outages and sags."""

    outage_count: int
    outage_s: float
    sag_count: int
    sag_s: float


@dataclass(frozen=True, slots=True)
class ProductionLoss:
    """Units a line did not make during an event, against its typical rate."""

    event: PowerEvent
    expected_units: float
    actual_units: float

    @property
    def lost_units(self) -> float:
        """Expected minus made, never below zero."""
        return max(0.0, self.expected_units - self.actual_units)


def detect_events(
    voltage: Series,
    nominal_v: float,
    *,
    generator_on: Series | None = None,
    outage_fraction: float = 0.1,
    sag_fraction: float = 0.9,
    min_duration_s: float = 0.0,
    merge_within_s: float | None = None,
) -> list[PowerEvent]:
    """Outages and sags in a voltage series, in time order.

    Args:
        voltage: phase voltage readings (V).
        nominal_v: the site's nominal voltage.
        generator_on: 0/1 readings; where 1 (held until the next reading) the grid is out.
        outage_fraction: below this share of nominal is an outage.
        sag_fraction: below this share of nominal (and not an outage) is a sag.
        min_duration_s: shorter events are dropped (0 keeps single-reading events).
        merge_within_s: events of one kind separated by at most this merge. Default:
            one and a half nominal sample intervals (one normal reading between them).
    """
    if nominal_v <= 0 or not 0 < outage_fraction < sag_fraction:
        raise ValueError("need nominal_v > 0 and 0 < outage_fraction < sag_fraction")
    ts, volts = voltage.ts_ms, voltage.values
    if ts.size == 0:
        return []
    interval_ms = nominal_interval_s(ts) * MS_PER_S
    merge_ms = 1.5 * interval_ms if merge_within_s is None else merge_within_s * MS_PER_S
    kind = np.zeros(ts.size, dtype=np.int8)  # 0 normal, 1 sag, 2 outage
    finite = np.isfinite(volts)
    kind[finite & (volts < sag_fraction * nominal_v)] = 1
    kind[finite & (volts < outage_fraction * nominal_v)] = 2
    if generator_on is not None and generator_on.ts_ms.size:
        at = np.searchsorted(generator_on.ts_ms, ts, side="right") - 1
        on = (at >= 0) & (generator_on.values[np.maximum(at, 0)] >= 0.5)
        kind[on] = 2
    change = np.nonzero(np.diff(kind))[0] + 1
    starts = np.concatenate(([0], change))
    stops = np.append(change, ts.size)
    events: list[PowerEvent] = []
    for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
        code = int(kind[lo])
        if code == 0:
            continue
        end = int(ts[hi]) if hi < ts.size else int(ts[-1] + interval_ms)
        chunk = volts[lo:hi]
        low = float(np.nanmin(chunk)) if np.isfinite(chunk).any() else float("nan")
        name = OUTAGE if code == 2 else SAG
        previous = next((e for e in reversed(events) if e.kind == name), None)
        if previous is not None and int(ts[lo]) - previous.end_ms <= merge_ms:
            between = [e for e in events if e.start_ms > previous.start_ms]
            if all(e.kind == name for e in between):
                events.remove(previous)
                low = min(low, previous.min_voltage)
                events.append(PowerEvent(name, previous.start_ms, end, low))
                continue
        events.append(PowerEvent(name, int(ts[lo]), end, low))
    kept = [e for e in events if e.duration_s >= min_duration_s]
    return sorted(kept, key=lambda e: e.start_ms)


def summarise(events: Sequence[PowerEvent]) -> PowerQualitySummary:
    """Counts and total seconds of outages and sags."""
    outages = [e for e in events if e.kind == OUTAGE]
    sags = [e for e in events if e.kind == SAG]
    return PowerQualitySummary(
        outage_count=len(outages),
        outage_s=sum(e.duration_s for e in outages),
        sag_count=len(sags),
        sag_s=sum(e.duration_s for e in sags),
    )


def generator_intervals(generator_on: Series) -> list[tuple[int, int]]:
    """Intervals ``(start_ms, end_ms)`` when the generator ran (readings of 1, held to the next)."""
    ts, on = generator_on.ts_ms, generator_on.values >= 0.5
    if ts.size == 0:
        return []
    step = nominal_interval_s(ts) * MS_PER_S
    flips = np.nonzero(np.diff(on.astype(np.int8)))[0] + 1
    starts = np.concatenate(([0], flips))
    stops = np.append(flips, ts.size)
    return [
        (int(ts[lo]), int(ts[hi]) if hi < ts.size else int(ts[-1] + step))
        for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True)
        if on[lo]
    ]


def generator_s(generator_on: Series) -> float:
    """Total seconds on generator."""
    return sum(end - start for start, end in generator_intervals(generator_on)) / MS_PER_S


def production_lost(
    events: Sequence[PowerEvent],
    units: Series,
    *,
    timezone: str = "UTC",
) -> list[ProductionLoss]:
    """Units not made during each event, against the typical rate of the same clock hour.

    ``units`` holds count increments (``units_good``), each counted at its reading time.
    The typical rate of a clock hour is the median of that hour's counts over the other
    days that made anything at all (so rest days do not pull it down); an event expects
    that rate for the part of each hour it covers, and is credited with what was counted
    during it. Events on a day that made nothing expect nothing.

    Args:
        events: from :func:`detect_events`.
        units: count increments of one line or machine.
        timezone: the site's time zone, for clock hours and days.
    """
    if not events or units.ts_ms.size == 0:
        return [ProductionLoss(e, 0.0, 0.0) for e in events]
    zone = ZoneInfo(timezone)
    offset_ms = _utc_offset_ms(int(units.ts_ms[0]), zone)
    local_ms = units.ts_ms + offset_ms
    hour_index = local_ms // MS_PER_HOUR
    first_hour = int(hour_index[0])
    counts = np.bincount(hour_index - first_hour, weights=units.values)
    days = (np.arange(counts.size) + first_hour) // 24
    hour_of_day = (np.arange(counts.size) + first_hour) % 24
    day_total = np.bincount(days - days[0], weights=counts)
    working = day_total[days - days[0]] > 0
    losses: list[ProductionLoss] = []
    for event in events:
        start, end = event.start_ms + offset_ms, event.end_ms + offset_ms
        event_day = start // (24 * MS_PER_HOUR)
        expected = 0.0
        if 0 <= event_day - days[0] < day_total.size and day_total[event_day - days[0]] > 0:
            for hour in range(start // MS_PER_HOUR, (end - 1) // MS_PER_HOUR + 1):
                overlap = min(end, (hour + 1) * MS_PER_HOUR) - max(start, hour * MS_PER_HOUR)
                others = working & (hour_of_day == hour % 24) & (days != hour // 24)
                rate = float(np.median(counts[others])) if others.any() else 0.0
                expected += rate * overlap / MS_PER_HOUR
        inside = (units.ts_ms > event.start_ms) & (units.ts_ms <= event.end_ms)
        losses.append(ProductionLoss(event, expected, float(units.values[inside].sum())))
    return losses


def _utc_offset_ms(at_ms: int, zone: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(at_ms / MS_PER_S, zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds() * MS_PER_S)

"""Peak demand: average kW per demand interval, the monthly peak, load factor and contributors.

Demand is energy over a fixed interval (15 minutes by default) divided by its length.
Block intervals are aligned to the clock (00:00-00:15, 00:15-00:30, ...), which is how
tariffs bill demand; sliding windows, ending every ``step_s``, show the true worst
15 minutes. Averages are taken over the part of an interval that readings cover, so a
short gap does not look like a drop in demand; ``completeness`` says how much was there.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from analytics.energy import (
    bucket_energy,
    covered_s,
    cumulative_kwh,
    power_increments,
    regular_edges_ms,
)
from analytics.series import MS_PER_HOUR, MS_PER_S, FloatArray, Int64Array, Series, to_ms

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Demand:
    """Average kW per demand window ``[start_ms[k], end_ms[k])``; NaN where nothing was read."""

    start_ms: Int64Array
    end_ms: Int64Array
    average_kw: FloatArray
    completeness: FloatArray


@dataclass(frozen=True, slots=True)
class MonthlyPeak:
    """The highest-demand window of a calendar month (in the site's time zone)."""

    month: str
    start_ms: int
    end_ms: int
    peak_kw: float
    average_kw: float
    load_factor: float


def demand(
    power: Series,
    *,
    interval_s: float = 900.0,
    step_s: float | None = None,
    origin_ms: int = 0,
    method: Literal["hold", "mean"] = "hold",
    max_gap_s: float | None = None,
) -> Demand:
    """Average kW of a site power signal per block interval, or per sliding window.

    Args:
        power: site active power readings (W).
        interval_s: demand interval length (900 s: the usual 15 minutes).
        step_s: None for clock-aligned blocks; else sliding windows of ``interval_s``
            ending every ``step_s`` (aligned to ``origin_ms`` too).
        origin_ms: the clock the windows align to (0: UTC midnight; pass a local
            midnight when the interval does not divide the site's UTC offset).
        method: how power readings are integrated (see :mod:`analytics.energy`).
        max_gap_s: pairs of readings further apart contribute nothing.
    """
    if power.ts_ms.size < 2:
        empty = np.zeros(0, dtype=np.int64)
        return Demand(empty, empty, np.zeros(0), np.zeros(0))
    increments = power_increments(power, method=method, max_gap_s=max_gap_s)
    first, last = int(power.ts_ms[0]), int(power.ts_ms[-1])
    window_ms = round(interval_s * MS_PER_S)
    if step_s is None:
        edges = regular_edges_ms(first, last, interval_s, origin_ms)
        buckets = bucket_energy(increments, edges)
        covered_h = (np.diff(edges) / MS_PER_S - buckets.gap_s) / 3600.0
        with np.errstate(invalid="ignore", divide="ignore"):
            average = np.where(covered_h > 0, buckets.energy_kwh / covered_h, np.nan)
        return Demand(edges[:-1], edges[1:], average, buckets.completeness)
    ends = regular_edges_ms(first + window_ms, last, step_s, origin_ms)
    starts = ends - window_ms
    energy_kwh = cumulative_kwh(increments, ends) - cumulative_kwh(increments, starts)
    covered_h = (covered_s(increments, ends) - covered_s(increments, starts)) / 3600.0
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(covered_h > 0, energy_kwh / covered_h, np.nan)
    counts = np.searchsorted(power.ts_ms, ends) - np.searchsorted(power.ts_ms, starts)
    expected = window_ms / MS_PER_S / increments.interval_s
    return Demand(starts, ends, average, np.clip(counts / expected, 0.0, 1.0))


def monthly_peaks(
    series: Demand, *, timezone: str = "UTC", min_completeness: float = 0.0
) -> list[MonthlyPeak]:
    """Per calendar month: the peak window, its kW, the month's average kW and load factor.

    Load factor is the mean of the month's window averages over the peak (0 to 1).
    Windows below ``min_completeness`` are ignored (set it to avoid a peak from one
    lonely reading). A window belongs to the month in which it starts.
    """
    usable = np.isfinite(series.average_kw) & (series.completeness >= min_completeness)
    starts = series.start_ms[usable]
    if starts.size == 0:
        return []
    ends, average = series.end_ms[usable], series.average_kw[usable]
    zone = ZoneInfo(timezone)
    first = datetime.fromtimestamp(int(starts[0]) / MS_PER_S, zone)
    last = datetime.fromtimestamp(int(starts[-1]) / MS_PER_S, zone)
    month_starts: list[datetime] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        month_starts.append(datetime(year, month, 1, tzinfo=zone))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    month_starts.append(datetime(year, month, 1, tzinfo=zone))
    bounds = np.searchsorted(starts, [to_ms(m) for m in month_starts], side="left")
    peaks: list[MonthlyPeak] = []
    for label, lo, hi in zip(month_starts[:-1], bounds[:-1], bounds[1:], strict=True):
        if hi <= lo:
            continue
        chunk = average[lo:hi]
        top = lo + int(np.argmax(chunk))
        peak_kw = float(average[top])
        mean_kw = float(chunk.mean())
        peaks.append(
            MonthlyPeak(
                month=f"{label.year:04d}-{label.month:02d}",
                start_ms=int(starts[top]),
                end_ms=int(ends[top]),
                peak_kw=peak_kw,
                average_kw=mean_kw,
                load_factor=mean_kw / peak_kw if peak_kw > 0 else float("nan"),
            )
        )
    return peaks


def contributors(
    start_ms: int,
    end_ms: int,
    machine_power: Mapping[K, Series],
    *,
    method: Literal["hold", "mean"] = "hold",
    max_gap_s: float | None = None,
) -> list[tuple[K, float]]:
    """Machines ranked by their average kW over ``[start_ms, end_ms)`` (a peak window).

    The average is the machine's energy in the window over the window's full length, so
    the contributions add up to the machines' share of the peak.
    """
    hours = (end_ms - start_ms) / MS_PER_HOUR
    ranked: list[tuple[K, float]] = []
    for key, power in machine_power.items():
        increments = power_increments(power, method=method, max_gap_s=max_gap_s)
        energy = cumulative_kwh(increments, np.array([start_ms, end_ms], dtype=np.int64))
        ranked.append((key, float(energy[1] - energy[0]) / hours))
    return sorted(ranked, key=lambda item: -item[1])

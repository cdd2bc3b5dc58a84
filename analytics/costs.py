"""Cost and carbon of a site's energy, split by source: grid, diesel generator, solar.

Pure functions on hourly arrays. Grid energy is priced at the tariff's rate for the
hour's local start time (flat or time-of-use); generator energy at its fuel cost
(litres per kWh × price per litre); solar costs nothing at the margin. A demand charge
applies to each month's peak interval (see :mod:`analytics.peaks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np

from analytics.series import MS_PER_HOUR, FloatArray, Int64Array, Series, from_ms
from analytics.site_config import SiteConfig


@dataclass(frozen=True)
class DayCost:
    """One local day's energy, cost and CO₂ from one source."""

    day: date
    source: str
    energy_kwh: float
    cost: float
    co2_kg: float


def on_fraction(flag: Series, hour_starts_ms: Int64Array) -> FloatArray:
    """Share of each hour during which a 0/1 signal (e.g. ``generator_on``) was 1.

    The signal holds its value until the next sample; before its first sample it
    counts as 0.
    """
    fractions = np.zeros(hour_starts_ms.size, dtype=np.float64)
    if len(flag) == 0 or hour_starts_ms.size == 0:
        return fractions
    # Change points of the step function, clipped to the hours asked about.
    edges = np.concatenate([hour_starts_ms, [hour_starts_ms[-1] + MS_PER_HOUR]])
    points = np.union1d(flag.ts_ms, edges)
    points = points[(points >= edges[0]) & (points <= edges[-1])]
    index = np.searchsorted(flag.ts_ms, points[:-1], side="right") - 1
    value = np.where(index >= 0, flag.values[np.clip(index, 0, None)], 0.0) > 0.5
    durations = np.diff(points).astype(np.float64)
    hour = np.searchsorted(edges, points[:-1], side="right") - 1
    np.add.at(fractions, hour, durations * value)
    return fractions / MS_PER_HOUR


def hourly_rates(config: SiteConfig, hour_starts_ms: Int64Array) -> FloatArray:
    """The grid tariff's energy rate for each hour, by its local start time."""
    zone = ZoneInfo(config.timezone)
    rates = np.empty(hour_starts_ms.size, dtype=np.float64)
    for i, ms in enumerate(hour_starts_ms.tolist()):
        local = from_ms(int(ms)).astimezone(zone)
        rates[i] = config.tariff.rate_at(local.weekday(), local.time())
    return rates


def daily_costs(
    config: SiteConfig,
    hour_starts_ms: Int64Array,
    site_kwh: FloatArray,
    generator_fraction: FloatArray,
    solar_kwh: FloatArray | None = None,
) -> list[DayCost]:
    """Energy, cost and CO₂ per local day and source.

    Args:
        config: the site's tariff, generator and emission factor.
        hour_starts_ms: UTC start of each hour.
        site_kwh: energy the site drew from the main meter in each hour (grid and
            generator together, since the generator feeds the same busbar).
        generator_fraction: share of each hour the generator was running.
        solar_kwh: self-consumed solar per hour, if a PV meter exists.
    """
    zone = ZoneInfo(config.timezone)
    generator_kwh = site_kwh * generator_fraction
    grid_kwh = site_kwh - generator_kwh
    grid_cost = grid_kwh * hourly_rates(config, hour_starts_ms)
    fuel_l = generator_kwh * config.generator.litres_per_kwh
    generator_cost = fuel_l * config.generator.diesel_price_per_litre
    days = [from_ms(int(ms)).astimezone(zone).date() for ms in hour_starts_ms.tolist()]
    totals: dict[tuple[date, str], list[float]] = {}

    def add(day: date, source: str, kwh: float, cost: float, co2: float) -> None:
        entry = totals.setdefault((day, source), [0.0, 0.0, 0.0])
        entry[0] += kwh
        entry[1] += cost
        entry[2] += co2

    for i, day in enumerate(days):
        add(day, "grid", grid_kwh[i], grid_cost[i], grid_kwh[i] * config.grid_co2_kg_per_kwh)
        add(day, "generator", generator_kwh[i], generator_cost[i],
            fuel_l[i] * config.generator.co2_kg_per_litre)  # fmt: skip
        if solar_kwh is not None:
            add(day, "solar", float(solar_kwh[i]), 0.0, 0.0)
    return [
        DayCost(day, source, round(v[0], 6), round(v[1], 6), round(v[2], 6))
        for (day, source), v in sorted(totals.items())
    ]


def local_day_start(config: SiteConfig, instant: datetime) -> datetime:
    """Midnight of ``instant``'s local day at the site, as an aware datetime."""
    local = instant.astimezone(ZoneInfo(config.timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)

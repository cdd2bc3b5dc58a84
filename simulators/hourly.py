"""Hourly site figures straight from the machine models, for long benchmark runs.

A year of a layout at its own sample rates is tens of millions of samples. For an
energy baseline only hourly totals matter, so :func:`hourly_site` advances the same
models on the same tick schedule as :class:`simulators.source.SimulatorSource`, reading
the same values (so the same seed gives the same run), but keeps no samples and records
no state intervals: it adds up, per hour, the main meter's energy, the mean reading of
the air temperature sensor and the good units reported. :func:`with_sample_interval`
coarsens a layout's sample intervals (e.g. to 60–300 s) to make a year cheaper; the
result is still fixed by the seed.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from simulators.layout import Layout, ProductionMachine
from simulators.machines import Channel, ProductionModel
from simulators.schedule import WORK
from simulators.site import Site
from simulators.source import build_models, first_tick_ms
from simulators.timebase import MS_PER_DAY, MS_PER_H, to_ms
from simulators.truth import Truth
from simulators.utilities import AmbientModel, MeterModel


@dataclass
class HourlySite:
    """Hourly figures of a simulated site; index ``i`` is the hour from ``hour_start_ms[i]``.

    ``energy_kwh`` is the main meter's energy, ``ambient_c`` the mean reading of the
    layout's air temperature sensor (the outdoor air if it has none), ``units`` the
    good units made, ``operating_fraction`` the share of the hour the site's shifts
    were working (not on a break).
    """

    hour_start_ms: list[int] = field(default_factory=list)
    energy_kwh: list[float] = field(default_factory=list)
    ambient_c: list[float] = field(default_factory=list)
    units: list[float] = field(default_factory=list)
    operating_fraction: list[float] = field(default_factory=list)


class _StatesIgnored(Truth):
    """A truth that keeps grid events and failures but no state intervals (hourly runs)."""

    def record_state(self, line: str, machine: str, state: int, ts_ms: int) -> None:
        """Nothing: an hourly run has no use for state intervals."""


def with_sample_interval(layout: Layout, interval_s: float) -> Layout:
    """The layout with every machine sampled every ``interval_s`` (main, condition, production)."""
    lines = []
    for line in layout.lines:
        machines = []
        for machine in line.machines:
            update: dict[str, float] = {
                "interval_s": interval_s,
                "condition_interval_s": interval_s,
            }
            if isinstance(machine, ProductionMachine):
                update["production_interval_s"] = interval_s
            machines.append(machine.model_copy(update=update))
        lines.append(line.model_copy(update={"machines": machines}))
    return layout.model_copy(update={"lines": lines})


def hourly_site(layout: Layout, *, seed: int, start: datetime, days: float) -> HourlySite:
    """Simulate ``days`` from ``start`` (a local or UTC hour boundary) and return hourly figures.

    Raises:
        ValueError: ``start`` is not timezone-aware or not on a whole hour, or the
            layout has no main meter.
    """
    start_ms = to_ms(start)
    if start_ms % MS_PER_H:
        raise ValueError("start must be on a whole hour")
    if not days > 0:
        raise ValueError(f"days must be positive, got {days}")
    hours = int(days * MS_PER_DAY) // MS_PER_H
    end_ms = start_ms + hours * MS_PER_H
    truth = _StatesIgnored(layout.site)
    truth.begin(start_ms)
    site = Site(layout, seed, start_ms, truth)
    models = build_models(site)
    meters = [m for m in models if isinstance(m, MeterModel)]
    if not meters:
        raise ValueError(f"layout {layout.site} has no main meter")
    meter = meters[0]
    ambient = next((m for m in models if isinstance(m, AmbientModel)), None)
    channels: list[Channel] = []
    roles: list[int] = []  # 0 other, 1 meter, 2 ambient, 3 production count
    good_index: dict[int, int] = {}
    for model in models:
        for channel in model.channels():
            role = 0
            if model is meter and channel.tick == model.tick:
                role = 1
            elif model is ambient and channel.tick == model.tick and channel.series:
                role = 2
            elif isinstance(model, ProductionModel) and channel.tick == model.tick_production:
                metrics = [metric for metric, _, _ in channel.series]
                if "units_good" in metrics:
                    role = 3
                    good_index[len(channels)] = metrics.index("units_good")
            channels.append(channel)
            roles.append(role)

    energy_wh = [0.0] * hours
    temp_sum = [0.0] * hours
    temp_n = [0] * hours
    units = [0.0] * hours
    work_n = [0] * hours
    meter_n = [0] * hours
    work = site.work_cursor()
    heap = [
        (first_tick_ms(start_ms, c.interval_ms, c.phase_ms), c.rank * len(channels) + i, i)
        for i, c in enumerate(channels)
    ]
    heapq.heapify(heap)
    last_energy_wh = meter.energy_wh
    while heap:
        ts_ms, order, index = heap[0]
        if ts_ms >= end_ms:
            break
        channel = channels[index]
        heapq.heapreplace(heap, (ts_ms + channel.interval_ms, order, index))
        channel.tick(ts_ms)
        # Read every value as the sample stream does: some readings draw noise from the
        # machine's generator, and skipping them would change everything after.
        values = [read() for _, _, read in channel.series]
        role = roles[index]
        if role == 0:
            continue
        # Quantities accrued over the interval ending now belong to the hour before it.
        hour = (ts_ms - 1 - start_ms) // MS_PER_H
        if role == 1:
            if hour >= 0:
                energy_wh[hour] += meter.energy_wh - last_energy_wh
                meter_n[hour] += 1
                work_n[hour] += work.phase(ts_ms) == WORK
            last_energy_wh = meter.energy_wh
        elif role == 2:
            now = (ts_ms - start_ms) // MS_PER_H
            temp_sum[now] += values[0]
            temp_n[now] += 1
        elif role == 3 and hour >= 0:
            units[hour] += values[good_index[index]]
    site.finish(end_ms)

    result = HourlySite()
    for hour in range(hours):
        hour_ms = start_ms + hour * MS_PER_H
        if temp_n[hour]:
            temp_c = temp_sum[hour] / temp_n[hour]
        else:
            temp_c = site.climate.outdoor_c(hour_ms + MS_PER_H // 2)
        result.hour_start_ms.append(hour_ms)
        result.energy_kwh.append(energy_wh[hour] / 1000.0)
        result.ambient_c.append(temp_c)
        result.units.append(units[hour])
        result.operating_fraction.append(work_n[hour] / meter_n[hour] if meter_n[hour] else 0.0)
    return result

"""`tonle analytics run`: energy management for one site and period, results in their tables.

For each machine: states (reported ``machine_state``, else learned from ``active_power``),
energy per 15 minutes, hour, local day and shift (from its ``energy`` meter where it has
one, else by integrating power), idle waste per shift and day. Then per line and site:
energy, the monthly demand peaks and the machines that made them, outages and sags with
the production they cost, energy and cost by source, and specific energy per line and day.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from analytics.calendar import Bucket, buckets_from_edges, edges, shift_buckets
from analytics.costs import daily_costs, hourly_rates, on_fraction
from analytics.energy import (
    BucketEnergy,
    EnergyIncrements,
    bucket_energy,
    meter_increments,
    power_increments,
)
from analytics.idle import idle_energy
from analytics.mv_job import evaluate as evaluate_mv
from analytics.oee import machine_oee
from analytics.peaks import contributors, demand, monthly_peaks
from analytics.power_quality import detect_events, generator_intervals, production_lost
from analytics.sec import fit_marginal, ratios
from analytics.series import Series, from_ms, to_ms
from analytics.site_config import SiteConfig
from analytics.states import PowerStateClassifier, StateInterval, intervals
from analytics.store import (
    Conn,
    SensorRef,
    delete_between,
    finish_run,
    load_series,
    site_sensors,
    start_run,
    upsert,
)
from tonle.db.maintenance import refresh_all_rollups

log = logging.getLogger(__name__)

MODEL_VERSION = "energy-1"
STATE_FIT_HISTORY = timedelta(days=14)  # states are learned on up to this much history
LEAD_IN = timedelta(hours=1)  # read before the period, so pairs straddling its start count
MIN_DWELL_S = 30.0
GRID_GRAINS = ("15m", "1h", "1d")
NOT_MACHINES = {"ambient_temp"}  # sensors on a machine id that is not a load

Progress = Callable[[str], None]
MachineKey = tuple[str, str]


@dataclass
class MachineData:
    """What one machine reported in the period."""

    line: str
    machine: str
    sensors: dict[str, SensorRef] = field(default_factory=dict)


@dataclass
class JobReport:
    """What a run wrote, per table, and its headline figures."""

    run_id: int
    site: str
    start: datetime
    end: datetime
    rows: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _machines(sensors: list[SensorRef]) -> dict[MachineKey, MachineData]:
    machines: dict[MachineKey, MachineData] = {}
    for ref in sensors:
        data = machines.setdefault((ref.line, ref.machine), MachineData(ref.line, ref.machine))
        data.sensors[ref.metric] = ref
    return machines


def _split_key(text: str | None) -> MachineKey | None:
    if not text or "/" not in text:
        return None
    line, machine = text.split("/", 1)
    return line, machine


def _main_meter(config: SiteConfig, machines: dict[MachineKey, MachineData]) -> MachineKey | None:
    """The incoming meter: configured, else the one machine that reports voltage."""
    configured = _split_key(config.meters.main)
    if configured in machines:
        return configured
    with_voltage = [key for key, data in machines.items() if "voltage" in data.sensors]
    return with_voltage[0] if len(with_voltage) == 1 else None


def _states_from_reported(power: Series, reported: Series) -> np.ndarray[Any, np.dtype[np.int8]]:
    """The reported state in force at each power reading (held until the next report)."""
    index = np.searchsorted(reported.ts_ms, power.ts_ms, side="right") - 1
    states = np.where(index >= 0, reported.values[np.clip(index, 0, None)], 0)
    return np.asarray(np.rint(states), dtype=np.int8)


class EnergyJob:
    """One run over one site and period; :meth:`run` writes every result table."""

    def __init__(
        self,
        conn: Conn,
        site: str,
        config: SiteConfig,
        start: datetime,
        end: datetime,
        progress: Progress | None = None,
    ) -> None:
        self.conn = conn
        self.site = site
        self.config = config
        self.start, self.end = start, end
        self.say = progress or (lambda message: log.info("%s", message))
        self.start_ms, self.end_ms = to_ms(start), to_ms(end)
        self.grid_edges = {
            grain: edges(start, end, grain, config.timezone) for grain in GRID_GRAINS
        }
        self.shifts = shift_buckets(start, end, config.shifts, config.timezone, starting=True)
        self.rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

    # ----------------------------------------------------------------- the run

    def run(self) -> JobReport:
        """Compute and store everything; the run is recorded as done or failed."""
        began = time.monotonic()
        refresh_all_rollups(self.conn)  # plain PostgreSQL: the hourly roll-ups M&V reads
        run_id = start_run(self.conn, self.site, self.start, self.end, MODEL_VERSION)
        report = JobReport(run_id, self.site, self.start, self.end)
        try:
            with self.conn.transaction():
                report.summary = self._compute()
                for table in ("machine_states", "power_events"):
                    delete_between(self.conn, table, self.site, "start_ts", self.start, self.end)
                # The last state interval of the previous run now ends where this run begins.
                self.conn.execute(
                    "UPDATE machine_states SET end_ts = %s"
                    " WHERE site = %s AND start_ts < %s AND end_ts > %s",
                    (self.start, self.site, self.start, self.start),
                )
                for table, rows in self.rows.items():
                    report.rows[table] = upsert(self.conn, table, run_id, rows)
                # M&V reads the hourly site energy just written, with earlier runs' hours.
                verified = evaluate_mv(self.conn, self.site, self.config, self.end)
                if verified is not None:
                    report.rows["mv_results"] = upsert(self.conn, "mv_results", run_id, [verified])
                    report.summary["savings_pct"] = verified[18]
        except BaseException as exc:
            finish_run(self.conn, run_id, None, f"{type(exc).__name__}: {exc}")
            raise
        report.seconds = round(time.monotonic() - began, 2)
        report.summary["rows"] = report.rows
        report.summary["seconds"] = report.seconds
        finish_run(self.conn, run_id, report.summary, None)
        return report

    def _compute(self) -> dict[str, Any]:
        machines = _machines(site_sensors(self.conn, self.site))
        main = _main_meter(self.config, machines)
        solar = _split_key(self.config.meters.solar)
        loads = {
            key: data
            for key, data in machines.items()
            if key not in (main, solar)
            and ("active_power" in data.sensors or "energy" in data.sensors)
        }
        self.say(
            f"{self.site}: {len(loads)} machines, main meter {'/'.join(main) if main else '—'}"
        )
        machine_energy: dict[MachineKey, dict[str, BucketEnergy]] = {}
        machine_power: dict[MachineKey, Series] = {}
        idle_total: dict[MachineKey, float] = {}
        for key, data in sorted(loads.items()):
            power = self._series(data, "active_power")
            machine_power[key] = power
            increments = self._increments(data, power)
            machine_energy[key] = self._energy_rows("machine", key, increments, data)
            idle_total[key], spans = self._states_and_idle(key, data, power)
            self._oee(key, data, spans)
        line_energy = self._roll_up_lines(machine_energy)
        site_energy = self._site_energy(main, machines, line_energy)
        summary: dict[str, Any] = {
            "machines": len(loads),
            "energy_kwh": round(float(site_energy["1d"].energy_kwh.sum()), 3),
            "idle_kwh": round(sum(idle_total.values()), 3),
            "top_idle": [
                {"line": k[0], "machine": k[1], "kwh": round(v, 3)}
                for k, v in sorted(idle_total.items(), key=lambda kv: -kv[1])[:5]
            ],
        }
        if main is not None:
            pv = machines.get(solar) if solar else None
            summary |= self._main_meter_results(machines[main], site_energy, machine_power, pv)
        summary["sec_lines"] = self._sec(line_energy, machines)
        return summary

    # --------------------------------------------------------------- machines

    def _series(self, data: MachineData, metric: str, start: datetime | None = None) -> Series:
        ref = data.sensors.get(metric)
        if ref is None:
            return Series.empty()
        return load_series(self.conn, ref.sensor_id, start or self.start - LEAD_IN, self.end)

    def _increments(self, data: MachineData, power: Series) -> EnergyIncrements:
        meter = self._series(data, "energy")
        if len(meter) >= 2:
            return meter_increments(meter, rollover_kwh=self.config.meters.rollover_kwh)
        return power_increments(power)

    def _energy_rows(
        self, level: str, key: MachineKey, increments: EnergyIncrements, data: MachineData | None
    ) -> dict[str, BucketEnergy]:
        method = "meter" if data is not None and "energy" in data.sensors else "integrated"
        result: dict[str, BucketEnergy] = {}
        for grain, grain_edges in self.grid_edges.items():
            buckets = bucket_energy(increments, grain_edges)
            result[grain] = buckets
            self._add_energy(level, key, grain, buckets, buckets_from_edges(grain_edges), method)
        if self.shifts:
            shift_energy = _over(self.shifts, lambda e: bucket_energy(increments, e))
            self._add_energy(level, key, "shift", shift_energy, self.shifts, method)
        return result

    def _add_energy(
        self,
        level: str,
        key: MachineKey,
        grain: str,
        energy: BucketEnergy,
        buckets: list[Bucket],
        method: str,
    ) -> None:
        for i, bucket in enumerate(buckets):
            self.rows["energy_intervals"].append(
                (
                    self.site, level, key[0], key[1], grain,
                    from_ms(bucket.start_ms), from_ms(bucket.end_ms), bucket.label,
                    float(energy.energy_kwh[i]), float(energy.completeness[i]), method,
                    float(energy.gap_s[i]),
                )
            )  # fmt: skip

    def _states_and_idle(
        self, key: MachineKey, data: MachineData, power: Series
    ) -> tuple[float, list[StateInterval]]:
        """Write the machine's state intervals and idle waste; return its idle kWh and states."""
        if len(power) < 2:
            return 0.0, []
        reported = self._series(data, "machine_state")
        if len(reported) > 0:
            states, source = _states_from_reported(power, reported), "reported"
        else:
            history = self._series(data, "active_power", start=self.start - STATE_FIT_HISTORY)
            model = PowerStateClassifier(min_dwell_s=MIN_DWELL_S, random_state=0).fit(history)
            states, source = model.predict(power), "inferred"
        spans = intervals(power.ts_ms, states)
        for interval in spans:
            if interval.end_ms <= self.start_ms:
                continue  # the lead-in belongs to the previous period
            begins = max(interval.start_ms, self.start_ms)
            self.rows["machine_states"].append(
                (self.site, key[0], key[1], from_ms(begins), from_ms(interval.end_ms),
                 int(interval.state), source)
            )  # fmt: skip
        currency = self.config.tariff.currency
        days = buckets_from_edges(self.grid_edges["1d"])
        total = 0.0
        for grain, buckets in (("1d", days), ("shift", self.shifts)):
            if not buckets:
                continue
            idle = _over(buckets, lambda e: idle_energy(power, states, e))
            starts = np.array([b.start_ms for b in buckets], dtype=np.int64)
            rates = hourly_rates(self.config, starts)
            for i, bucket in enumerate(buckets):
                kwh = float(idle.energy_kwh[i])
                total += kwh if grain == "1d" else 0.0
                self.rows["idle_waste"].append(
                    (self.site, key[0], key[1], grain, from_ms(bucket.start_ms),
                     from_ms(bucket.end_ms), bucket.label, kwh, kwh * float(rates[i]), currency)
                )  # fmt: skip
        return total, spans

    def _oee(self, key: MachineKey, data: MachineData, spans: list[StateInterval]) -> None:
        """OEE and the six big losses per shift, for machines with an ideal cycle time."""
        ideal_cycle_s = self.config.ideal_cycle_s.get(f"{key[0]}/{key[1]}")
        if ideal_cycle_s is None or not spans or "units_good" not in data.sensors:
            return
        good = self._series(data, "units_good")
        rejects = self._series(data, "units_reject")
        starts = np.array([s.start_ms for s in spans], dtype=np.int64)
        ends = np.array([s.end_ms for s in spans], dtype=np.int64)
        states = np.array([s.state for s in spans], dtype=np.int64)
        shifts = {shift.name: shift for shift in self.config.shifts}
        zone = _zone(self.config)
        for bucket in self.shifts:
            day = from_ms(bucket.start_ms).astimezone(zone).date()
            shift = shifts.get(bucket.label)
            breaks = [
                (
                    to_ms(datetime.combine(day, b.start, zone)),
                    to_ms(datetime.combine(day, b.end, zone)),
                )
                for b in (shift.breaks if shift else [])
            ]
            result = machine_oee(
                period=(bucket.start_ms, bucket.end_ms), breaks=breaks, state_starts_ms=starts,
                state_ends_ms=ends, states=states, good_ts_ms=good.ts_ms, good=good.values,
                reject_ts_ms=rejects.ts_ms, rejects=rejects.values, ideal_cycle_s=ideal_cycle_s,
            )  # fmt: skip
            if result.total_units == 0 and result.operating_s == 0:
                continue
            self.rows["oee_shifts"].append(
                (self.site, key[0], key[1], from_ms(bucket.start_ms), from_ms(bucket.end_ms),
                 bucket.label, result.planned_s, result.operating_s, result.total_units,
                 result.good_units, result.ideal_cycle_s, result.availability, result.performance,
                 result.quality, result.oee, result.breakdown_s, result.setup_s,
                 result.minor_stop_s, result.reduced_speed_s, result.startup_reject_units,
                 result.defect_units)
            )  # fmt: skip

    # ------------------------------------------------------------ lines, site

    def _roll_up_lines(
        self, machine_energy: dict[MachineKey, dict[str, BucketEnergy]]
    ) -> dict[str, dict[str, BucketEnergy]]:
        by_line: dict[str, list[dict[str, BucketEnergy]]] = defaultdict(list)
        for (line, _), energy in machine_energy.items():
            by_line[line].append(energy)
        lines: dict[str, dict[str, BucketEnergy]] = {}
        for line, members in by_line.items():
            lines[line] = {grain: _sum(m[grain] for m in members) for grain in GRID_GRAINS}
            for grain in GRID_GRAINS:
                self._add_energy(
                    "line", (line, ""), grain, lines[line][grain],
                    buckets_from_edges(self.grid_edges[grain]), "sum",
                )  # fmt: skip
        return lines

    def _site_energy(
        self,
        main: MachineKey | None,
        machines: dict[MachineKey, MachineData],
        line_energy: dict[str, dict[str, BucketEnergy]],
    ) -> dict[str, BucketEnergy]:
        if main is not None:
            data = machines[main]
            increments = self._increments(data, self._series(data, "active_power"))
            return self._energy_rows("site", ("", ""), increments, data)
        site = {g: _sum(line[g] for line in line_energy.values()) for g in GRID_GRAINS}
        for grain in GRID_GRAINS:
            self._add_energy(
                "site", ("", ""), grain, site[grain],
                buckets_from_edges(self.grid_edges[grain]), "sum",
            )  # fmt: skip
        return site

    def _main_meter_results(
        self,
        main: MachineData,
        site_energy: dict[str, BucketEnergy],
        machine_power: dict[MachineKey, Series],
        solar: MachineData | None,
    ) -> dict[str, Any]:
        config = self.config
        generator = self._series(main, "generator_on")
        # Demand: clock-aligned windows, with their monthly peaks and who made them.
        site_power = self._series(main, "active_power")
        window_min = config.tariff.demand_window_min
        local_midnight = int(self.grid_edges["1d"][0])
        windows = demand(site_power, interval_s=window_min * 60.0, origin_ms=local_midnight)
        peaks = monthly_peaks(windows, timezone=config.timezone, min_completeness=0.5)
        for peak in peaks:
            ranked = contributors(peak.start_ms, peak.end_ms, machine_power)
            self.rows["demand_peaks"].append(
                (self.site, f"{peak.month}-01", window_min, from_ms(peak.start_ms), peak.peak_kw,
                 peak.average_kw, peak.load_factor,
                 peak.peak_kw * config.tariff.demand_charge_per_kw_month, config.tariff.currency,
                 [{"line": k[0], "machine": k[1], "kw": round(kw, 3)} for k, kw in ranked[:10]])
            )  # fmt: skip
        # Power quality, and what it cost in production.
        voltage = self._series(main, "voltage")
        events = detect_events(voltage, config.nominal_voltage_v, generator_on=generator)
        units = self._site_units()
        losses = production_lost(events, units, timezone=config.timezone)
        on_generator = generator_intervals(generator) if len(generator) else []
        for loss in losses:
            event = loss.event
            overlap_ms = sum(
                max(0, min(event.end_ms, e) - max(event.start_ms, s)) for s, e in on_generator
            )
            self.rows["power_events"].append(
                (self.site, event.kind, from_ms(event.start_ms), from_ms(event.end_ms),
                 event.min_voltage, overlap_ms / 1000.0, loss.lost_units)
            )  # fmt: skip
        # Energy, cost and CO₂ by source, per local day.
        hours = site_energy["1h"]
        hour_starts = hours.edges_ms[:-1]
        fraction = on_fraction(generator, hour_starts)
        solar_kwh = None
        if solar is not None:
            pv = self._increments(solar, self._series(solar, "active_power"))
            solar_kwh = bucket_energy(pv, hours.edges_ms).energy_kwh
        costs = daily_costs(config, hour_starts, hours.energy_kwh, fraction, solar_kwh)
        for cost in costs:
            self.rows["energy_costs"].append(
                (self.site, cost.day, cost.source, cost.energy_kwh, cost.cost,
                 config.tariff.currency, cost.co2_kg)
            )  # fmt: skip
        return {
            "peak_kw": round(max((p.peak_kw for p in peaks), default=0.0), 3),
            "outages": sum(1 for e in events if e.kind == "outage"),
            "sags": sum(1 for e in events if e.kind == "sag"),
            "units_lost": round(float(sum(loss.lost_units for loss in losses)), 1),
            "cost": round(float(sum(c.cost for c in costs)), 2),
            "co2_kg": round(float(sum(c.co2_kg for c in costs)), 1),
            "generator_kwh": round(
                float(sum(c.energy_kwh for c in costs if c.source == "generator")), 3
            ),
        }

    def _site_units(self) -> Series:
        """All good units of the site, merged into one series (for production lost)."""
        parts = [
            self._series(MachineData(ref.line, ref.machine, {"units_good": ref}), "units_good")
            for ref in site_sensors(self.conn, self.site)
            if ref.metric == "units_good"
        ]
        parts = [p for p in parts if len(p)]
        if not parts:
            return Series.empty()
        ts = np.concatenate([p.ts_ms for p in parts])
        values = np.concatenate([p.values for p in parts])
        unique, inverse = np.unique(ts, return_inverse=True)
        summed = np.zeros(unique.size)
        np.add.at(summed, inverse, values)
        return Series(unique, summed)

    def _sec(
        self,
        line_energy: dict[str, dict[str, BucketEnergy]],
        machines: dict[MachineKey, MachineData],
    ) -> list[dict[str, Any]]:
        day_edges = self.grid_edges["1d"]
        result = []
        for line, energy in sorted(line_energy.items()):
            units = np.zeros(day_edges.size - 1)
            for (machine_line, _), data in machines.items():
                if machine_line != line or "units_good" not in data.sensors:
                    continue
                counts = self._series(data, "units_good")
                day = np.searchsorted(day_edges, counts.ts_ms, side="right") - 1
                inside = (day >= 0) & (day < units.size)
                np.add.at(units, day[inside], counts.values[inside])
            if not units.any():
                continue
            kwh = energy["1d"].energy_kwh
            fit = fit_marginal(kwh, units)
            for i, ratio in enumerate(ratios(kwh, units)):
                local_day = from_ms(int(day_edges[i])).astimezone(_zone(self.config)).date()
                self.rows["sec_daily"].append(
                    (self.site, line, local_day, float(kwh[i]), float(units[i]), ratio,
                     fit.marginal_kwh_per_unit, fit.fixed_kwh_per_day)
                )  # fmt: skip
            result.append(
                {"line": line, "units": float(units.sum()), "kwh_per_unit":
                 float(kwh.sum() / units.sum()), "marginal_kwh_per_unit": fit.marginal_kwh_per_unit}
            )  # fmt: skip
        return result


def _sum(parts: Any) -> BucketEnergy:
    members = list(parts)
    first = members[0]
    return BucketEnergy(
        first.edges_ms,
        np.sum([m.energy_kwh for m in members], axis=0),
        np.mean([m.completeness for m in members], axis=0),
        np.max([m.gap_s for m in members], axis=0),
    )


def _zone(config: SiteConfig) -> ZoneInfo:
    return ZoneInfo(config.timezone)


def _over(buckets: list[Bucket], compute: Callable[[Any], BucketEnergy]) -> BucketEnergy:
    """Apply a per-edges computation to buckets that need not touch (shifts), in one pass.

    The computation runs once on the sorted union of the buckets' boundaries; each
    bucket then sums the pieces it spans (completeness averaged, gaps summed).
    """
    bounds = np.unique([b.start_ms for b in buckets] + [b.end_ms for b in buckets])
    pieces = compute(bounds)
    lo = np.searchsorted(bounds, [b.start_ms for b in buckets])
    hi = np.searchsorted(bounds, [b.end_ms for b in buckets])
    energy = np.array([pieces.energy_kwh[a:b].sum() for a, b in zip(lo, hi, strict=True)])
    widths = np.diff(bounds).astype(np.float64)
    completeness = np.array(
        [
            float(np.average(pieces.completeness[a:b], weights=widths[a:b]))
            for a, b in zip(lo, hi, strict=True)
        ]
    )
    gaps = np.array([pieces.gap_s[a:b].sum() for a, b in zip(lo, hi, strict=True)])
    return BucketEnergy(bounds, energy, completeness, gaps)


def run_energy(
    conn: Conn,
    site: str,
    config: SiteConfig,
    start: datetime,
    end: datetime,
    progress: Progress | None = None,
) -> JobReport:
    """Run the energy analytics for ``site`` over [start, end) and store the results."""
    return EnergyJob(conn, site, config, start, end, progress).run()

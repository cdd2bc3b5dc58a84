"""Utilities of a site: air compressors, cold rooms, the main meter and the air temperature sensor.

Compressors and cold rooms are hysteresis controllers (pressure or temperature moving
between two limits at rates set by supply and demand); they are integrated exactly
between samples, so a load/unload cycle shorter than the sample interval still shows
in the interval's average power.
"""

from __future__ import annotations

import math

from simulators.grid import DEAD, GENERATOR
from simulators.layout import AmbientSensor, ColdRoom, Compressor, Meter
from simulators.machines import RANK_METER, MachineModel, tan_phi
from simulators.schedule import OFF, WORK
from simulators.site import Site
from simulators.timebase import to_ms
from simulators.truth import FAULT, IDLE, RUNNING
from simulators.truth import OFF as STATE_OFF

_STOPPED, _UNLOADED, _LOADED = 0, 1, 2
_MAX_SWITCHES = 10_000  # per interval; only a degenerate band could reach it


class CompressorModel(MachineModel):
    """A screw compressor with load/unload control, an unloaded run-on timer and air leaks."""

    config: Compressor

    def __init__(self, site: Site, line: str, config: Compressor) -> None:
        super().__init__(site, line, config)
        self.config = config
        self._work = site.work_cursor()
        # An always-on compressor is found running unloaded with a full receiver.
        self._mode = _UNLOADED if config.operating == "always" else _STOPPED
        self.pressure_bar = config.unload_bar
        self._unloaded_for_s = 0.0
        self._tan_loaded = tan_phi(config.pf_running)
        self._tan_unloaded = tan_phi(config.pf_idle)

    def tick(self, ts_ms: int) -> None:
        """Advance the compressor to ``ts_ms``; power is the average over the interval."""
        config, rng = self.config, self.rng
        last = self._last_ms
        self._last_ms = ts_ms
        dt_s = 0.0 if last is None else (ts_ms - last) / 1000.0
        supply, self.voltage_factor = self.site.grid.status(ts_ms)
        phase = self._work.phase(ts_ms)
        demand = config.demand_work if phase == WORK else config.demand_off
        demand = max(0.0, demand * (1.0 + config.demand_noise * rng.gauss(0.0, 1.0)))
        in_fault = self._in_fault(ts_ms)
        allowed = supply != DEAD and not in_fault and (config.operating == "always" or phase != OFF)
        loaded_s, unloaded_s = self._run(dt_s, demand, allowed)
        if allowed and self._wears_out(ts_ms, self._mode != _STOPPED):
            self._mode = _STOPPED
            in_fault = True
        state = FAULT if in_fault else (STATE_OFF, IDLE, RUNNING)[self._mode]
        self.set_state(ts_ms, state)
        rated = config.rated_power_w
        if dt_s > 0.0:
            loaded_w = rated * loaded_s / dt_s
            unloaded_w = rated * config.unloaded_fraction * unloaded_s / dt_s
        else:
            loaded_w = rated if self._mode == _LOADED else 0.0
            unloaded_w = rated * config.unloaded_fraction if self._mode == _UNLOADED else 0.0
        idle_factor, running_factor = self.power_factors(ts_ms)
        loaded_w *= running_factor
        unloaded_w *= idle_factor
        noise = 1.0 + 0.02 * rng.gauss(0.0, 1.0)
        power = (loaded_w + unloaded_w) * noise
        self.energy_wh += power * dt_s / 3600.0
        self.power_w = max(0.0, power)
        self.reactive_var = (loaded_w * self._tan_loaded + unloaded_w * self._tan_unloaded) * noise
        if self.power_w > 0.0:
            self.pf = self.power_w / math.hypot(self.power_w, self.reactive_var)
        else:
            self.pf = 0.0
        turning = self._mode != _STOPPED
        self.load = (loaded_s + 0.3 * unloaded_s) / dt_s if dt_s > 0.0 and turning else 0.0
        self.spinning = turning

    def _run(self, dt_s: float, demand: float, allowed: bool) -> tuple[float, float]:
        """Integrate the pressure band over ``dt_s``; returns (loaded, unloaded) seconds."""
        config = self.config
        band = config.unload_bar - config.load_bar
        full_rate = band / config.fill_s
        rise = full_rate * (1.0 - demand)
        fall = full_rate * demand
        if not allowed:
            self._mode = _STOPPED
            self.pressure_bar = max(0.0, self.pressure_bar - fall * dt_s)
            return 0.0, 0.0
        loaded = unloaded = 0.0
        left = dt_s
        for _ in range(_MAX_SWITCHES):
            if left <= 0.0:
                break
            if self._mode == _LOADED:
                to_unload = (config.unload_bar - self.pressure_bar) / rise if rise > 0 else math.inf
                step = min(left, max(0.0, to_unload))
                self.pressure_bar = max(0.0, self.pressure_bar + rise * step)
                loaded += step
                if step < left:
                    self.pressure_bar = config.unload_bar
                    self._mode, self._unloaded_for_s = _UNLOADED, 0.0
            else:
                to_load = (self.pressure_bar - config.load_bar) / fall if fall > 0 else math.inf
                to_load = max(0.0, to_load)
                if self._mode == _UNLOADED:
                    to_stop = max(0.0, config.stop_after_unloaded_s - self._unloaded_for_s)
                    step = min(left, to_load, to_stop)
                    unloaded += step
                    self._unloaded_for_s += step
                else:
                    to_stop = math.inf
                    step = min(left, to_load)
                self.pressure_bar = max(0.0, self.pressure_bar - fall * step)
                if step < left:
                    if step == to_load:
                        self.pressure_bar = config.load_bar
                        self._mode = _LOADED
                    elif step == to_stop:
                        self._mode = _STOPPED
            left -= step
        return loaded, unloaded

    def read_pressure(self) -> float:
        """Receiver pressure, bar (gauge)."""
        return round(self.pressure_bar + self.rng.gauss(0.0, 0.02), 3)


class ColdRoomModel(MachineModel):
    """A cold room: the compressor cycles to hold the room between two temperatures."""

    config: ColdRoom

    def __init__(self, site: Site, line: str, config: ColdRoom) -> None:
        super().__init__(site, line, config)
        self.config = config
        self._work = site.work_cursor()
        on_s = config.cycle_s * config.duty_ref
        off_s = config.cycle_s - on_s
        self._warm0 = config.band_k / off_s  # K/s with the compressor off, at the reference
        self._capacity0 = config.band_k / on_s + self._warm0
        self._low_c = config.setpoint_c - config.band_k / 2.0
        self._high_c = config.setpoint_c + config.band_k / 2.0
        self.room_c = config.setpoint_c
        self._on = False
        self._door_p_per_s = config.door_openings_per_h / 3600.0
        self._tan_run = tan_phi(config.pf_running)
        self._tan_idle = tan_phi(config.pf_idle)

    def tick(self, ts_ms: int) -> None:
        """Advance the room and its compressor to ``ts_ms``."""
        config, rng = self.config, self.rng
        last = self._last_ms
        self._last_ms = ts_ms
        dt_s = 0.0 if last is None else (ts_ms - last) / 1000.0
        supply, self.voltage_factor = self.site.grid.status(ts_ms)
        outdoor_c = self.site.climate.outdoor_c(ts_ms)
        hotter_k = outdoor_c - config.ref_ambient_c
        warm = self._warm0 * max(0.2, 1.0 + config.load_per_k * hotter_k)
        cool = self._capacity0 * max(0.2, 1.0 - config.capacity_per_k * hotter_k) - warm
        if self._work.phase(ts_ms) == WORK and rng.random() < self._door_p_per_s * dt_s:
            self.room_c += config.door_bump_k * (0.5 + rng.random())
        in_fault = self._in_fault(ts_ms)
        allowed = supply != DEAD and not in_fault
        on_s = self._run(dt_s, warm, cool, allowed, outdoor_c)
        if allowed and self._wears_out(ts_ms, self._on):
            self._on = False
            in_fault = True
        if in_fault:
            state = FAULT
        elif supply == DEAD:
            state = STATE_OFF
        else:
            state = RUNNING if self._on else IDLE
        self.set_state(ts_ms, state)
        if state in (IDLE, RUNNING):
            share = on_s / dt_s if dt_s > 0.0 else float(self._on)
            compressor_w = config.rated_power_w * (1.0 + 0.01 * hotter_k) * share
            noise = 1.0 + 0.02 * rng.gauss(0.0, 1.0)
            power = (compressor_w + config.fan_power_w) * noise
            reactive = (compressor_w * self._tan_run + config.fan_power_w * self._tan_idle) * noise
            self.power_w, self.reactive_var = max(0.0, power), max(0.0, reactive)
            self.pf = (
                self.power_w / math.hypot(self.power_w, self.reactive_var) if power > 0 else 0.0
            )
            self.load, self.spinning = share, share > 0.0
        else:
            self.power_w = self.reactive_var = self.pf = 0.0
            self.load, self.spinning = 0.0, False
        self.energy_wh += self.power_w * dt_s / 3600.0

    def _run(self, dt_s: float, warm: float, cool: float, allowed: bool, outdoor_c: float) -> float:
        """Integrate the thermostat over ``dt_s``; returns the compressor's seconds on."""
        if not allowed:
            self._on = False
            self.room_c = min(max(self.room_c, outdoor_c), self.room_c + warm * dt_s)
            return 0.0
        on_s = 0.0
        left = dt_s
        for _ in range(_MAX_SWITCHES):
            if left <= 0.0:
                break
            if self._on:
                to_off = (self.room_c - self._low_c) / cool if cool > 0 else math.inf
                step = min(left, max(0.0, to_off))
                self.room_c -= cool * step
                on_s += step
                if step < left:
                    self.room_c, self._on = self._low_c, False
            else:
                to_on = (self._high_c - self.room_c) / warm if warm > 0 else math.inf
                step = min(left, max(0.0, to_on))
                self.room_c += warm * step
                if step < left:
                    self.room_c, self._on = self._high_c, True
            left -= step
        return on_s

    def read_room_temp(self) -> float:
        """Room air temperature, °C."""
        return round(self.room_c + self.rng.gauss(0.0, 0.1), 2)


class MeterModel(MachineModel):
    """The main incoming meter: every modelled load plus a base load, and the supply it sees."""

    config: Meter

    def __init__(self, site: Site, line: str, config: Meter, loads: list[MachineModel]) -> None:
        super().__init__(site, line, config)
        self.config = config
        self._loads = loads
        self._work = site.work_cursor()
        self._tan_base = tan_phi(config.base_pf)
        self._break_w = (
            config.base_load_break_w
            if config.base_load_break_w is not None
            else config.base_load_work_w
        )
        self._capacity_w = site.layout.generator.capacity_w if site.layout.generator else 1.0
        plan = site.layout.intervention
        self._base_from_ms = to_ms(plan.start) if plan is not None else None
        self._base_factor = plan.base_load_factor if plan is not None else 1.0
        self.energy_wh = config.energy_start_wh
        self.total_w = 0.0
        self.voltage_v = 0.0
        self.current_a = 0.0
        self.frequency = 0.0
        self.generator_on = 0.0

    def main_rank(self) -> int:
        """The meter reads the loads after they have ticked."""
        return RANK_METER

    def tick(self, ts_ms: int) -> None:
        """Read the site at ``ts_ms``."""
        config, rng, site = self.config, self.rng, self.site
        last = self._last_ms
        self._last_ms = ts_ms
        if last is not None:
            self.energy_wh += self.total_w * (ts_ms - last) / 3_600_000.0
        supply, factor = site.grid.status(ts_ms)
        nominal = site.nominal_voltage_v
        phase = self._work.phase(ts_ms)
        if supply == DEAD:
            self.total_w = reactive = 0.0
            self.voltage_v = abs(rng.gauss(0.0, 0.3))
            self.frequency = 0.0
            self.generator_on = 0.0
        else:
            base_w = (
                config.base_load_work_w
                if phase == WORK
                else self._break_w
                if phase != OFF
                else config.base_load_off_w
            )
            base_w *= 1.0 + 0.03 * rng.gauss(0.0, 1.0)
            if self._base_from_ms is not None and ts_ms >= self._base_from_ms:
                base_w *= self._base_factor
            self.total_w = base_w + sum(load.power_w for load in self._loads)
            reactive = base_w * self._tan_base + sum(load.reactive_var for load in self._loads)
            if supply == GENERATOR:
                utilisation = self.total_w / self._capacity_w
                self.voltage_v = (
                    nominal * (1.0 - 0.04 * utilisation) * (1.0 + 0.005 * rng.gauss(0, 1))
                )
                self.frequency = site.frequency_hz * (1.0 - 0.01 * utilisation) + rng.gauss(0, 0.1)
                self.generator_on = 1.0
            else:
                hour = site.climate.local_hour(ts_ms)
                evening = math.exp(-(((hour - 19.0) / 2.0) ** 2))
                swing = 1.0 - site.layout.grid.swing * evening
                self.voltage_v = nominal * factor * swing * (1.0 + 0.004 * rng.gauss(0.0, 1.0))
                self.frequency = site.frequency_hz + rng.gauss(0.0, 0.02)
                self.generator_on = 0.0
        apparent = math.hypot(self.total_w, reactive)
        self.pf = self.total_w / apparent if apparent > 0.0 else 0.0
        volts = self.voltage_v
        self.current_a = apparent / (config.phases * volts) if volts > 1.0 else 0.0

    def read_voltage(self) -> float:
        """Phase-to-neutral voltage, V."""
        return round(self.voltage_v, 1)

    def read_current(self) -> float:
        """Current per phase, A."""
        return round(self.current_a, 2)

    def read_active_power(self) -> float:
        """Site active power, W."""
        return round(self.total_w, 1)

    def read_power_factor(self) -> float:
        """Site power factor (0 without supply)."""
        return round(self.pf, 3)

    def read_frequency(self) -> float:
        """Supply frequency, Hz (0 without supply)."""
        return round(self.frequency, 3)

    def read_generator_on(self) -> float:
        """1 while the generator carries the site, else 0."""
        return self.generator_on


class AmbientModel(MachineModel):
    """An air temperature sensor."""

    config: AmbientSensor

    def __init__(self, site: Site, line: str, config: AmbientSensor) -> None:
        super().__init__(site, line, config)
        self.config = config
        self._value_c = 0.0

    def main_rank(self) -> int:
        """Sorted with the meter, after the machines."""
        return RANK_METER

    def tick(self, ts_ms: int) -> None:
        """Read the air at ``ts_ms``."""
        climate = self.site.climate
        air_c = (
            climate.indoor_c(ts_ms)
            if self.config.location == "indoor"
            else climate.outdoor_c(ts_ms)
        )
        self._value_c = air_c + self.rng.gauss(0.0, self.config.noise_k)

    def read_ambient_temp(self) -> float:
        """Air temperature, °C."""
        return round(self._value_c, 2)

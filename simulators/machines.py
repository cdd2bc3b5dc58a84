"""Machine behaviour: states that follow shifts and the grid, power draw, output and wear.

Each machine is advanced by the ticks of its channels (electrical/process, condition,
production), each with its own sample interval. A tick updates the state for the
tick's time; the channel's getters then read the values to emit.

A machine with a ``condition:`` block wears out (:mod:`simulators.degradation`): a
failure stops it for its repair, preventive maintenance (if planned) stops it for the
maintenance, and either renews it (a maintenance that misses a fault in progress
leaves the machine as it was). Production machines and cycling machines stand ``off``
during maintenance, compressors and cold rooms ``fault``. Changeovers
(``load_regime_days``) move a production machine's load within its range and a
cycling machine's duty; the random draws of the machine's own stream stay the same.

Its condition readings are taken at each tick of its condition channel, noise and all,
and then sent through its sensors' faults: a stuck transmitter sends its last readings
again, and during a dropout the channel has no series at that tick, so nothing is sent
(the machine's own random draws are the same either way).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from simulators.degradation import ConditionMonitor, MaintenancePlan
from simulators.grid import DEAD
from simulators.layout import (
    CONDITION_METRICS,
    PRODUCTION_METRICS,
    Cycling,
    MachineBase,
    Pasteuriser,
    ProductionMachine,
)
from simulators.schedule import BREAK, OFF, WORK, SegmentCursor, personal_segments
from simulators.site import Site
from simulators.timebase import MS_PER_DAY, MS_PER_H, to_ms
from simulators.truth import FAULT, IDLE, RUNNING, SensorFaultKind
from simulators.truth import OFF as STATE_OFF
from tonle.contract import METRIC_UNITS

Getter = Callable[[], float]

# The contract's units, and those of the temperatures only the simulated food plant has.
UNITS: Final[dict[str, str | None]] = {**METRIC_UNITS, "room_temp": "°C", "product_temp": "°C"}
_WH_PER_W_MS = 1.0 / MS_PER_H
# What one accelerometer reports: its gain steps and spikes touch both.
VIBRATION_METRICS: Final = frozenset({"vibration_rms", "vibration_peak"})
# Sensor faults of the transmitter, which touch every condition metric alike.
_TRANSMITTER_FAULTS: Final[frozenset[SensorFaultKind]] = frozenset({"stuck", "dropout"})

# Channel ranks order the ticks that fall on the same millisecond: a machine's state
# first, then what reads it (condition, production), then the meter that sums them.
RANK_MAIN: Final = 0
RANK_READER: Final = 1
RANK_METER: Final = 2


@dataclass(slots=True)
class Channel:
    """A group of metrics of one machine sampled together every ``interval_ms``.

    A tick may empty ``series`` (a condition channel whose sensors dropped out): that
    tick then sends nothing. Read ``series`` after each tick.
    """

    line: str
    machine: str
    interval_ms: int
    phase_ms: int
    rank: int
    tick: Callable[[int], None]
    series: list[tuple[str, str | None, Getter]]


def tan_phi(power_factor: float) -> float:
    """Reactive over active power for a power factor."""
    return math.tan(math.acos(power_factor))


class LoadRegimes:
    """Changeovers (product, style) that move a machine's typical load every few days.

    Each regime lasts ``mean_days × U(0.5, 1.5)`` and has a position in [-1, 1]; a
    machine maps it onto its own load (see :meth:`within`).
    """

    def __init__(self, mean_days: float, shift: float, rng: random.Random, start_ms: int) -> None:
        self._mean_ms = mean_days * MS_PER_DAY
        self.shift = shift
        self._rng = rng
        self.position = rng.uniform(-1.0, 1.0)
        self._until_ms = start_ms + self._length_ms()

    def _length_ms(self) -> int:
        return max(MS_PER_H, int(self._mean_ms * self._rng.uniform(0.5, 1.5)))

    def at(self, ts_ms: int) -> float:
        """The regime's position in [-1, 1] at ``ts_ms``; times must not decrease."""
        while ts_ms >= self._until_ms:
            self.position = self._rng.uniform(-1.0, 1.0)
            self._until_ms += self._length_ms()
        return self.position

    def within(self, ts_ms: int, value: float, low: float, high: float) -> float:
        """``value`` drawn in [low, high], moved into the part of the range the regime favours.

        The centre moves by ``position × shift`` half-ranges and the spread around it
        shrinks by ``1 − shift``, so the result stays within [low, high].
        """
        middle, half = (low + high) / 2.0, (high - low) / 2.0
        centre = middle + self.at(ts_ms) * self.shift * half
        return min(high, max(low, centre + (value - middle) * (1.0 - self.shift)))


class MachineModel:
    """What every simulated machine has: state, electrical values, energy and wear."""

    def __init__(self, site: Site, line: str, config: MachineBase) -> None:
        self.site = site
        self.line = line
        self.id = config.id
        self.config = config
        self.rng = site.rng(line, config.id)
        self.phase_ms = self.rng.randrange(1000)
        self.state = -1
        self.power_w = 0.0
        self.reactive_var = 0.0
        self.pf = 0.0
        self.load = 0.0
        self.spinning = False
        self.energy_wh = 0.0
        self.voltage_factor = 1.0
        self._last_ms: int | None = None
        self._fault_until_ms = -1
        self._renew_after_fault = False
        plan = site.layout.intervention
        self._intervened_from_ms = (
            to_ms(plan.start) if plan is not None and plan.applies_to(config) else None
        )
        self._idle_factor = plan.idle_power_factor if plan is not None else 1.0
        self._running_factor = plan.running_power_factor if plan is not None else 1.0
        self.monitor: ConditionMonitor | None = None
        self._maintenance: MaintenancePlan | None = None
        self._maintenance_until_ms = -1
        self._renew_after_maintenance = True
        self._regimes: LoadRegimes | None = None
        # The condition metrics in channel order, and what their sensors last sent.
        self._sensed = [m for m in config.reported_metrics() if m in CONDITION_METRICS]
        self._measure: list[Getter] = []
        self._sent: list[float] = []
        self._condition_channel: Channel | None = None
        self._condition_series: list[tuple[str, str | None, Getter]] = []
        condition = config.condition
        if condition is not None:
            self.monitor = ConditionMonitor(
                condition,
                site.rng(line, config.id, "wear"),
                site.start_ms,
                site.climate.indoor_c(site.start_ms),
                streams=lambda part: site.rng(line, config.id, part),
                on_disturbance=self._record_disturbance,
                on_sensor_fault=self._record_sensor_fault,
            )
            pm = MaintenancePlan(
                condition,
                site.rng(line, config.id, "maintenance"),
                site.start_ms,
                inspection=site.rng(line, config.id, "inspection"),
            )
            self._maintenance = pm if pm.enabled else None
            if condition.load_regime_days is not None:
                self._regimes = LoadRegimes(
                    condition.load_regime_days,
                    condition.load_regime_shift,
                    site.rng(line, config.id, "load"),
                    site.start_ms,
                )

    # -- channels -----------------------------------------------------------------

    def channels(self) -> list[Channel]:
        """The channels this machine is sampled through; the main one always ticks."""
        reported = self.config.reported_metrics()
        main = [m for m in reported if m not in CONDITION_METRICS | PRODUCTION_METRICS]
        condition = [m for m in reported if m in CONDITION_METRICS]
        production = [m for m in reported if m in PRODUCTION_METRICS]
        interval_ms = int(self.config.interval_s * 1000)
        channels = [self._channel(interval_ms, self.main_rank(), self.tick, main)]
        if condition:
            interval = int(self.config.condition_interval_s * 1000)
            self._measure = [self.getter(m) for m in condition]
            series = [(m, UNITS.get(m), self._sent_getter(i)) for i, m in enumerate(condition)]
            channel = Channel(
                self.line,
                self.id,
                interval,
                self.phase_ms,
                RANK_READER,
                self.tick_condition,
                series,
            )
            self._condition_channel, self._condition_series = channel, series
            channels.append(channel)
        if production:
            interval = int(self.production_interval_s() * 1000)
            channels.append(self._channel(interval, RANK_READER, self.tick_production, production))
        return channels

    def _channel(
        self, interval_ms: int, rank: int, tick: Callable[[int], None], metrics: list[str]
    ) -> Channel:
        series = [(m, UNITS.get(m), self.getter(m)) for m in metrics]
        return Channel(self.line, self.id, interval_ms, self.phase_ms, rank, tick, series)

    def getter(self, metric: str) -> Getter:
        """The function that reads ``metric`` after a tick (condition metrics: measures it)."""
        reader: Getter = getattr(self, f"read_{metric}")
        return reader

    def _sent_getter(self, index: int) -> Getter:
        return lambda: self._sent[index]

    def main_rank(self) -> int:
        """Where this machine's main tick sorts among ticks of the same millisecond."""
        return RANK_MAIN

    def production_interval_s(self) -> float:
        """How often production counts are reported."""
        return 60.0

    def tick(self, ts_ms: int) -> None:
        """Advance the machine to ``ts_ms``."""
        raise NotImplementedError

    def tick_condition(self, ts_ms: int) -> None:
        """Advance vibration and temperatures to ``ts_ms`` and take what the sensors send."""
        monitor = self.monitor
        if monitor is None:
            return
        monitor.update(ts_ms, self.load, self.spinning, self.site.climate.indoor_c(ts_ms))
        channel = self._condition_channel
        if channel is None:
            return
        # Every reading is measured, in channel order, whether or not it is sent: the
        # temperature noise comes from the machine's own generator.
        measured = [measure() for measure in self._measure]
        faults = monitor.sensor_faults
        if faults.dropped:
            channel.series = []
            return
        channel.series = self._condition_series
        if not (faults.stuck and self._sent):
            self._sent = measured

    def tick_production(self, ts_ms: int) -> None:
        """Close a production counting period at ``ts_ms``."""

    # -- shared mechanics ---------------------------------------------------------

    def _advance(self, ts_ms: int) -> int:
        """Milliseconds since the previous main tick, with energy accrued at the old power."""
        last = self._last_ms
        self._last_ms = ts_ms
        if last is None:
            return 0
        dt_ms = ts_ms - last
        self.energy_wh += self.power_w * dt_ms * _WH_PER_W_MS
        return dt_ms

    def set_state(self, ts_ms: int, state: int) -> None:
        """Enter ``state`` at ``ts_ms``, recording a change in the truth."""
        if state != self.state:
            self.state = state
            self.site.truth.record_state(self.line, self.id, state, ts_ms)

    @property
    def in_maintenance(self) -> bool:
        """Whether the machine is stopped for preventive maintenance."""
        return self._maintenance_until_ms >= 0

    def _in_fault(self, ts_ms: int) -> bool:
        """Whether the machine is stopped at ``ts_ms``: repair, minor stop or maintenance."""
        if self._fault_until_ms >= 0:
            if ts_ms < self._fault_until_ms:
                return True
            self._fault_until_ms = -1
            if self._renew_after_fault and self.monitor is not None:
                self.monitor.renew(ts_ms)  # the repair overhauls the machine
                plan = self._maintenance
                if plan is not None and plan.due_ms <= ts_ms:
                    plan.reschedule(ts_ms)  # maintenance that fell due during the repair
            self._renew_after_fault = False
        return self._in_maintenance(ts_ms)

    def _in_maintenance(self, ts_ms: int) -> bool:
        """Start, continue or end preventive maintenance; whether it stops the machine now."""
        plan, monitor = self._maintenance, self.monitor
        if plan is None or monitor is None:
            return False
        if self._maintenance_until_ms >= 0:
            if ts_ms < self._maintenance_until_ms:
                return True
            self._maintenance_until_ms = -1
            if self._renew_after_maintenance:
                monitor.renew(ts_ms)
            return False
        if ts_ms < plan.due_ms:
            return False
        health = monitor.health
        onset_ms = health.onset_ms if ts_ms >= health.onset_ms else None
        if onset_ms is not None and not plan.finds_fault():
            onset_ms = None  # serviced, but the fault runs on: nothing was cut short
            self._renew_after_maintenance = False
        else:
            self._renew_after_maintenance = True
        self._maintenance_until_ms = ts_ms + plan.duration_ms()
        self.site.truth.record_maintenance(
            self.line, self.id, ts_ms, self._maintenance_until_ms, onset_ms
        )
        plan.reschedule(ts_ms)
        return True

    def degrading_since(self, ts_ms: int) -> int | None:
        """The onset of a degradation in progress at ``ts_ms``; None if healthy or being renewed."""
        monitor = self.monitor
        renewing = self.in_maintenance and self._renew_after_maintenance
        if monitor is None or self._renew_after_fault or renewing:
            return None
        onset_ms = monitor.health.onset_ms
        return onset_ms if onset_ms <= ts_ms else None

    def _record_disturbance(self, start_ms: int, end_ms: int, factor: float) -> None:
        self.site.truth.record_disturbance(self.line, self.id, start_ms, end_ms, factor)

    def _record_sensor_fault(
        self, kind: SensorFaultKind, start_ms: int, end_ms: int | None, factor: float | None
    ) -> None:
        """Record a sensor fault once per condition metric it touches."""
        whole = kind in _TRANSMITTER_FAULTS
        for metric in self._sensed:
            if whole or metric in VIBRATION_METRICS:
                self.site.truth.record_sensor_fault(
                    self.line, self.id, metric, kind, start_ms, end_ms, factor
                )

    def _wears_out(self, ts_ms: int, turning: bool) -> bool:
        """Start a wear-out failure if one is due and the machine is turning."""
        monitor = self.monitor
        if monitor is None or not turning or not monitor.health.failure_due(ts_ms):
            return False
        health = monitor.health
        repaired_ms = ts_ms + health.repair_ms()
        self._fault_until_ms = repaired_ms
        self._renew_after_fault = True
        self.site.truth.record_failure(
            self.line, self.id, health.mode, health.onset_ms, ts_ms, repaired_ms
        )
        return True

    def power_factors(self, ts_ms: int) -> tuple[float, float]:
        """Multipliers on (idle, running) draw at ``ts_ms``: the layout's intervention, if any."""
        since = self._intervened_from_ms
        if since is None or ts_ms < since:
            return 1.0, 1.0
        return self._idle_factor, self._running_factor

    def _stop_for(self, ts_ms: int, duration_ms: int) -> None:
        self._fault_until_ms = ts_ms + duration_ms
        self._renew_after_fault = False

    def _draw(self, power_w: float, tan: float, power_factor: float) -> None:
        self.power_w = power_w if power_w > 0.0 else 0.0
        self.reactive_var = self.power_w * tan
        self.pf = power_factor if self.power_w > 0.0 else 0.0

    # -- readings -----------------------------------------------------------------

    def read_active_power(self) -> float:
        """Active power, W."""
        return round(self.power_w, 1)

    def read_current(self) -> float:
        """Current per phase, A."""
        volts = self.site.nominal_voltage_v * self.voltage_factor
        if volts < 1.0 or self.power_w <= 0.0:
            return 0.0
        apparent = math.hypot(self.power_w, self.reactive_var)
        return round(apparent / (self.config.phases * volts), 3)

    def read_power_factor(self) -> float:
        """Power factor (0 while the machine draws nothing)."""
        if self.pf <= 0.0:
            return 0.0
        return round(min(1.0, self.pf + self.rng.gauss(0.0, 0.005)), 3)

    def read_energy(self) -> float:
        """Cumulative energy, Wh."""
        return round(self.energy_wh, 1)

    def read_machine_state(self) -> float:
        """0 off, 1 idle, 2 running, 3 fault."""
        return float(max(self.state, 0))

    def read_vibration_rms(self) -> float:
        """Vibration velocity RMS as the sensor reports it, mm/s."""
        assert self.monitor is not None
        return round(self.monitor.reported_vibration_mm_s(), 3)

    def read_vibration_peak(self) -> float:
        """Vibration acceleration peak as the sensor reports it, g."""
        assert self.monitor is not None
        return round(self.monitor.reported_peak_g(), 3)

    def read_bearing_temp(self) -> float:
        """Bearing temperature as the sensor reports it, °C."""
        assert self.monitor is not None
        return round(self.monitor.reported_bearing_c() + self.rng.gauss(0.0, 0.2), 2)

    def read_motor_temp(self) -> float:
        """Motor winding temperature as the sensor reports it, °C."""
        assert self.monitor is not None
        return round(self.monitor.reported_motor_c() + self.rng.gauss(0.0, 0.2), 2)


class ProductionModel(MachineModel):
    """A machine worked by an operator: on in shifts, alternately running and idle, making units."""

    config: ProductionMachine

    def __init__(self, site: Site, line: str, config: ProductionMachine) -> None:
        super().__init__(site, line, config)
        self.config = config
        self._segments = SegmentCursor(
            personal_segments(
                site.calendar.periods(site.start_ms),
                site.rng(line, config.id, "schedule"),
                on_jitter_s=config.switch_on_jitter_s,
                off_jitter_s=config.switch_off_jitter_s,
                off_at_break_prob=config.off_at_break_prob,
                left_on_prob=config.left_on_prob,
            )
        )
        self._idle_w = config.rated_power_w * config.idle_power_fraction()
        self._spins_idle = config.spins_when_idle()
        self._tan_run = tan_phi(config.pf_running)
        self._tan_idle = tan_phi(config.pf_idle)
        self._stop_p_per_ms = config.stop_rate_per_h / MS_PER_H
        self._startup_ms = int(config.startup_s * 1000)
        self._cycle_ms = config.ideal_cycle_s * 1000
        self._dwell_until_ms = 0
        self._startup_until_ms = 0
        self._level = config.load_range[1]
        self._speed = config.speed_range[1]
        self._progress = 0.0
        self._good = 0
        self._reject = 0
        self._report_good = 0
        self._report_reject = 0

    def production_interval_s(self) -> float:
        """How often production counts are reported."""
        return self.config.production_interval_s

    def _dwell_ms(self, mean_s: float) -> int:
        return max(1000, int(self.rng.expovariate(1.0 / mean_s) * 1000))

    def tick(self, ts_ms: int) -> None:
        """Advance the machine to ``ts_ms``."""
        dt_ms = self._advance(ts_ms)
        if self.state == RUNNING and dt_ms:
            self._produce(dt_ms)
        supply, self.voltage_factor = self.site.grid.status(ts_ms)
        state = self._next_state(ts_ms, supply, self._segments.mode(ts_ms), dt_ms)
        self.set_state(ts_ms, state)
        self._set_power(ts_ms, state)

    def _next_state(self, ts_ms: int, supply: int, mode: int, dt_ms: int) -> int:
        if self._in_fault(ts_ms):
            return STATE_OFF if self.in_maintenance else FAULT
        if supply == DEAD or mode == OFF:
            return STATE_OFF
        config = self.config
        state = self.state
        if state not in (IDLE, RUNNING):  # switched on (or power back)
            self._startup_until_ms = ts_ms + self._startup_ms
            self._dwell_until_ms = ts_ms + self._dwell_ms(config.mean_idle_s)
            state = IDLE
        elif mode == WORK and ts_ms >= self._dwell_until_ms:
            if state == IDLE:
                self._level = self.rng.uniform(*config.load_range)
                if self._regimes is not None:
                    self._level = self._regimes.within(ts_ms, self._level, *config.load_range)
                self._speed = self.rng.uniform(*config.speed_range)
                self._dwell_until_ms = ts_ms + self._dwell_ms(config.mean_run_s)
                state = RUNNING
            else:
                self._dwell_until_ms = ts_ms + self._dwell_ms(config.mean_idle_s)
                state = IDLE
        if mode == BREAK or ts_ms < self._startup_until_ms:
            state = IDLE
        turning = state == RUNNING or (state == IDLE and self._spins_idle)
        if self._wears_out(ts_ms, turning):
            return FAULT
        if state == RUNNING and self.rng.random() < self._stop_p_per_ms * dt_ms:
            stop_s = max(30.0, self.rng.expovariate(1.0 / config.mean_stop_s))
            self._stop_for(ts_ms, int(stop_s * 1000))
            return FAULT
        return state

    def _set_power(self, ts_ms: int, state: int) -> None:
        config = self.config
        noise = 1.0 + config.power_noise * self.rng.gauss(0.0, 1.0)
        idle_factor, running_factor = self.power_factors(ts_ms)
        if state == RUNNING:
            power = config.rated_power_w * self._level * noise * running_factor
            self._draw(power, self._tan_run, config.pf_running)
            self.load, self.spinning = self._level, True
        elif state == IDLE and ts_ms < self._startup_until_ms:
            power = config.rated_power_w * config.startup_power_fraction * noise * running_factor
            self._draw(power, self._tan_run, config.pf_running)
            self.load, self.spinning = config.startup_power_fraction, True
        elif state == IDLE:
            self._draw(self._idle_w * noise * idle_factor, self._tan_idle, config.pf_idle)
            self.load, self.spinning = (0.15, True) if self._spins_idle else (0.0, False)
        else:
            self._draw(0.0, 0.0, 0.0)
            self.load, self.spinning = 0.0, False

    def _produce(self, dt_ms: int) -> None:
        self._progress += dt_ms * self._speed / self._cycle_ms
        made = int(self._progress)
        if not made:
            return
        self._progress -= made
        rejects = sum(1 for _ in range(made) if self.rng.random() < self.config.reject_rate)
        self._good += made - rejects
        self._reject += rejects

    def tick_production(self, ts_ms: int) -> None:
        """Close a production counting period at ``ts_ms``."""
        self._report_good, self._good = self._good, 0
        self._report_reject, self._reject = self._reject, 0

    def read_units_good(self) -> float:
        """Good units made since the previous production sample."""
        return float(self._report_good)

    def read_units_reject(self) -> float:
        """Rejected units made since the previous production sample."""
        return float(self._report_reject)


class PasteuriserModel(ProductionModel):
    """An HTST pasteuriser: heat-up after switch-on, then product held at the set temperature."""

    config: Pasteuriser

    def __init__(self, site: Site, line: str, config: Pasteuriser) -> None:
        super().__init__(site, line, config)
        self.config = config
        self.product_c = site.climate.indoor_c(site.start_ms)

    def tick(self, ts_ms: int) -> None:
        """Advance the machine and its product temperature to ``ts_ms``."""
        previous = self._last_ms
        super().tick(ts_ms)
        if previous is None:
            return
        hold = self.config.hold_temp_c
        if self.state == RUNNING:
            target, tau_s = hold, 60.0
        elif self.state == IDLE and ts_ms < self._startup_until_ms:
            target, tau_s = hold + 8.0, 900.0  # heating, approaching the hold temperature
        elif self.state == IDLE:
            target, tau_s = hold - 0.5, 120.0  # recirculating hot water
        else:
            target, tau_s = self.site.climate.indoor_c(ts_ms), 3600.0
        dt_s = (ts_ms - previous) / 1000.0
        self.product_c += (target - self.product_c) * (1.0 - math.exp(-dt_s / tau_s))

    def read_product_temp(self) -> float:
        """Product temperature at the holding tube, °C."""
        return round(self.product_c + self.rng.gauss(0.0, 0.15), 2)


class CyclingModel(MachineModel):
    """Thermostat-switched elements (irons, boiler feed pump) during shifts or always."""

    config: Cycling

    def __init__(self, site: Site, line: str, config: Cycling) -> None:
        super().__init__(site, line, config)
        self.config = config
        self._work = site.work_cursor() if config.operating == "shift" else None
        self._tan_run = tan_phi(config.pf_running)
        self._tan_idle = tan_phi(config.pf_idle)

    def tick(self, ts_ms: int) -> None:
        """Advance the machine to ``ts_ms``."""
        config = self.config
        self._advance(ts_ms)
        supply, self.voltage_factor = self.site.grid.status(ts_ms)
        phase = self._work.phase(ts_ms) if self._work is not None else WORK
        if self._in_fault(ts_ms):
            state = STATE_OFF if self.in_maintenance else FAULT
        elif supply == DEAD or phase == OFF:
            state = STATE_OFF
        else:
            state = RUNNING if phase == WORK else IDLE
            if self._wears_out(ts_ms, True):
                state = FAULT
        self.set_state(ts_ms, state)
        if state in (IDLE, RUNNING):
            duty = config.duty if state == RUNNING else config.duty_break
            if self._regimes is not None:
                duty = self._regimes.within(ts_ms, duty, 0.0, 2.0 * duty)
            rng = self.rng
            on = sum(1 for _ in range(config.elements) if rng.random() < duty)
            power = config.base_power_w + config.element_power_w * on
            power *= 1.0 + 0.02 * rng.gauss(0.0, 1.0)
            tan, pf = (self._tan_run, config.pf_running) if on else (self._tan_idle, config.pf_idle)
            self._draw(power, tan, pf)
            self.load, self.spinning = on / config.elements, True
        else:
            self._draw(0.0, 0.0, 0.0)
            self.load, self.spinning = 0.0, False

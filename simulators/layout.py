"""A factory layout described in YAML: site, shifts, grid, generator, climate, lines and machines.

A bare name such as ``"garment"`` loads the packaged ``simulators/layouts/garment.yaml``;
anything that looks like a path loads that file. Every id follows the contract's id
rule and every metric its snake_case rule, so what the simulator emits can be published
as is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tonle.contract import Id, Metric, describe_validation_error
from tonle.errors import ConfigError

log = logging.getLogger(__name__)

LAYOUT_DIR: Final = Path(__file__).parent / "layouts"

DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES: Final[tuple[DayName, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FailureMode = Literal["bearing", "misalignment", "lubrication", "belt", "lubricant_loss"]
FAILURE_MODE_NAMES: Final[tuple[FailureMode, ...]] = (
    "bearing",
    "misalignment",
    "lubrication",
    "belt",
    "lubricant_loss",
)
# The modes of a condition block that lists none: the slowly announced wear-out modes.
# ``lubricant_loss`` (a failed seal or an empty lubricator; the bearing runs hot and
# seizes within days) is only where a layout lists it.
DEFAULT_FAILURE_MODES: Final[tuple[FailureMode, ...]] = FAILURE_MODE_NAMES[:4]

# Metrics by the channel that produces them: condition metrics are sampled slowly,
# production counts are increments since the previous production sample.
CONDITION_METRICS: Final = frozenset(
    {"vibration_rms", "vibration_peak", "bearing_temp", "motor_temp"}
)
PRODUCTION_METRICS: Final = frozenset({"units_good", "units_reject"})
ELECTRICAL_METRICS: Final = ("active_power", "current", "power_factor", "energy")

# Phnom Penh monthly mean max/min °C (DOMAIN.md, single secondary source: U).
PHNOM_PENH_MAX_C: Final = (31.0, 32.0, 34.0, 35.0, 35.0, 33.0, 33.0, 32.0, 31.0, 31.0, 30.0, 30.0)
PHNOM_PENH_MIN_C: Final = (20.0, 21.0, 24.0, 25.0, 25.0, 24.0, 24.0, 25.0, 25.0, 24.0, 22.0, 21.0)


def _clock_time(value: Any) -> Any:
    """Accept ``"07:00"`` and also what YAML 1.1 makes of an unquoted ``16:00`` (960)."""
    if isinstance(value, int) and not isinstance(value, bool):
        hours, minutes = divmod(value, 60)
        return time(hours, minutes)
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


def _ordered_pair(pair: tuple[float, float], what: str) -> tuple[float, float]:
    if pair[0] > pair[1]:
        raise ValueError(f"{what} must be [low, high], got {list(pair)}")
    return pair


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------- site-wide


class Break(_Model):
    """A break inside a shift (local clock time); machines may be switched off during it."""

    start: ClockTime
    end: ClockTime


class Overtime(_Model):
    """Overtime after a shift: on a given day it happens with ``probability``."""

    end: ClockTime
    probability: Fraction = 1.0
    days: list[DayName] | None = Field(default=None, description="default: the shift's days")


class Shift(_Model):
    """A shift on some days of the week, local clock time; ``end`` before ``start`` is next day."""

    name: str = ""
    days: list[DayName] = Field(min_length=1)
    start: ClockTime
    end: ClockTime
    breaks: list[Break] = Field(default_factory=list)
    overtime: Overtime | None = None


class Electrical(_Model):
    """The supply; ``nominal_voltage_v`` is phase to neutral (230 V on a 400 V 3-phase system)."""

    nominal_voltage_v: Positive = 230.0
    phases: Literal[1, 3] = 3
    frequency_hz: Positive = 50.0


class GridModel(_Model):
    """Outages and voltage sags of the public grid, as Poisson processes."""

    outage_rate_per_day: NonNegative = 0.3
    mean_outage_s: Positive = 1200.0
    min_outage_s: Positive = 30.0
    sag_rate_per_day: NonNegative = 1.0
    mean_sag_s: Positive = 20.0
    sag_depth: tuple[Fraction, Fraction] = Field(
        default=(0.70, 0.88), description="voltage during a sag, as a fraction of nominal"
    )
    swing: Fraction = Field(default=0.03, description="evening voltage dip, fraction of nominal")

    @field_validator("sag_depth")
    @classmethod
    def _depth_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _ordered_pair(value, "sag_depth")


class Generator(_Model):
    """The standby diesel generator that takes the load after ``start_delay_s`` of an outage."""

    start_delay_s: NonNegative = 60.0
    capacity_w: Positive = 200_000.0


class Climate(_Model):
    """Monthly mean daily maximum and minimum outdoor temperatures, January first."""

    monthly_max_c: list[float] = Field(default=list(PHNOM_PENH_MAX_C), min_length=12, max_length=12)
    monthly_min_c: list[float] = Field(default=list(PHNOM_PENH_MIN_C), min_length=12, max_length=12)
    day_to_day_sd_k: NonNegative = 1.0
    indoor_offset_k: float = Field(default=2.0, description="factory floor above outdoor air")


# ------------------------------------------------------------------------ machines


class Condition(_Model):
    """Condition monitoring and wear of a rotating machine (vibration, bearing and motor heat).

    Each life is drawn around ``mean_life_days``; it ends in a failure of one of ``modes``,
    whose signs show for its P–F interval beforehand (``pf_days`` overrides the mode's
    own range). The repair takes about ``repair_h`` and renews the machine.

    The rest makes the signals as hard to read as a real plant's: sensors that drift,
    benign disturbances that look like faults for a while, fault signatures that come
    and go early in the P–F interval, changeovers that move the load, and preventive
    maintenance that renews a machine before it fails, though it may miss a fault in
    progress (``pm_finds_fault``). Faults of the sensors themselves, not of the
    machine, are off unless set: a knocked vibration sensor whose gain steps, spike
    bursts, a transmitter stuck at its last readings, and dropouts with no readings at
    all. Each draws from a random stream of its own. Load changeovers and preventive
    maintenance change what a machine draws from the supply, so they are off unless
    set; the rest only changes what the condition sensors report. Figures marked U
    have no firm public source.
    """

    iso_class: Literal["I", "II"] = "I"
    baseline_vibration_mm_s: Positive | None = Field(
        default=None, description="at full load when healthy; default by ISO class"
    )
    bearing_rise_k: NonNegative = 15.0
    motor_rise_k: NonNegative = 35.0
    mean_life_days: Positive = 180.0
    life_spread: Fraction = 0.25
    modes: list[FailureMode] = Field(
        default_factory=lambda: list(DEFAULT_FAILURE_MODES), min_length=1
    )
    pf_days: tuple[Positive, Positive] | None = None
    repair_h: Positive = 8.0
    initial_age: tuple[Fraction, Fraction] = Field(
        default=(0.0, 0.9), description="fraction of the first life already used at the start"
    )
    vibration_gain_drift: Annotated[float, Field(ge=0.0, le=0.5)] = Field(
        default=0.04,
        description="largest change of the vibration sensor's gain over 180 days, either "
        "sign; each sensor drifts linearly at a rate drawn within it (a few % in 6 months, U)",
    )
    temp_offset_drift_k: NonNegative = Field(
        default=1.5,
        description="largest drift of a temperature sensor's offset over 180 days, K, either "
        "sign; bearing and motor sensors drift apart (1-2 K in 6 months, U)",
    )
    disturbance_rate_per_30d: NonNegative = Field(
        default=2.0,
        description="benign disturbances (a loose guard, an unbalanced load, a slapping belt) "
        "per 30 days, a Poisson process (1-3 a machine-month, U)",
    )
    disturbance_h: tuple[Positive, Positive] = Field(
        default=(5.0 / 60.0, 3.0),
        description="duration of a disturbance, h, log-uniform: mostly short, some hours",
    )
    disturbance_factor: tuple[Annotated[float, Field(ge=1.0)], Annotated[float, Field(ge=1.0)]] = (
        Field(default=(1.3, 2.2), description="vibration multiplier during a disturbance")
    )
    precursor_duty: Fraction = Field(
        default=0.3,
        description="share of the time a developing fault shows at the start of its P–F "
        "interval; the share grows linearly to 1 at precursor_steady_at (1: always shows)",
    )
    precursor_steady_at: Fraction = Field(
        default=0.6, description="fraction of the P–F interval from which the fault always shows"
    )
    precursor_cycle_h: Positive = Field(
        default=12.0,
        description="mean length of one spell shown plus one hidden, h (spells of hours)",
    )
    load_regime_days: Positive | None = Field(
        default=None,
        description="mean days between changeovers (product, style) that move the machine's "
        "typical load: production machines within load_range, cycling machines their "
        "duty; None keeps one regime (every few days, 3-5, suits a garment line, U)",
    )
    load_regime_shift: Fraction = Field(
        default=0.5,
        description="how far a changeover moves the typical load, as a share of half the "
        "load range (production) or of the duty (cycling)",
    )
    pm_interval_days: NonNegative | None = Field(
        default=None,
        description="preventive maintenance every so many days (first one at a random point "
        "of the first interval), renewing the machine; 0 or None: run to failure "
        "(90 suits a quarterly greasing and inspection round, U)",
    )
    pm_jitter: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.2, description="each maintenance interval is pm_interval_days × U(1 ± this)"
    )
    pm_duration_h: Positive = Field(default=4.0, description="the machine is stopped this long")
    pm_finds_fault: Fraction = Field(
        default=1.0,
        description="chance that a maintenance finds and fixes a degradation in progress; "
        "otherwise the machine is serviced (and logged) but the fault runs on to failure "
        "(an inspection without instruments misses many early defects, U)",
    )
    remount_shift: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.08,
        description="after a repair or maintenance the healthy vibration is the baseline "
        "× U(1 ± this): parts re-mounted never sit quite as before (U)",
    )

    gain_step_rate_per_year: NonNegative = Field(
        default=0.0,
        description="knocks or re-mountings of the vibration sensor per year, each stepping "
        "its gain by a factor within gain_step, unlogged (about 1 a machine-year, U)",
    )
    gain_step: tuple[Positive, Positive] = Field(
        default=(0.85, 1.25), description="the factor of one gain step, uniform"
    )
    spike_rate_per_30d: NonNegative = Field(
        default=0.0,
        description="bursts of interference per 30 days in which every vibration reading is "
        "spike_factor × the true value (about 1 a machine-month, U)",
    )
    spike_burst_min: tuple[Positive, Positive] = Field(
        default=(5.0, 40.0), description="duration of a spike burst, minutes, log-uniform"
    )
    spike_factor: tuple[Annotated[float, Field(ge=1.0)], Annotated[float, Field(ge=1.0)]] = Field(
        default=(3.0, 10.0), description="a spiked reading over the true one, uniform"
    )
    stuck_rate_per_30d: NonNegative = Field(
        default=0.0,
        description="spells per 30 days in which the sensor transmitter repeats its last "
        "readings (about 0.5 a machine-month, U)",
    )
    stuck_h: tuple[Positive, Positive] = Field(
        default=(1.0, 12.0), description="duration of a stuck spell, h, log-uniform"
    )
    dropout_rate_per_30d: NonNegative = Field(
        default=0.0,
        description="spells per 30 days in which the condition sensors send nothing "
        "(a flat battery, a lost radio link; about 1 a machine-month, U)",
    )
    dropout_h: tuple[Positive, Positive] = Field(
        default=(10.0 / 60.0, 6.0), description="duration of a dropout, h, log-uniform"
    )

    @field_validator(
        "pf_days",
        "initial_age",
        "disturbance_h",
        "disturbance_factor",
        "gain_step",
        "spike_burst_min",
        "spike_factor",
        "stuck_h",
        "dropout_h",
    )
    @classmethod
    def _pair_ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        return None if value is None else _ordered_pair(value, "range")


class MachineBase(_Model):
    """What every machine has: an id, the metrics it reports and how often it samples."""

    id: Id
    kind: str
    name: str = ""
    metrics: list[Metric] | None = Field(
        default=None, description="the metrics this machine reports; default by kind"
    )
    interval_s: Annotated[float, Field(ge=1.0, le=86_400.0)] = 10.0
    condition_interval_s: Annotated[float, Field(ge=1.0, le=86_400.0)] = 60.0
    phases: Literal[1, 3] = 1
    condition: Condition | None = None

    def available_metrics(self) -> tuple[str, ...]:
        """Every metric this kind of machine can report."""
        own = self._own_metrics()
        return own + tuple(sorted(CONDITION_METRICS)) if self.condition else own

    def default_metrics(self) -> tuple[str, ...]:
        """The metrics reported when the layout does not list them."""
        return self._default_metrics()

    def reported_metrics(self) -> tuple[str, ...]:
        """The metrics this machine reports."""
        return tuple(self.metrics) if self.metrics is not None else self.default_metrics()

    def _own_metrics(self) -> tuple[str, ...]:
        return (*ELECTRICAL_METRICS, "machine_state")

    def _default_metrics(self) -> tuple[str, ...]:
        base: tuple[str, ...] = ("active_power",)
        return base + (("vibration_rms", "bearing_temp") if self.condition else ())

    @model_validator(mode="after")
    def _metrics_known(self) -> MachineBase:
        if self.metrics is None:
            return self
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError(f"machine {self.id}: metrics are listed twice")
        unknown = [m for m in self.metrics if m not in self.available_metrics()]
        if unknown:
            hint = (
                " (vibration and temperatures need a `condition:` block)"
                if set(unknown) & CONDITION_METRICS
                else ""
            )
            raise ValueError(
                f"machine {self.id}: cannot report {unknown}{hint}; "
                f"it can report {list(self.available_metrics())}"
            )
        return self


class ProductionMachine(MachineBase):
    """A machine that follows the shifts, alternates running and idle, and makes units.

    ``drive`` sets the idle draw when ``idle_fraction`` is not given: a clutch motor
    spins whenever it is switched on (sizeable idle draw, U), a servo only while sewing.
    """

    kind: Literal["production"] = "production"
    drive: Literal["clutch", "servo", "direct"] = "direct"
    rated_power_w: Positive
    idle_fraction: Fraction | None = None
    idle_spins: bool | None = Field(default=None, description="motor turns while idle")
    load_range: tuple[Fraction, Fraction] = (0.6, 1.0)
    pf_running: Annotated[float, Field(gt=0.0, le=1.0)] = 0.82
    pf_idle: Annotated[float, Field(gt=0.0, le=1.0)] = 0.45
    power_noise: Fraction = 0.05
    mean_run_s: Positive = 120.0
    mean_idle_s: Positive = 60.0
    ideal_cycle_s: Positive = 30.0
    speed_range: tuple[Fraction, Fraction] = (0.75, 1.0)
    reject_rate: Fraction = 0.03
    production_interval_s: Annotated[float, Field(ge=1.0, le=86_400.0)] = 60.0
    stop_rate_per_h: NonNegative = Field(default=0.1, description="minor stops per running hour")
    mean_stop_s: Positive = 300.0
    off_at_break_prob: Fraction = 0.5
    left_on_prob: Fraction = Field(default=0.0, description="left idling until the next shift")
    switch_on_jitter_s: NonNegative = 600.0
    switch_off_jitter_s: NonNegative = 300.0
    startup_s: NonNegative = Field(default=0.0, description="warm-up after switch-on, no output")
    startup_power_fraction: Fraction = 1.0

    @field_validator("load_range", "speed_range")
    @classmethod
    def _range_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        return _ordered_pair(value, "range")

    def idle_power_fraction(self) -> float:
        """Idle draw as a fraction of rated power, from the drive when not given."""
        if self.idle_fraction is not None:
            return self.idle_fraction
        return {"clutch": 0.5, "servo": 0.01, "direct": 0.3}[self.drive]

    def spins_when_idle(self) -> bool:
        """Whether the motor turns (and wears, and vibrates) while idle."""
        if self.idle_spins is not None:
            return self.idle_spins
        return self.idle_power_fraction() >= 0.1

    def _own_metrics(self) -> tuple[str, ...]:
        return (*ELECTRICAL_METRICS, "machine_state", "units_good", "units_reject")

    def _default_metrics(self) -> tuple[str, ...]:
        return ("active_power", "units_good", "units_reject") + (
            ("vibration_rms", "bearing_temp") if self.condition else ()
        )


class Pasteuriser(ProductionMachine):
    """An HTST pasteuriser: heats up after switch-on, then holds product at ``hold_temp_c``."""

    kind: Literal["pasteuriser"] = "pasteuriser"  # type: ignore[assignment]
    hold_temp_c: float = 72.0
    startup_s: NonNegative = 1800.0
    startup_power_fraction: Fraction = 1.0

    def _own_metrics(self) -> tuple[str, ...]:
        return (*super()._own_metrics(), "product_temp")

    def _default_metrics(self) -> tuple[str, ...]:
        return ("active_power", "energy", "product_temp")


class Compressor(MachineBase):
    """A screw air compressor with load/unload control between two pressures.

    Unloaded it draws ``unloaded_fraction`` of full-load power (current ~15–25 % of
    full load, DOMAIN.md); after ``stop_after_unloaded_s`` unloaded the motor stops.
    Leaks (``demand_off``) keep it cycling through nights and Sundays.
    """

    kind: Literal["compressor"] = "compressor"
    rated_power_w: Positive
    unloaded_fraction: Fraction = 0.15
    pf_running: Annotated[float, Field(gt=0.0, le=1.0)] = 0.86
    pf_idle: Annotated[float, Field(gt=0.0, le=1.0)] = 0.6
    phases: Literal[1, 3] = 3
    load_bar: Positive = 6.5
    unload_bar: Positive = 7.5
    fill_s: Positive = Field(default=60.0, description="load to unload pressure at zero demand")
    stop_after_unloaded_s: Positive = 600.0
    demand_work: Annotated[float, Field(ge=0.0, le=1.5)] = 0.5
    demand_off: Annotated[float, Field(ge=0.0, le=1.5)] = 0.25
    demand_noise: Fraction = 0.1
    operating: Literal["always", "shift"] = "always"

    @model_validator(mode="after")
    def _band(self) -> Compressor:
        if self.load_bar >= self.unload_bar:
            raise ValueError(f"compressor {self.id}: load_bar must be below unload_bar")
        return self

    def _own_metrics(self) -> tuple[str, ...]:
        return (*ELECTRICAL_METRICS, "machine_state", "pressure")

    def _default_metrics(self) -> tuple[str, ...]:
        return ("active_power", "current", "pressure") + (
            tuple(sorted(CONDITION_METRICS)) if self.condition else ()
        )


class ColdRoom(MachineBase):
    """A cold room whose compressor cycles on a thermostat, ~16 h/day at ``ref_ambient_c``.

    Hotter air adds heat load (``load_per_k``, ~18–20 % from 27 to 32 °C) and takes
    capacity (``capacity_per_k``, ~2 % per 2.8 K); door openings in working hours warm
    the room.
    """

    kind: Literal["cold_room"] = "cold_room"
    rated_power_w: Positive
    fan_power_w: NonNegative = 300.0
    pf_running: Annotated[float, Field(gt=0.0, le=1.0)] = 0.84
    pf_idle: Annotated[float, Field(gt=0.0, le=1.0)] = 0.7
    phases: Literal[1, 3] = 3
    setpoint_c: float = 2.0
    band_k: Positive = 2.0
    duty_ref: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.62
    ref_ambient_c: float = 27.0
    load_per_k: NonNegative = 0.038
    capacity_per_k: NonNegative = 0.00714
    cycle_s: Positive = 1800.0
    door_openings_per_h: NonNegative = 6.0
    door_bump_k: NonNegative = 0.3

    def _own_metrics(self) -> tuple[str, ...]:
        return (*ELECTRICAL_METRICS, "machine_state", "room_temp")

    def _default_metrics(self) -> tuple[str, ...]:
        return ("active_power", "room_temp") + (
            ("vibration_rms", "bearing_temp") if self.condition else ()
        )


class Cycling(MachineBase):
    """Heating elements or pumps switched by thermostats (irons, boiler feed): a bank of
    ``elements`` each on with probability ``duty`` at any sample, above a steady base draw."""

    kind: Literal["cycling"] = "cycling"
    element_power_w: Positive
    elements: Annotated[int, Field(ge=1, le=64)] = 1
    base_power_w: NonNegative = 0.0
    duty: Fraction = 0.5
    duty_break: Fraction = 0.15
    pf_running: Annotated[float, Field(gt=0.0, le=1.0)] = 0.98
    pf_idle: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    operating: Literal["always", "shift"] = "shift"


class Meter(MachineBase):
    """The site's main incoming meter, downstream of the generator changeover.

    It measures every machine of the layout plus a base load for what is not modelled
    (lighting, fans, air conditioning and the machines not listed).
    """

    kind: Literal["meter"] = "meter"
    phases: Literal[1, 3] = 3
    base_load_work_w: NonNegative = 0.0
    base_load_break_w: NonNegative | None = None
    base_load_off_w: NonNegative = 0.0
    base_pf: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    energy_start_wh: NonNegative = 0.0

    def _own_metrics(self) -> tuple[str, ...]:
        return (
            "voltage",
            "current",
            "active_power",
            "energy",
            "power_factor",
            "frequency",
            "generator_on",
        )

    def _default_metrics(self) -> tuple[str, ...]:
        return self._own_metrics()

    @model_validator(mode="after")
    def _no_condition(self) -> Meter:
        if self.condition is not None:
            raise ValueError(f"meter {self.id} cannot have a condition block")
        return self


class AmbientSensor(MachineBase):
    """An air temperature sensor, indoors (factory floor) or outdoors."""

    kind: Literal["ambient"] = "ambient"
    interval_s: Annotated[float, Field(ge=1.0, le=86_400.0)] = 60.0
    location: Literal["indoor", "outdoor"] = "indoor"
    noise_k: NonNegative = 0.2

    def _own_metrics(self) -> tuple[str, ...]:
        return ("ambient_temp",)

    def _default_metrics(self) -> tuple[str, ...]:
        return ("ambient_temp",)

    @model_validator(mode="after")
    def _no_condition(self) -> AmbientSensor:
        if self.condition is not None:
            raise ValueError(f"ambient sensor {self.id} cannot have a condition block")
        return self


Machine = Annotated[
    ProductionMachine | Pasteuriser | Compressor | ColdRoom | Cycling | Meter | AmbientSensor,
    Field(discriminator="kind"),
]


class Intervention(_Model):
    """A known energy-saving measure from ``start`` on, so estimated savings can be checked.

    It changes power draw only: run the same layout and seed with and without it and
    every state, unit made and random draw stays the same, so the difference between
    the two runs' meters is the true saving. ``idle_power_factor`` scales the idle draw
    of production machines and the unloaded draw of compressors; ``running_power_factor``
    their running (loaded) draw, hence kWh per unit; ``base_load_factor`` the main
    meter's base load (the loads the layout does not model).
    """

    start: AwareDatetime
    machines: list[Id] | None = Field(
        default=None, description="production machines and compressors; default all of them"
    )
    idle_power_factor: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    running_power_factor: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0
    base_load_factor: Annotated[float, Field(ge=0.0, le=2.0)] = 1.0

    def applies_to(self, machine: MachineBase) -> bool:
        """Whether the measure changes this machine's draw."""
        if not isinstance(machine, ProductionMachine | Compressor):
            return False
        return self.machines is None or machine.id in self.machines


class Line(_Model):
    """A production line, or ``utilities`` for compressors, boilers and the main meter."""

    id: Id
    name: str = ""
    machines: list[Machine] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_machines(self) -> Line:
        ids = [m.id for m in self.machines]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"line {self.id}: machine ids {twice} are used twice")
        return self


class Layout(_Model):
    """A whole simulated site."""

    site: Id
    name: str = ""
    timezone: str = "Asia/Phnom_Penh"
    electrical: Electrical = Electrical()
    shifts: list[Shift] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)
    grid: GridModel = GridModel()
    generator: Generator | None = None
    climate: Climate = Climate()
    lines: list[Line] = Field(min_length=1)
    intervention: Intervention | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Layout:
        ids = [line.id for line in self.lines]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"line ids {twice} are used twice")
        meters = [m.id for _, m in self.machines() if isinstance(m, Meter)]
        if len(meters) > 1:
            raise ValueError(f"a layout has at most one main meter, found {meters}")
        if self.intervention is not None and self.intervention.machines is not None:
            targets = {
                m.id for _, m in self.machines() if isinstance(m, ProductionMachine | Compressor)
            }
            wrong = sorted(set(self.intervention.machines) - targets)
            if wrong:
                raise ValueError(
                    f"intervention: {wrong} are not production machines or compressors "
                    "of this layout"
                )
        return self

    def machines(self) -> Iterator[tuple[str, MachineBase]]:
        """Every machine with the id of its line, in layout order."""
        for line in self.lines:
            for machine in line.machines:
                yield line.id, machine

    def machine(self, line: str, machine: str) -> MachineBase:
        """One machine by line and machine id; KeyError if there is none."""
        for line_id, candidate in self.machines():
            if line_id == line and candidate.id == machine:
                return candidate
        raise KeyError(f"{line}/{machine}")

    def series(self) -> list[tuple[str, str, str]]:
        """Every (line, machine, metric) this layout reports."""
        return [
            (line, m.id, metric) for line, m in self.machines() for metric in m.reported_metrics()
        ]


def available_layouts() -> list[str]:
    """The names of the packaged layouts."""
    return sorted(path.stem for path in LAYOUT_DIR.glob("*.yaml"))


def parse_layout(document: Any, *, source: str = "layout") -> Layout:
    """Validate a layout already read from YAML (a mapping); ConfigError if it is wrong."""
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping at the top, got {type(document).__name__}")
    try:
        return Layout.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc, limit=5)}") from None


def load_layout(name_or_path: str | Path) -> Layout:
    """Load a packaged layout by name (``"garment"``) or a layout file by path."""
    text = str(name_or_path)
    looks_like_path = (
        isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml"))
    )
    path = Path(text) if looks_like_path else LAYOUT_DIR / f"{text}.yaml"
    if not path.is_file():
        if looks_like_path:
            raise ConfigError(f"layout file {path} does not exist")
        raise ConfigError(
            f"no packaged layout named {text!r}; choose one of {available_layouts()} "
            "or give the path of a YAML file"
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    layout = parse_layout(document, source=str(path))
    log.debug("loaded layout %s (%d lines) from %s", layout.site, len(layout.lines), path)
    return layout

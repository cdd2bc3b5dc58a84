"""Wear of rotating machines: lives that end in failure, and the vibration and heat that warn of it.

A life is drawn around the configured mean; its last stretch is the P–F interval of the
failure mode, during which severity rises slowly for weeks and then accelerates
(exponential in time). Vibration follows ISO 10816-1 zones; the bearing heats late,
as hot bearings are in their last 10–15 % of life (DOMAIN.md). One mode gives little
warning: a bearing that loses its lubricant (a failed seal, an empty lubricator) runs
hot and seizes within 1–4 days, showing mostly in its temperature.

What a plant's condition data make hard to read is simulated too, each from a random
stream of its own so that adding it changes nothing else:

- :class:`SensorDrift`: the vibration sensor's gain and the temperature sensors'
  offsets drift linearly from the start; only what the sensors report drifts.
- :class:`Disturbances`: benign events (a loose guard, an unbalanced load, a slapping
  belt) that raise vibration for minutes to hours and then go away by themselves.
- :class:`Intermittency`: early in the P–F interval a fault's vibration signature
  comes and goes in spells of hours; the share of time it shows grows until it always
  does.
- :class:`MaintenancePlan`: preventive maintenance at jittered intervals that renews
  the machine, cutting short a degradation in progress unless the service misses it.
- after a repair or maintenance the parts are re-mounted and the healthy vibration
  sits a few percent off where it was (:meth:`ConditionMonitor.renew`).
- :class:`SensorFaults`: faults of the sensors, not of the machine: a knocked
  vibration sensor whose gain steps for good, spike bursts, a transmitter stuck at its
  last readings, and dropouts with no readings at all.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from simulators.layout import Condition, FailureMode
from simulators.randomness import seeded
from simulators.timebase import MS_PER_DAY, MS_PER_H
from simulators.truth import SensorFaultKind

Streams = Callable[[str], random.Random]
"""A random generator of its own for each named part (``"drift"``, ``"disturbance"``, …)."""
DisturbanceHook = Callable[[int, int, float], None]
"""Told (start_ms, end_ms, factor) of each disturbance as it starts."""
SensorFaultHook = Callable[[SensorFaultKind, int, int | None, float | None], None]
"""Told (kind, start_ms, end_ms or None for good, gain step factor or None) of each
sensor fault as it starts."""

# ISO 10816-1 zone boundaries A/B, B/C, C/D in mm/s RMS (DOMAIN.md).
ISO_ZONES: Final[dict[str, tuple[float, float, float]]] = {
    "I": (0.71, 1.8, 4.5),
    "II": (1.12, 2.8, 7.1),
}
# Healthy running vibration, well inside zone B.
DEFAULT_BASELINE_MM_S: Final[dict[str, float]] = {"I": 0.9, "II": 1.5}
_FLOOR_MM_S = 0.05  # what the sensor reads on a machine at rest
_NEVER_MS: Final = 2**62
_DRIFT_SPAN_MS: Final = 180 * MS_PER_DAY  # drift figures are per 180 days
_MIN_GAIN: Final = 0.5  # a sensor whose gain had halved would be replaced
_MIN_SPELL_MS: Final = 60_000
_MS_PER_MIN: Final = 60_000


@dataclass(frozen=True, slots=True)
class FailureModeEffect:
    """How one failure mode announces itself.

    ``pf_days`` is the warning time visible in RMS velocity and temperature; ``vib_ratio``
    the vibration at failure over the zone C/D boundary; ``*_shape`` the steepness of
    the rise (higher: later and sharper); ``temp_rise_k`` the extra bearing heat at
    failure; ``peak_g`` the extra acceleration peak from impacts at failure.
    """

    pf_days: tuple[float, float]
    vib_ratio: float
    vib_shape: float
    temp_rise_k: float
    temp_shape: float
    peak_g: float


# P–F ranges from DOMAIN.md: a bearing defect shows in the velocity spectrum 1–4 weeks
# before failure; misalignment 1–3 months; belt wear 2–4 months; lubrication 3–12 months.
# A lost lubricant shows only once the bearing is hot, in its last 10–15 % of life: 1–4
# days here (U). It heats early in that short interval (low temp_shape) to ~35 K over
# its own level, towards the 100 °C shut-down, while the vibration at failure is a third
# of the C/D boundary: still zone B, a rise of a half or so over a healthy machine's.
FAILURE_MODES: Final[dict[FailureMode, FailureModeEffect]] = {
    "bearing": FailureModeEffect((7.0, 28.0), 1.3, 4.0, 20.0, 8.0, 3.0),
    "misalignment": FailureModeEffect((30.0, 90.0), 1.1, 2.5, 8.0, 3.0, 0.5),
    "lubrication": FailureModeEffect((90.0, 365.0), 0.8, 3.0, 30.0, 5.0, 0.8),
    "belt": FailureModeEffect((60.0, 120.0), 0.9, 3.0, 4.0, 3.0, 0.3),
    "lubricant_loss": FailureModeEffect((1.0, 4.0), 0.33, 5.0, 35.0, 2.0, 0.5),
}


def rise(fraction: float, shape: float) -> float:
    """Severity 0→1 over a P–F interval: slow at first, then accelerating."""
    if fraction <= 0.0:
        return 0.0
    return (math.exp(shape * fraction) - 1.0) / (math.exp(shape) - 1.0)


class Health:
    """One machine's current life: when degradation starts, when it fails, and how badly."""

    def __init__(self, config: Condition, rng: random.Random, start_ms: int) -> None:
        self._config = config
        self._rng = rng
        self.mode: FailureMode = "bearing"
        self.onset_ms = 0
        self.fail_ms = 0
        low, high = config.initial_age
        self.renew(start_ms, used_fraction=rng.uniform(low, high))

    def renew(self, now_ms: int, used_fraction: float = 0.0) -> None:
        """Start a new life at ``now_ms`` (after maintenance), optionally part-used already."""
        config, rng = self._config, self._rng
        life_ms = config.mean_life_days * MS_PER_DAY * max(0.2, rng.gauss(1.0, config.life_spread))
        self.mode = rng.choice(config.modes)
        low, high = config.pf_days or FAILURE_MODES[self.mode].pf_days
        pf_ms = min(rng.uniform(low, high) * MS_PER_DAY, 0.8 * life_ms)
        # A part-used life still leaves at least an hour, so nothing fails at the start.
        remaining_ms = max(float(MS_PER_H), life_ms * (1.0 - used_fraction))
        self.fail_ms = now_ms + int(remaining_ms)
        self.onset_ms = self.fail_ms - int(pf_ms)

    def severity(self, ts_ms: int) -> tuple[float, float]:
        """(vibration, temperature) severity at ``ts_ms``: 0 healthy, 1 at the failure time."""
        if ts_ms <= self.onset_ms:
            return 0.0, 0.0
        # Past the due time (a machine at rest cannot fail) severity keeps rising a little.
        fraction = min(1.2, (ts_ms - self.onset_ms) / (self.fail_ms - self.onset_ms))
        effect = FAILURE_MODES[self.mode]
        return rise(fraction, effect.vib_shape), rise(fraction, effect.temp_shape)

    def failure_due(self, ts_ms: int) -> bool:
        """Whether the machine fails now if it is turning."""
        return ts_ms >= self.fail_ms

    def repair_ms(self) -> int:
        """How long the repair of a failure takes."""
        hours = max(0.5, self._rng.gauss(self._config.repair_h, 0.3 * self._config.repair_h))
        return int(hours * MS_PER_H)


class SensorDrift:
    """Calibration drift of one machine's condition sensors, linear in time from ``start_ms``.

    Each sensor's rate is drawn once, uniformly within ± the configured drift per 180
    days: the vibration sensor's gain (a factor, never below 0.5) and the bearing and
    motor sensors' offsets (K).
    """

    def __init__(self, config: Condition, rng: random.Random, start_ms: int) -> None:
        self._start_ms = start_ms
        self.gain_per_ms = rng.uniform(-1.0, 1.0) * config.vibration_gain_drift / _DRIFT_SPAN_MS
        offset = config.temp_offset_drift_k / _DRIFT_SPAN_MS
        self.bearing_k_per_ms = rng.uniform(-1.0, 1.0) * offset
        self.motor_k_per_ms = rng.uniform(-1.0, 1.0) * offset

    def gain(self, ts_ms: int) -> float:
        """What the vibration sensor reports per unit of true vibration at ``ts_ms``."""
        return max(_MIN_GAIN, 1.0 + self.gain_per_ms * (ts_ms - self._start_ms))

    def bearing_offset_k(self, ts_ms: int) -> float:
        """What the bearing temperature sensor adds to the true temperature at ``ts_ms``."""
        return self.bearing_k_per_ms * (ts_ms - self._start_ms)

    def motor_offset_k(self, ts_ms: int) -> float:
        """What the motor temperature sensor adds to the true temperature at ``ts_ms``."""
        return self.motor_k_per_ms * (ts_ms - self._start_ms)


@dataclass(frozen=True, slots=True)
class Spell:
    """Something that holds from ``start_ms`` until ``end_ms``, with a ``factor`` (1.0: none)."""

    start_ms: int
    end_ms: int
    factor: float


class Spells:
    """Spells of one kind, never overlapping, drawn lazily as time advances.

    Gaps between them are exponential at ``rate_per_ms`` (a Poisson process), durations
    log-uniform within ``duration`` (in units of ``unit_ms``), factors uniform within
    ``factor`` (1.0 and nothing drawn when None). ``hook`` is told of each as it starts.
    """

    def __init__(
        self,
        rng: random.Random,
        rate_per_ms: float,
        duration: tuple[float, float],
        unit_ms: int,
        factor: tuple[float, float] | None,
        start_ms: int,
        hook: Callable[[Spell], None] | None = None,
    ) -> None:
        self._rng = rng
        self._rate_per_ms = rate_per_ms
        self._log_duration = (math.log(duration[0]), math.log(duration[1]))
        self._unit_ms = unit_ms
        self._factor = factor
        self._hook = hook
        self._current: Spell | None = None
        self._next = self._after(start_ms)

    def _after(self, ts_ms: int) -> Spell:
        rng = self._rng
        if self._rate_per_ms <= 0.0:
            return Spell(_NEVER_MS, _NEVER_MS, 1.0)
        start_ms = ts_ms + int(rng.expovariate(self._rate_per_ms))
        duration = math.exp(rng.uniform(*self._log_duration))
        factor = rng.uniform(*self._factor) if self._factor is not None else 1.0
        return Spell(start_ms, start_ms + int(duration * self._unit_ms), factor)

    def at(self, ts_ms: int) -> Spell | None:
        """The spell in progress at ``ts_ms``, None between spells; times must not decrease."""
        while self._next.start_ms <= ts_ms:
            spell = self._current = self._next
            if self._hook is not None:
                self._hook(spell)
            self._next = self._after(spell.end_ms)
        current = self._current
        return current if current is not None and ts_ms < current.end_ms else None


class Disturbances:
    """Benign disturbances of one machine, drawn lazily as time advances (never overlapping).

    Gaps between them are exponential at the configured rate, durations log-uniform in
    the configured range, factors uniform in theirs.
    """

    def __init__(
        self,
        config: Condition,
        rng: random.Random,
        start_ms: int,
        hook: DisturbanceHook | None = None,
    ) -> None:
        self._spells = Spells(
            rng,
            config.disturbance_rate_per_30d / (30 * MS_PER_DAY),
            config.disturbance_h,
            MS_PER_H,
            config.disturbance_factor,
            start_ms,
            None if hook is None else lambda s: hook(s.start_ms, s.end_ms, s.factor),
        )

    def factor(self, ts_ms: int) -> float:
        """The vibration multiplier at ``ts_ms`` (1.0 when undisturbed); times must not decrease."""
        spell = self._spells.at(ts_ms)
        return spell.factor if spell is not None else 1.0


class Intermittency:
    """Whether a developing fault's vibration signature shows at a time of its P–F interval.

    From the onset, spells shown and spells hidden alternate; a spell drawn at P–F
    fraction ``f`` shows with duty ``d(f) = d0 + (1 − d0)·f / steady_at``, shown spells
    lasting ``d·cycle`` and hidden ones ``(1 − d)·cycle`` on average (exponential).
    From ``steady_at`` on the signature always shows. Spells depend on time only, not
    on how often they are asked about.
    """

    def __init__(self, config: Condition, rng: random.Random) -> None:
        self._rng = rng
        self._duty0 = config.precursor_duty
        self._steady_at = config.precursor_steady_at
        self._cycle_ms = config.precursor_cycle_h * MS_PER_H
        self._onset_ms: int | None = None
        self._steady_ms = 0
        self._span_ms = 1
        self._spell_end_ms = 0
        self._shown = True

    def duty(self, fraction: float) -> float:
        """The share of time the signature shows at P–F ``fraction``."""
        if fraction >= self._steady_at:
            return 1.0
        return self._duty0 + (1.0 - self._duty0) * fraction / self._steady_at

    def shown(self, ts_ms: int, onset_ms: int, fail_ms: int) -> bool:
        """Whether the signature of the fault that began at ``onset_ms`` shows at ``ts_ms``."""
        if ts_ms < onset_ms:
            return True  # nothing to hide
        if onset_ms != self._onset_ms:  # a new life: its spells start at its onset
            self._onset_ms = onset_ms
            self._span_ms = max(1, fail_ms - onset_ms)
            self._steady_ms = onset_ms + int(self._steady_at * self._span_ms)
            self._spell_end_ms = onset_ms
            self._shown = self._rng.random() >= self.duty(0.0)  # flipped below
        if ts_ms >= self._steady_ms:
            return True
        while self._spell_end_ms <= ts_ms:
            start_ms = self._spell_end_ms
            duty = self.duty((start_ms - onset_ms) / self._span_ms)
            if duty >= 1.0:  # nothing left to hide before the steady point
                self._shown, self._spell_end_ms = True, self._steady_ms
                break
            self._shown = not self._shown
            mean_ms = (duty if self._shown else 1.0 - duty) * self._cycle_ms
            length_ms = self._rng.expovariate(1.0 / mean_ms) if mean_ms > 0.0 else 0.0
            self._spell_end_ms = start_ms + max(_MIN_SPELL_MS, int(length_ms))
        return self._shown


class MaintenancePlan:
    """Preventive maintenance of one machine: when the next is due, how long it takes, and
    whether it finds a fault in progress.

    The first falls at a uniformly random point of the first interval (the machine's
    last maintenance was before the start); each later one ``pm_interval_days ×
    U(1 ± pm_jitter)`` after the previous one was due or done. A fault in progress is
    found with chance ``pm_finds_fault``, drawn from ``inspection`` (a stream of its own).
    """

    def __init__(
        self,
        config: Condition,
        rng: random.Random,
        start_ms: int,
        inspection: random.Random | None = None,
    ) -> None:
        self._config = config
        self._rng = rng
        self._inspection = inspection or seeded("condition/inspection")
        days = config.pm_interval_days or 0.0
        self._interval_ms = days * MS_PER_DAY
        self.due_ms = start_ms + int(rng.random() * self._interval_ms) if days else _NEVER_MS

    @property
    def enabled(self) -> bool:
        """Whether the machine has preventive maintenance at all."""
        return self._interval_ms > 0.0

    def duration_ms(self) -> int:
        """How long the machine is stopped for maintenance."""
        return int(self._config.pm_duration_h * MS_PER_H)

    def reschedule(self, ts_ms: int) -> None:
        """Set the next maintenance one jittered interval after ``ts_ms``."""
        if not self.enabled:
            return
        jitter = self._config.pm_jitter
        self.due_ms = ts_ms + int(self._interval_ms * self._rng.uniform(1.0 - jitter, 1.0 + jitter))

    def finds_fault(self) -> bool:
        """Whether this maintenance finds (and fixes) the degradation in progress."""
        chance = self._config.pm_finds_fault
        return chance >= 1.0 or self._inspection.random() < chance


class GainSteps:
    """Unlogged knocks or re-mountings of a vibration sensor, each stepping its gain for good.

    Steps come as a Poisson process at ``gain_step_rate_per_year``, each a factor
    uniform within ``gain_step``; the gain is the product of the steps so far.
    """

    def __init__(
        self,
        config: Condition,
        rng: random.Random,
        start_ms: int,
        hook: Callable[[int, float], None] | None = None,
    ) -> None:
        self._config = config
        self._rng = rng
        self._hook = hook
        self._rate_per_ms = config.gain_step_rate_per_year / (365 * MS_PER_DAY)
        self._gain = 1.0
        self._next_ms, self._next_factor = self._after(start_ms)

    def _after(self, ts_ms: int) -> tuple[int, float]:
        if self._rate_per_ms <= 0.0:
            return _NEVER_MS, 1.0
        next_ms = ts_ms + int(self._rng.expovariate(self._rate_per_ms))
        return next_ms, self._rng.uniform(*self._config.gain_step)

    def gain(self, ts_ms: int) -> float:
        """What the sensor reports per unit of true vibration at ``ts_ms`` (1.0 before any step)."""
        while self._next_ms <= ts_ms:
            self._gain *= self._next_factor
            if self._hook is not None:
                self._hook(self._next_ms, self._next_factor)
            self._next_ms, self._next_factor = self._after(self._next_ms)
        return self._gain


class SensorFaults:
    """Faults of one machine's condition sensors that are not faults of the machine.

    - gain steps (:class:`GainSteps`): the vibration readings shift for good;
    - spike bursts: each vibration reading within a burst (minutes long) is the true
      one × U(``spike_factor``), drawn per reading;
    - stuck spells: the transmitter repeats its last readings of every condition metric;
    - dropouts: it sends nothing at all.

    Each kind draws from a stream of its own (``gain_step``, ``spike``, ``spike_level``,
    ``stuck``, ``dropout``) and every rate is 0 unless set, so the faults change nothing
    else. Call :meth:`advance` once per reading, then read :attr:`vibration_factor`,
    :attr:`stuck` and :attr:`dropped`.
    """

    def __init__(
        self,
        config: Condition,
        streams: Streams,
        start_ms: int,
        hook: SensorFaultHook | None = None,
    ) -> None:
        self._hook = hook
        self._spike_factor = config.spike_factor
        per_30d = 30 * MS_PER_DAY
        self._steps = GainSteps(config, streams("gain_step"), start_ms, self._stepped)
        self._spikes = Spells(
            streams("spike"),
            config.spike_rate_per_30d / per_30d,
            config.spike_burst_min,
            _MS_PER_MIN,
            None,
            start_ms,
            self._told("spike"),
        )
        self._spike_level = streams("spike_level")
        self._stuck = Spells(
            streams("stuck"),
            config.stuck_rate_per_30d / per_30d,
            config.stuck_h,
            MS_PER_H,
            None,
            start_ms,
            self._told("stuck"),
        )
        self._dropouts = Spells(
            streams("dropout"),
            config.dropout_rate_per_30d / per_30d,
            config.dropout_h,
            MS_PER_H,
            None,
            start_ms,
            self._told("dropout"),
        )
        self.vibration_factor = 1.0
        self.stuck = False
        self.dropped = False

    def _stepped(self, ts_ms: int, factor: float) -> None:
        if self._hook is not None:
            self._hook("gain_step", ts_ms, None, factor)

    def _told(self, kind: SensorFaultKind) -> Callable[[Spell], None]:
        def tell(spell: Spell) -> None:
            if self._hook is not None:
                self._hook(kind, spell.start_ms, spell.end_ms, None)

        return tell

    def advance(self, ts_ms: int) -> None:
        """Take the sensors to a reading at ``ts_ms``; times must not decrease."""
        gain = self._steps.gain(ts_ms)
        if self._spikes.at(ts_ms) is not None:
            gain *= self._spike_level.uniform(*self._spike_factor)
        self.vibration_factor = gain
        self.stuck = self._stuck.at(ts_ms) is not None
        self.dropped = self._dropouts.at(ts_ms) is not None


def _fixed_streams(part: str) -> random.Random:
    return seeded(f"condition/{part}")


class ConditionMonitor:
    """Vibration and temperatures of one rotating machine, with thermal lag and noise.

    Args:
        config: the machine's condition block.
        rng: the wear stream: lives and the physical noise of vibration.
        start_ms: when the simulation starts (sensors are calibrated then).
        ambient_c: the air around the machine at the start.
        streams: a generator of its own per part (``drift``, ``disturbance``,
            ``precursor``, ``remount`` and those of :class:`SensorFaults`); fixed ones
            if None.
        on_disturbance: told of each benign disturbance as it starts.
        on_sensor_fault: told of each sensor fault as it starts.
    """

    def __init__(
        self,
        config: Condition,
        rng: random.Random,
        start_ms: int,
        ambient_c: float,
        *,
        streams: Streams | None = None,
        on_disturbance: DisturbanceHook | None = None,
        on_sensor_fault: SensorFaultHook | None = None,
    ) -> None:
        streams = streams or _fixed_streams
        self.health = Health(config, rng, start_ms)
        self._rng = rng
        self._config = config
        self.zones = ISO_ZONES[config.iso_class]
        self.nominal_baseline_mm_s = (
            config.baseline_vibration_mm_s or DEFAULT_BASELINE_MM_S[config.iso_class]
        )
        self.baseline_mm_s = self.nominal_baseline_mm_s
        self.drift = SensorDrift(config, streams("drift"), start_ms)
        self.disturbances = Disturbances(
            config, streams("disturbance"), start_ms, hook=on_disturbance
        )
        self.intermittency = Intermittency(config, streams("precursor"))
        self._remount_rng = streams("remount")
        self.sensor_faults = SensorFaults(config, streams, start_ms, hook=on_sensor_fault)
        self.bearing_c = ambient_c
        self.motor_c = ambient_c
        self.vibration_mm_s = _FLOOR_MM_S
        self.peak_g = 0.0
        self._last_ms = start_ms

    def renew(self, ts_ms: int) -> None:
        """A new life from ``ts_ms`` after a repair or maintenance, with parts re-mounted."""
        self.health.renew(ts_ms)
        shift = self._config.remount_shift
        self.baseline_mm_s = self.nominal_baseline_mm_s * self._remount_rng.uniform(
            1.0 - shift, 1.0 + shift
        )

    def update(self, ts_ms: int, load: float, spinning: bool, ambient_c: float) -> None:
        """Advance to ``ts_ms`` for a machine at ``load`` (0–1) that is or is not turning."""
        rng, config, health = self._rng, self._config, self.health
        dt_s = max(0.0, (ts_ms - self._last_ms) / 1000.0)
        self._last_ms = ts_ms
        self.sensor_faults.advance(ts_ms)
        s_vib, s_temp = health.severity(ts_ms)
        if s_vib > 0.0 and not self.intermittency.shown(ts_ms, health.onset_ms, health.fail_ms):
            s_vib = 0.0  # the defect does not show in this spell; heat builds regardless
        disturbed = self.disturbances.factor(ts_ms)
        effect = FAILURE_MODES[health.mode]
        if spinning:
            failure_mm_s = self.zones[2] * effect.vib_ratio
            ratio = max(1.0, failure_mm_s / self.baseline_mm_s)
            healthy = self.baseline_mm_s * (0.6 + 0.4 * load) * disturbed
            # Misalignment and wear grow with load; a defect adds to the healthy level.
            self.vibration_mm_s = healthy * (1.0 + s_vib * (ratio - 1.0) * (0.5 + 0.5 * load))
            self.vibration_mm_s *= 1.0 + rng.gauss(0.0, 0.05)
            self.peak_g = 0.2 + 0.12 * self.vibration_mm_s + s_vib * effect.peak_g
            self.peak_g *= 1.0 + rng.gauss(0.0, 0.08)
        else:
            self.vibration_mm_s = _FLOOR_MM_S * (1.0 + abs(rng.gauss(0.0, 0.5)))
            self.peak_g = 0.02 * (1.0 + abs(rng.gauss(0.0, 0.5)))
        turning = 1.0 if spinning else 0.0
        bearing_target = (
            ambient_c
            + config.bearing_rise_k * (0.3 + 0.7 * load) * turning
            + s_temp * effect.temp_rise_k * turning
        )
        motor_target = ambient_c + config.motor_rise_k * (0.2 + 0.8 * load * load) * turning
        self.bearing_c += (bearing_target - self.bearing_c) * (1.0 - math.exp(-dt_s / 900.0))
        self.motor_c += (motor_target - self.motor_c) * (1.0 - math.exp(-dt_s / 1800.0))

    # -- what the sensors report (true values through drifting calibrations) --------
    # Stuck transmitters and dropouts are the machine's to apply: they hold or drop
    # whole readings, noise included.

    def reported_vibration_mm_s(self) -> float:
        """Vibration RMS as the drifting, maybe knocked or spiking sensor reports it now."""
        faults = self.sensor_faults.vibration_factor
        return self.vibration_mm_s * self.drift.gain(self._last_ms) * faults

    def reported_peak_g(self) -> float:
        """Acceleration peak as the same sensor reports it at the last update."""
        return self.peak_g * self.drift.gain(self._last_ms) * self.sensor_faults.vibration_factor

    def reported_bearing_c(self) -> float:
        """Bearing temperature through its drifting offset at the last update, before noise."""
        return self.bearing_c + self.drift.bearing_offset_k(self._last_ms)

    def reported_motor_c(self) -> float:
        """Motor temperature through its drifting offset at the last update, before noise."""
        return self.motor_c + self.drift.motor_offset_k(self._last_ms)

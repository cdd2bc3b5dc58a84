"""Wear of rotating machines: lives that end in failure, and the vibration and heat that warn of it.

A life is drawn around the configured mean; its last stretch is the P–F interval of the
failure mode, during which severity rises slowly for weeks and then accelerates
(exponential in time). Vibration follows ISO 10816-1 zones; the bearing heats late,
as hot bearings are in their last 10–15 % of life (DOMAIN.md).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from simulators.layout import Condition
from simulators.timebase import MS_PER_DAY, MS_PER_H

# ISO 10816-1 zone boundaries A/B, B/C, C/D in mm/s RMS (DOMAIN.md).
ISO_ZONES: Final[dict[str, tuple[float, float, float]]] = {
    "I": (0.71, 1.8, 4.5),
    "II": (1.12, 2.8, 7.1),
}
# Healthy running vibration, well inside zone B.
DEFAULT_BASELINE_MM_S: Final[dict[str, float]] = {"I": 0.9, "II": 1.5}
_FLOOR_MM_S = 0.05  # what the sensor reads on a machine at rest


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
FAILURE_MODES: Final[dict[str, FailureModeEffect]] = {
    "bearing": FailureModeEffect((7.0, 28.0), 1.3, 4.0, 20.0, 8.0, 3.0),
    "misalignment": FailureModeEffect((30.0, 90.0), 1.1, 2.5, 8.0, 3.0, 0.5),
    "lubrication": FailureModeEffect((90.0, 365.0), 0.8, 3.0, 30.0, 5.0, 0.8),
    "belt": FailureModeEffect((60.0, 120.0), 0.9, 3.0, 4.0, 3.0, 0.3),
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
        self.mode = ""
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


class ConditionMonitor:
    """Vibration and temperatures of one rotating machine, with thermal lag and noise."""

    def __init__(
        self, config: Condition, rng: random.Random, start_ms: int, ambient_c: float
    ) -> None:
        self.health = Health(config, rng, start_ms)
        self._rng = rng
        self._config = config
        self.zones = ISO_ZONES[config.iso_class]
        self.baseline_mm_s = (
            config.baseline_vibration_mm_s or DEFAULT_BASELINE_MM_S[config.iso_class]
        )
        self.bearing_c = ambient_c
        self.motor_c = ambient_c
        self.vibration_mm_s = _FLOOR_MM_S
        self.peak_g = 0.0
        self._last_ms = start_ms

    def update(self, ts_ms: int, load: float, spinning: bool, ambient_c: float) -> None:
        """Advance to ``ts_ms`` for a machine at ``load`` (0–1) that is or is not turning."""
        rng, config = self._rng, self._config
        dt_s = max(0.0, (ts_ms - self._last_ms) / 1000.0)
        self._last_ms = ts_ms
        s_vib, s_temp = self.health.severity(ts_ms)
        effect = FAILURE_MODES[self.health.mode]
        if spinning:
            failure_mm_s = self.zones[2] * effect.vib_ratio
            ratio = max(1.0, failure_mm_s / self.baseline_mm_s)
            healthy = self.baseline_mm_s * (0.6 + 0.4 * load)
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

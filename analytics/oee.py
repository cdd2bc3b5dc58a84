"""Overall equipment effectiveness and the six big losses, per machine and shift.

The classic decomposition: planned time (the shift less its planned breaks) loses
breakdowns (fault time) and setups and adjustments (idle stops of at least
``setup_min_s``) to become operating time; availability = operating / planned.
Operating time loses minor stops (shorter idle stops) and reduced speed (running
slower than the ideal cycle); performance = ideal cycle × units / operating time.
Quality = good / total units, its losses split into start-up rejects (made within
``startup_s`` of the first run of the shift) and production defects.
OEE = availability × performance × quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.series import MS_PER_S, FloatArray, Int64Array
from analytics.states import IDLE, RUNNING

FAULT = 3


@dataclass(frozen=True)
class Oee:
    """OEE of one machine over one period, with its six big losses (seconds or units)."""

    planned_s: float
    operating_s: float
    total_units: float
    good_units: float
    ideal_cycle_s: float
    availability: float
    performance: float
    quality: float
    oee: float
    breakdown_s: float
    setup_s: float
    minor_stop_s: float
    reduced_speed_s: float
    startup_reject_units: float
    defect_units: float


def oee(
    planned_s: float,
    operating_s: float,
    ideal_cycle_s: float,
    total_units: float,
    good_units: float,
) -> tuple[float, float, float, float]:
    """Availability, performance, quality and OEE, as fractions (0 where undefined)."""
    availability = operating_s / planned_s if planned_s > 0 else 0.0
    performance = ideal_cycle_s * total_units / operating_s if operating_s > 0 else 0.0
    quality = good_units / total_units if total_units > 0 else 0.0
    return availability, performance, quality, availability * performance * quality


def _overlap_s(starts_ms: Int64Array, ends_ms: Int64Array, lo: int, hi: int) -> FloatArray:
    """Each interval's seconds inside [lo, hi)."""
    seconds = (np.minimum(ends_ms, hi) - np.maximum(starts_ms, lo)).clip(min=0) / MS_PER_S
    return seconds.astype(np.float64)


def machine_oee(
    *,
    period: tuple[int, int],
    breaks: list[tuple[int, int]],
    state_starts_ms: Int64Array,
    state_ends_ms: Int64Array,
    states: Int64Array,
    good_ts_ms: Int64Array,
    good: FloatArray,
    reject_ts_ms: Int64Array,
    rejects: FloatArray,
    ideal_cycle_s: float,
    setup_min_s: float = 600.0,
    startup_s: float = 600.0,
) -> Oee:
    """OEE and the six big losses of one machine over one shift.

    Args:
        period: the shift, [start, end) in epoch ms.
        breaks: planned stops inside it (lunch), excluded from planned time.
        state_starts_ms, state_ends_ms, states: the machine's state intervals
            (0 off, 1 idle, 2 running, 3 fault).
        good_ts_ms, good, reject_ts_ms, rejects: unit counts and when they were counted.
        ideal_cycle_s: the machine's ideal seconds per unit.
        setup_min_s: idle stops at least this long count as setups and adjustments.
        startup_s: rejects this soon after the shift's first run are start-up rejects.
    """
    lo, hi = period
    seconds = _overlap_s(state_starts_ms, state_ends_ms, lo, hi)
    in_break = np.zeros(states.size, dtype=np.float64)
    for b_lo, b_hi in breaks:
        in_break += _overlap_s(state_starts_ms, state_ends_ms, max(lo, b_lo), min(hi, b_hi))
    planned_s = (hi - lo) / MS_PER_S - sum((b - a) / MS_PER_S for a, b in breaks)
    working = seconds - in_break
    breakdown_s = float(working[states == FAULT].sum())
    idle = (states == IDLE) & (working > 0)
    # Off during planned time is a stop too (the machine was switched off when it should run).
    stopped = idle | ((states == 0) & (working > 0))
    long_stop = stopped & (working >= setup_min_s)
    setup_s = float(working[long_stop].sum())
    minor_stop_s = float(working[stopped & ~long_stop].sum())
    operating_s = max(0.0, planned_s - breakdown_s - setup_s)

    in_shift = (good_ts_ms >= lo) & (good_ts_ms < hi)
    good_units = float(good[in_shift].sum())
    rejected = (reject_ts_ms >= lo) & (reject_ts_ms < hi)
    running = np.flatnonzero((states == RUNNING) & (state_ends_ms > lo) & (state_starts_ms < hi))
    first_run_ms = max(lo, int(state_starts_ms[running[0]])) if running.size else hi
    early = rejected & (reject_ts_ms < first_run_ms + startup_s * MS_PER_S)
    startup_rejects = float(rejects[early].sum())
    defect_units = float(rejects[rejected & ~early].sum())
    total_units = good_units + startup_rejects + defect_units

    availability, performance, quality, overall = oee(
        planned_s, operating_s, ideal_cycle_s, total_units, good_units
    )
    net_operating_s = operating_s - minor_stop_s
    reduced_speed_s = max(0.0, net_operating_s - ideal_cycle_s * total_units)
    return Oee(
        planned_s=planned_s,
        operating_s=operating_s,
        total_units=total_units,
        good_units=good_units,
        ideal_cycle_s=ideal_cycle_s,
        availability=availability,
        performance=performance,
        quality=quality,
        oee=overall,
        breakdown_s=breakdown_s,
        setup_s=setup_s,
        minor_stop_s=minor_stop_s,
        reduced_speed_s=reduced_speed_s,
        startup_reject_units=startup_rejects,
        defect_units=defect_units,
    )

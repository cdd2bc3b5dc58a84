"""Condition signals as hard to read as a plant's: drift, disturbances, fleeting signs, changeovers.

Each effect draws from a random stream of its own, so switching it on changes the
condition readings and nothing else.
"""

from __future__ import annotations

import statistics
import threading
from collections import defaultdict
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from edge.sources import Sample
from simulators.degradation import (
    ConditionMonitor,
    Disturbances,
    Intermittency,
    SensorDrift,
)
from simulators.hourly import with_sample_interval
from simulators.layout import CONDITION_METRICS, Condition, Layout
from simulators.machines import LoadRegimes
from simulators.randomness import seeded
from simulators.source import SimulatorSource
from simulators.timebase import MS_PER_DAY, MS_PER_H, to_ms
from simulators.truth import Truth
from tests.simulators.helpers import MONDAY, build, layout_document, run, series

HEALTHY = {"mean_life_days": 10_000.0, "life_spread": 0.0, "initial_age": [0.0, 0.0]}
PLAIN = {
    "vibration_gain_drift": 0.0,
    "temp_offset_drift_k": 0.0,
    "disturbance_rate_per_30d": 0.0,
    "precursor_duty": 1.0,
    "remount_shift": 0.0,
}


def _tiny(condition: dict[str, Any], sew: dict[str, Any] | None = None) -> Layout:
    """The tiny site without grid events; the compressor's condition block replaced."""
    document = layout_document("tiny")
    document["grid"] = {"outage_rate_per_day": 0, "sag_rate_per_day": 0}
    machines = document["lines"][0]["machines"]
    machines[1]["condition"] = {"iso_class": "I", **condition}
    machines[1]["metrics"] = [*machines[1]["metrics"], "vibration_peak", "motor_temp"]
    if sew is not None:
        machines[0]["condition"] = sew
    return build(document)


def _split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    condition = [s for s in samples if s.metric in CONDITION_METRICS]
    others = [s for s in samples if s.metric not in CONDITION_METRICS]
    return condition, others


def _monitor(**overrides: Any) -> ConditionMonitor:
    config = Condition.model_validate({**HEALTHY, **PLAIN, **overrides})
    return ConditionMonitor(config, seeded("wear"), 0, 30.0, streams=lambda p: seeded(f"s/{p}"))


# -------------------------------------------------------------- separate streams


def test_the_realism_changes_the_condition_readings_and_nothing_else() -> None:
    with_all = _tiny({**HEALTHY, "disturbance_rate_per_30d": 30.0})
    without = _tiny({**HEALTHY, **PLAIN})
    samples_with, truth_with = run(with_all, seed=3, days=2.0)
    samples_without, truth_without = run(without, seed=3, days=2.0)
    condition_with, others_with = _split(samples_with)
    condition_without, others_without = _split(samples_without)
    assert others_with == others_without  # power, energy, pressure, states, meter
    assert truth_with.states == truth_without.states
    assert [s.value for s in condition_with] != [s.value for s in condition_without]
    assert [(s.ts, s.metric) for s in condition_with] == [
        (s.ts, s.metric) for s in condition_without
    ]
    assert truth_with.disturbances and not truth_without.disturbances


# ----------------------------------------------------------------------- drift


def test_drift_is_linear_in_time_within_its_bound_and_either_sign() -> None:
    config = Condition.model_validate({"vibration_gain_drift": 0.04, "temp_offset_drift_k": 1.5})
    six_months = 180 * MS_PER_DAY
    gains, offsets = [], []
    for sensor in range(200):
        drift = SensorDrift(config, seeded(f"drift/{sensor}"), 1_000)
        assert drift.gain(1_000) == 1.0 and drift.bearing_offset_k(1_000) == 0.0
        change = drift.gain(1_000 + six_months) - 1.0
        assert drift.gain(1_000 + six_months // 2) - 1.0 == pytest.approx(change / 2)
        gains.append(change)
        offsets.append(drift.bearing_offset_k(1_000 + six_months))
        assert abs(drift.motor_offset_k(1_000 + six_months)) <= 1.5
    assert max(abs(g) for g in gains) <= 0.04 and max(abs(o) for o in offsets) <= 1.5
    assert min(gains) < -0.03 and max(gains) > 0.03  # both signs, near the bound
    assert min(offsets) < -1.0 and max(offsets) > 1.0


def test_drift_changes_what_the_sensors_report_not_the_machine() -> None:
    steady = _monitor()
    drifting = _monitor(vibration_gain_drift=0.04, temp_offset_drift_k=1.5)
    for minute in range(1, 120 * 24 * 6):  # 120 days at 10-minute steps
        ts_ms = minute * 600_000
        steady.update(ts_ms, 0.8, True, 30.0)
        drifting.update(ts_ms, 0.8, True, 30.0)
    assert drifting.vibration_mm_s == steady.vibration_mm_s
    assert drifting.bearing_c == steady.bearing_c
    assert steady.reported_vibration_mm_s() == steady.vibration_mm_s
    assert steady.reported_bearing_c() == steady.bearing_c
    gain = drifting.drift.gain(ts_ms)
    assert drifting.reported_vibration_mm_s() == pytest.approx(drifting.vibration_mm_s * gain)
    assert drifting.reported_peak_g() == pytest.approx(drifting.peak_g * gain)
    assert 0.0 < abs(gain - 1.0) <= 0.04 * 120 / 180
    offset = drifting.reported_bearing_c() - drifting.bearing_c
    assert 0.0 < abs(offset) <= 1.5 * 120 / 180
    assert drifting.reported_motor_c() != drifting.motor_c


# ---------------------------------------------------------------- disturbances


def test_disturbances_come_at_their_rate_with_their_durations_and_factors() -> None:
    config = Condition()  # 2 per 30 days, 5 min to 3 h, × 1.3-2.2
    seen: list[tuple[int, int, float]] = []
    disturbances = Disturbances(config, seeded("disturbance"), 0, hook=lambda *e: seen.append(e))
    factors = []
    for step in range(3000 * 24 * 6):  # 3000 days at 10-minute steps
        factors.append(disturbances.factor(step * 600_000))
    # 200 expected; a Poisson count is within ±4 standard deviations.
    assert 143 <= len(seen) <= 257
    for (_, end, _), (next_start, _, _) in pairwise(seen):
        assert end <= next_start  # never overlapping
    for start, end, factor in seen:
        assert 5 * 60_000 <= end - start <= 3 * MS_PER_H
        assert 1.3 <= factor <= 2.2
    durations_h = sorted((end - start) / MS_PER_H for start, end, _ in seen)
    assert durations_h[len(durations_h) // 2] < 1.0  # log-uniform: mostly short
    expected = [1.0] * len(factors)
    for start, end, factor in seen:
        for step in range(-(-start // 600_000), -(-end // 600_000)):
            expected[step] = factor
    assert factors == expected


def test_a_disturbance_raises_the_vibration_and_is_recorded_as_truth() -> None:
    layout = with_sample_interval(
        _tiny({**HEALTHY, **PLAIN, "disturbance_rate_per_30d": 60.0}), 60.0
    )
    samples, truth = run(layout, seed=2, days=3.0)
    assert len(truth.disturbances) >= 3
    assert {(d.line, d.machine) for d in truth.disturbances} == {("line-1", "comp-01")}
    vibration = [(ts, v) for ts, v in series(samples, "comp-01", "vibration_rms") if v > 0.2]

    def disturbed(ts: Any) -> float | None:
        return next((d.factor for d in truth.disturbances if d.start <= ts < d.end), None)

    ratios = defaultdict(list)
    calm = [v for ts, v in vibration if disturbed(ts) is None]
    for ts, v in vibration:
        factor = disturbed(ts)
        if factor is not None:
            ratios[factor].append(v)
    assert ratios
    # The compressor's vibration varies with its load; a disturbance stands well above.
    for factor, values in ratios.items():
        assert statistics.median(values) > 1.15 * statistics.median(calm)
        assert statistics.median(values) == pytest.approx(factor * statistics.median(calm), rel=0.3)


# ------------------------------------------------------------ intermittent signs


def test_a_fault_shows_in_spells_early_and_always_from_the_steady_point() -> None:
    config = Condition()  # 30 % at the onset, always from 60 % of the P–F interval
    span_ms = 100 * MS_PER_DAY
    signs = Intermittency(config, seeded("precursor"))
    steps = range(1, span_ms, 600_000)
    shown = [signs.shown(ts_ms, 0, span_ms) for ts_ms in steps]
    first_tenth = shown[: len(shown) // 10]
    assert 0.2 <= sum(first_tenth) / len(first_tenth) <= 0.5
    assert all(shown[int(0.6 * len(shown)) + 1 :])
    assert not all(shown[: int(0.6 * len(shown))])
    # Spells of hours: the early part flips roughly once per spell of ~12 h cycles.
    early = shown[: int(0.3 * len(shown))]
    flips = sum(1 for a, b in pairwise(early) if a != b)
    assert 30 * 2 / 4 <= flips <= 30 * 2 * 2  # 30 days of 12-hour cycles, 2 flips each
    assert signs.duty(0.0) == pytest.approx(0.3) and signs.duty(0.3) == pytest.approx(0.65)
    assert signs.duty(0.6) == 1.0


def test_spells_depend_on_time_not_on_how_often_they_are_asked() -> None:
    config = Condition()
    span_ms = 20 * MS_PER_DAY
    often = Intermittency(config, seeded("precursor"))
    rarely = Intermittency(config, seeded("precursor"))
    by_minute = {ts: often.shown(ts, 5_000, 5_000 + span_ms) for ts in range(0, span_ms, 60_000)}
    for ts in range(0, span_ms, 3_600_000):
        assert rarely.shown(ts, 5_000, 5_000 + span_ms) == by_minute[ts]


def test_a_hidden_spell_leaves_the_vibration_at_its_healthy_level() -> None:
    visible = _monitor(precursor_duty=1.0, mean_life_days=20.0, pf_days=[10.0, 10.0])
    spells = _monitor(precursor_duty=0.3, mean_life_days=20.0, pf_days=[10.0, 10.0])
    onset_ms = visible.health.onset_ms
    assert onset_ms == spells.health.onset_ms == 10 * MS_PER_DAY
    hidden = same = 0
    for step in range(1, 6 * 24 * 6):  # the first 60 % of the P–F interval
        ts_ms = onset_ms + step * 600_000
        visible.update(ts_ms, 1.0, True, 30.0)
        spells.update(ts_ms, 1.0, True, 30.0)
        if spells.intermittency.shown(ts_ms, onset_ms, spells.health.fail_ms):
            assert spells.vibration_mm_s == visible.vibration_mm_s
            same += 1
        else:
            assert spells.vibration_mm_s < visible.vibration_mm_s
            hidden += 1
    assert hidden > 100 and same > 100


# ---------------------------------------------------------------- re-mounting


def test_renewal_remounts_the_parts_within_the_configured_shift() -> None:
    monitor = _monitor(remount_shift=0.08)
    nominal = monitor.nominal_baseline_mm_s
    baselines = []
    for renewal in range(50):
        monitor.renew(renewal * MS_PER_DAY)
        baselines.append(monitor.baseline_mm_s / nominal)
    assert all(0.92 <= b <= 1.08 for b in baselines)
    assert min(baselines) < 0.95 and max(baselines) > 1.05
    fixed = _monitor(remount_shift=0.0)
    fixed.renew(MS_PER_DAY)
    assert fixed.baseline_mm_s == fixed.nominal_baseline_mm_s


# ------------------------------------------------------------------ changeovers


def test_regimes_change_every_few_days_and_keep_the_load_in_range() -> None:
    regimes = LoadRegimes(4.0, 0.5, seeded("load"), 0)
    positions = [regimes.at(hour * MS_PER_H) for hour in range(100 * 24)]
    changes = sum(1 for a, b in pairwise(positions) if a != b)
    assert 15 <= changes <= 40  # 25 expected: lengths 4 × U(0.5, 1.5) days
    assert all(-1.0 <= p <= 1.0 for p in positions)
    regimes = LoadRegimes(4.0, 0.5, seeded("load"), 0)
    for hour in range(100 * 24):
        for value in (0.6, 0.8, 1.0):
            assert 0.6 <= regimes.within(hour * MS_PER_H, value, 0.6, 1.0) <= 1.0
    # At position +1 the whole draw sits in the upper half of the range.
    regimes = LoadRegimes(100_000.0, 0.5, seeded("load"), 0)  # one regime for good
    regimes.position = 1.0
    assert regimes.within(0, 0.6, 0.6, 1.0) == pytest.approx(0.8)
    assert regimes.within(0, 1.0, 0.6, 1.0) == pytest.approx(1.0)


def test_changeovers_move_a_production_machines_load_and_keep_its_states() -> None:
    sew = {**HEALTHY, **PLAIN}
    regimes = {**sew, "load_regime_days": 1.0, "load_regime_shift": 0.8}
    plain_run = with_sample_interval(_tiny(HEALTHY, sew={**sew}), 60.0)
    regime_run = with_sample_interval(_tiny(HEALTHY, sew=regimes), 60.0)
    fixed_samples, fixed_truth = run(plain_run, seed=5, days=12.0)
    moved_samples, moved_truth = run(regime_run, seed=5, days=12.0)
    assert fixed_truth.states_of("line-1", "sew-01") == moved_truth.states_of("line-1", "sew-01")

    def daily_running_power(samples: list[Sample]) -> list[float]:
        days: dict[int, list[float]] = defaultdict(list)
        for ts, power in series(samples, "sew-01", "active_power"):
            if power > 160.0:  # running, not idling (idle draws half of 250 W)
                days[(to_ms(ts) - to_ms(MONDAY)) // MS_PER_DAY].append(power)
        return [statistics.median(v) for v in days.values() if len(v) > 50]

    fixed = daily_running_power(fixed_samples)
    moved = daily_running_power(moved_samples)
    assert len(fixed) >= 8 and len(moved) >= 8
    assert statistics.pstdev(moved) > 2.0 * statistics.pstdev(fixed)


def test_the_monitor_streams_are_the_machines_own() -> None:
    layout = _tiny({**HEALTHY, "disturbance_rate_per_30d": 30.0})
    first = SimulatorSource(layout, seed=9, start=MONDAY, days=1.0, truth=Truth("tiny"))
    again = SimulatorSource(layout, seed=9, start=MONDAY, days=1.0, truth=Truth("tiny"))
    assert list(first.samples(threading.Event())) == list(again.samples(threading.Event()))
    assert first.truth.disturbances == again.truth.disturbances
    assert all(d.start < MONDAY + timedelta(days=1) for d in first.truth.disturbances)

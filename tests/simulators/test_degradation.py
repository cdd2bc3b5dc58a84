"""Wear: lives end in failure within the horizon, warn beforehand, and renew after repair."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta
from itertools import pairwise

import pytest

from edge.sources import Sample
from simulators.degradation import ISO_ZONES, ConditionMonitor, Health, rise
from simulators.layout import Condition
from simulators.timebase import MS_PER_DAY
from simulators.truth import Truth
from tests.simulators.helpers import MONDAY, build, layout_document, run, series

SHORT_LIFE = {
    "iso_class": "I",
    "mean_life_days": 2.0,
    "life_spread": 0.0,
    "pf_days": [0.5, 1.0],
    "initial_age": [0.0, 0.0],
    "repair_h": 2.0,
    "modes": ["bearing"],
}


@pytest.fixture(scope="module")
def worn_out() -> tuple[list[Sample], Truth]:
    document = layout_document("tiny")
    document["grid"] = {"outage_rate_per_day": 0, "sag_rate_per_day": 0}
    document["lines"][0]["machines"][1]["condition"] = SHORT_LIFE
    return run(build(document), seed=1, days=7.0)


def test_iso_10816_zone_boundaries() -> None:
    assert ISO_ZONES["I"] == (0.71, 1.8, 4.5)
    assert ISO_ZONES["II"] == (1.12, 2.8, 7.1)


def test_severity_rises_slowly_then_accelerates() -> None:
    assert rise(0.0, 4.0) == 0.0 and rise(1.0, 4.0) == pytest.approx(1.0)
    halves = [rise(x, 4.0) for x in (0.25, 0.5, 0.75, 1.0)]
    steps = [b - a for a, b in zip([0.0, *halves], halves, strict=False)]
    assert steps == sorted(steps)  # each quarter adds more than the last
    assert rise(0.5, 4.0) < 0.15


def test_a_new_life_fails_after_its_length_and_warns_for_its_pf_interval() -> None:
    health = Health(Condition.model_validate(SHORT_LIFE), random.Random(1), 0)
    assert health.fail_ms == 2 * MS_PER_DAY
    assert 0.5 * MS_PER_DAY <= health.fail_ms - health.onset_ms <= 1.0 * MS_PER_DAY
    assert health.severity(health.onset_ms) == (0.0, 0.0)
    assert health.severity(health.fail_ms) == pytest.approx((1.0, 1.0))
    assert not health.failure_due(health.fail_ms - 1) and health.failure_due(health.fail_ms)


def test_the_machine_fails_within_the_horizon_and_renews_after_repair(
    worn_out: tuple[list[Sample], Truth],
) -> None:
    _, truth = worn_out
    failures = truth.failures
    # Lives of exactly 2 days, each followed by a repair of hours: failures near day 2, 4 and 6.
    assert len(failures) == 3
    first = failures[0]
    assert (first.line, first.machine, first.kind) == ("line-1", "comp-01", "bearing")
    # The compressor is always turning, so it fails at the first sample after 2 days.
    assert MONDAY + timedelta(days=2) <= first.failed_at < MONDAY + timedelta(days=2, seconds=30)
    for failure in failures:
        assert (
            timedelta(days=0.5)
            <= failure.failed_at - failure.degradation_start
            <= timedelta(days=1)
        )
        assert failure.repaired_at > failure.failed_at
        assert truth.state_at("line-1", "comp-01", failure.failed_at) == "fault"
        assert (
            truth.state_at("line-1", "comp-01", failure.repaired_at - timedelta(seconds=1))
            == "fault"
        )
        assert (
            truth.state_at("line-1", "comp-01", failure.repaired_at + timedelta(seconds=60))
            != "fault"
        )
    for earlier, later in pairwise(failures):
        # Maintenance renews the machine: the next life starts at the repair.
        assert later.failed_at - earlier.repaired_at >= timedelta(days=2)


def test_vibration_climbs_into_the_alarm_zones_before_failure_and_drops_after_repair(
    worn_out: tuple[list[Sample], Truth],
) -> None:
    samples, truth = worn_out
    vibration = series(samples, "comp-01", "vibration_rms")
    healthy = [v for ts, v in vibration if ts < MONDAY + timedelta(hours=12) and v > 0.2]
    for failure in truth.failures:
        before = [
            v
            for ts, v in vibration
            if failure.failed_at - timedelta(hours=1) <= ts < failure.failed_at
        ]
        after = [
            v
            for ts, v in vibration
            if failure.repaired_at <= ts < failure.repaired_at + timedelta(hours=6)
        ]
        assert max(before) > ISO_ZONES["I"][1]  # past B/C: unsatisfactory
        assert max(before) > 2 * statistics.median(healthy)
        if after:
            assert max(after) < ISO_ZONES["I"][1]
    during = [
        v for ts, v in vibration if any(f.failed_at < ts < f.repaired_at for f in truth.failures)
    ]
    assert during and max(during) < 0.2  # at rest while it is repaired


def test_bearing_temperature_settles_at_ambient_plus_its_rise_and_heats_with_wear() -> None:
    config = Condition.model_validate({**SHORT_LIFE, "bearing_rise_k": 20.0})
    monitor = ConditionMonitor(config, random.Random(1), 0, ambient_c=30.0)
    for minute in range(1, 6 * 60):  # six healthy hours at full load
        monitor.update(minute * 60_000, load=1.0, spinning=True, ambient_c=30.0)
    assert monitor.bearing_c == pytest.approx(50.0, abs=0.1)
    fail_ms = monitor.health.fail_ms
    monitor.update(fail_ms - 3 * 3_600_000, load=1.0, spinning=True, ambient_c=30.0)
    for minute in range(180):
        monitor.update(fail_ms - 3 * 3_600_000 + minute * 60_000, 1.0, True, 30.0)
    assert monitor.bearing_c > 50.0 + 10.0  # hot bearing near the end of its life
    assert monitor.vibration_mm_s > ISO_ZONES["I"][2] * 0.9


def test_wear_is_optional_per_machine() -> None:
    samples, truth = run("tiny", seed=1, days=0.5)
    assert truth.failures == []
    assert series(samples, "sew-01", "vibration_rms") == []


def test_a_lost_lubricant_warns_for_days_mostly_in_the_bearing_heat() -> None:
    config = Condition.model_validate(
        {
            "iso_class": "I",
            "baseline_vibration_mm_s": 0.9,
            "bearing_rise_k": 20.0,
            "mean_life_days": 20.0,
            "life_spread": 0.0,
            "initial_age": [0.0, 0.0],
            "modes": ["lubricant_loss"],
            "precursor_duty": 1.0,  # always shows: only the size of the signs is tested
            "vibration_gain_drift": 0.0,
            "temp_offset_drift_k": 0.0,
            "disturbance_rate_per_30d": 0.0,
        }
    )
    intervals = []
    for life in range(50):
        health = Health(config, random.Random(life), 0)
        assert health.mode == "lubricant_loss"
        intervals.append((health.fail_ms - health.onset_ms) / MS_PER_DAY)
    assert 1.0 <= min(intervals) < 1.3 and 3.7 < max(intervals) <= 4.0

    monitor = ConditionMonitor(config, random.Random(2), 0, ambient_c=30.0)
    onset_ms, fail_ms = monitor.health.onset_ms, monitor.health.fail_ms

    def hour_before(end_ms: int) -> tuple[float, float]:
        """Mean vibration and the bearing temperature over the hour up to ``end_ms``."""
        vibration = []
        for minute in range(60):
            monitor.update(end_ms - (59 - minute) * 60_000, 1.0, True, 30.0)
            vibration.append(monitor.vibration_mm_s)
        return statistics.fmean(vibration), monitor.bearing_c

    for ts_ms in range(60_000, onset_ms - MS_PER_DAY, 3_600_000):  # healthy, at full load
        monitor.update(ts_ms, 1.0, True, 30.0)
    healthy_mm_s, healthy_c = hour_before(onset_ms)
    half_mm_s, half_c = hour_before((onset_ms + fail_ms) // 2)
    end_mm_s, end_c = hour_before(fail_ms)
    assert healthy_c == pytest.approx(50.0, abs=0.2)
    assert half_c > healthy_c + 7.0 and half_mm_s < 1.15 * healthy_mm_s  # heat first
    assert end_c > healthy_c + 30.0  # near the 100 °C shut-down with a hotter room
    assert 1.3 * healthy_mm_s < end_mm_s < ISO_ZONES["I"][1]  # a small rise, still zone B

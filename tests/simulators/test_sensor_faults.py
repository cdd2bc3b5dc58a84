"""Faults of the sensors, not the machines: gain steps, spikes, stuck readings and dropouts.

Each kind draws from a stream of its own, so a run with them and one without differ in
the condition readings only, and the run without gives the true value of every reading.
"""

from __future__ import annotations

import bisect
import csv
import math
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from edge.sources import Sample
from simulators.degradation import GainSteps, SensorFaults, Spell, Spells
from simulators.hourly import with_sample_interval
from simulators.layout import CONDITION_METRICS, Condition, Layout
from simulators.randomness import seeded
from simulators.source import SimulatorSource
from simulators.timebase import MS_PER_DAY, MS_PER_H
from simulators.truth import SENSOR_FAULT_KINDS, SensorFault, Truth
from tests.simulators.helpers import MONDAY, build, layout_document, run

HEALTHY = {"mean_life_days": 10_000.0, "life_spread": 0.0, "initial_age": [0.0, 0.0]}
# Every kind several times a day, so four days show them all.
FAULTY = {
    "gain_step_rate_per_year": 365.0,
    "spike_rate_per_30d": 150.0,
    "stuck_rate_per_30d": 60.0,
    "dropout_rate_per_30d": 60.0,
}
VIBRATION = ("vibration_rms", "vibration_peak")
DAYS = 4.0
Key = tuple[datetime, str]


def _tiny(condition: dict[str, Any]) -> Layout:
    """The tiny site without grid events; its compressor reports all four condition metrics."""
    document = layout_document("tiny")
    document["grid"] = {"outage_rate_per_day": 0, "sag_rate_per_day": 0}
    compressor = document["lines"][0]["machines"][1]
    compressor["condition"] = {"iso_class": "I", **HEALTHY, **condition}
    compressor["metrics"] = [*compressor["metrics"], "vibration_peak", "motor_temp"]
    return build(document)


@pytest.fixture(scope="module")
def paired() -> tuple[list[Sample], Truth, list[Sample], Truth]:
    """The same site and seed with and without sensor faults."""
    faulty, faulty_truth = run(_tiny(FAULTY), seed=3, days=DAYS)
    clean, clean_truth = run(_tiny({}), seed=3, days=DAYS)
    return faulty, faulty_truth, clean, clean_truth


def _condition(samples: list[Sample]) -> dict[Key, float]:
    return {(s.ts, s.metric): s.value for s in samples if s.metric in CONDITION_METRICS}


def _within(faults: list[SensorFault], kind: str, ts: datetime) -> SensorFault | None:
    for fault in faults:
        if fault.kind == kind and fault.start <= ts and (fault.end is None or ts < fault.end):
            return fault
    return None


def _recorder(steps: list[tuple[int, float]]) -> Callable[[int, float], None]:
    return lambda ts_ms, factor: steps.append((ts_ms, factor))


def _events(faults: list[SensorFault], kind: str) -> list[SensorFault]:
    """One record per fault of ``kind`` (the rows of its first metric)."""
    return [f for f in faults if f.kind == kind and f.metric == "vibration_rms"]


# ------------------------------------------------------------------- the models


def test_with_no_rates_the_sensors_never_fail() -> None:
    told: list[tuple[Any, ...]] = []
    faults = SensorFaults(
        Condition(), lambda p: seeded(f"s/{p}"), 0, hook=lambda *event: told.append(event)
    )
    for hour in range(0, 2 * 365 * 24, 3):
        faults.advance(hour * MS_PER_H)
        assert (faults.vibration_factor, faults.stuck, faults.dropped) == (1.0, False, False)
    assert told == []


def test_gain_steps_come_at_their_rate_and_multiply_for_good() -> None:
    config = Condition(gain_step_rate_per_year=1.0, gain_step=(0.85, 1.25))
    counts, factors = [], []
    for sensor in range(200):
        steps: list[tuple[int, float]] = []
        gains = GainSteps(config, seeded(f"gain/{sensor}"), 0, _recorder(steps))
        end_ms = 2 * 365 * MS_PER_DAY
        final = gains.gain(end_ms)
        assert final == pytest.approx(math.prod(f for _, f in steps), rel=1e-12)
        assert all(0 < t <= end_ms for t, _ in steps)
        counts.append(len(steps))
        factors += [f for _, f in steps]
    # 400 sensor-years at one a year: 400 expected, within ±4 standard deviations.
    assert 320 <= sum(counts) <= 480
    assert 0.85 <= min(factors) < 0.87 and 1.23 < max(factors) <= 1.25


def test_spells_do_not_overlap_and_last_within_their_range() -> None:
    seen: list[Spell] = []
    spells = Spells(seeded("spells"), 1.0 / MS_PER_H, (10.0, 40.0), 60_000, None, 0, seen.append)
    inside = sum(spells.at(minute * 60_000) is not None for minute in range(200 * 60))
    assert 150 <= len(seen) <= 250  # one an hour after each ends, for 200 hours
    for spell in seen:
        assert 10 * 60_000 <= spell.end_ms - spell.start_ms <= 40 * 60_000
        assert spell.factor == 1.0
    for earlier, later in pairwise(seen):
        assert earlier.end_ms <= later.start_ms
    assert 0.1 < inside / (200 * 60) < 0.5  # some 20 of every 80 minutes


# ------------------------------------------------------------- what is reported


def test_sensor_faults_change_the_condition_readings_and_nothing_else(
    paired: tuple[list[Sample], Truth, list[Sample], Truth],
) -> None:
    faulty, faulty_truth, clean, clean_truth = paired
    others = [s for s in faulty if s.metric not in CONDITION_METRICS]
    assert others == [s for s in clean if s.metric not in CONDITION_METRICS]
    assert faulty_truth.states == clean_truth.states
    assert faulty_truth.disturbances == clean_truth.disturbances
    assert _condition(faulty) != _condition(clean)
    assert clean_truth.sensor_faults == []
    kinds = Counter(f.kind for f in faulty_truth.sensor_faults)
    assert set(kinds) == set(SENSOR_FAULT_KINDS)
    for fault in faulty_truth.sensor_faults:
        assert (fault.line, fault.machine) == ("line-1", "comp-01")
        assert fault.start < MONDAY + timedelta(days=DAYS)
        if fault.kind in ("gain_step", "spike"):
            assert fault.metric in VIBRATION  # the accelerometer's own faults
        if fault.kind == "gain_step":
            assert fault.end is None and fault.factor is not None
            assert 0.85 <= fault.factor <= 1.25
        else:
            assert fault.end is not None and fault.factor is None
    # A transmitter fault touches all four metrics, the accelerometer's its two.
    assert kinds["dropout"] == 4 * len(_events(faulty_truth.sensor_faults, "dropout"))
    assert kinds["spike"] == 2 * len(_events(faulty_truth.sensor_faults, "spike"))


def test_a_dropout_sends_nothing_and_its_rows_are_the_only_gaps(
    paired: tuple[list[Sample], Truth, list[Sample], Truth],
) -> None:
    faulty, truth, clean, _ = paired
    sent, true = _condition(faulty), _condition(clean)
    assert set(sent) <= set(true)
    missing = set(true) - set(sent)
    assert missing
    for ts, metric in true:
        dropped = _within(truth.sensor_faults, "dropout", ts) is not None
        assert ((ts, metric) in missing) == dropped
    durations = [f.end - f.start for f in _events(truth.sensor_faults, "dropout") if f.end]
    assert all(timedelta(minutes=10) <= d <= timedelta(hours=6) for d in durations)
    emitted = truth.emitted[("line-1", "comp-01", "bearing_temp")]
    assert emitted == sum(1 for _, metric in sent if metric == "bearing_temp")


def test_a_stuck_transmitter_repeats_the_readings_it_sent_last(
    paired: tuple[list[Sample], Truth, list[Sample], Truth],
) -> None:
    faulty, truth, clean, _ = paired
    sent, true = _condition(faulty), _condition(clean)
    checked = 0
    for metric in CONDITION_METRICS:
        times = sorted(ts for ts, m in sent if m == metric)
        for ts in times:
            stuck = _within(truth.sensor_faults, "stuck", ts)
            if stuck is None:
                continue
            before = times[bisect.bisect_left(times, stuck.start) - 1]
            assert sent[(ts, metric)] == sent[(before, metric)]
            checked += sent[(ts, metric)] != true[(ts, metric)]
    assert checked > 100  # the frozen readings are not what the machine did


def test_gain_steps_and_spikes_scale_the_true_vibration(
    paired: tuple[list[Sample], Truth, list[Sample], Truth],
) -> None:
    faulty, truth, clean, _ = paired
    sent, true = _condition(faulty), _condition(clean)
    steps = sorted((f.start, f.factor or 1.0) for f in _events(truth.sensor_faults, "gain_step"))
    assert len(steps) >= 2
    spiked = 0
    for (ts, metric), value in sent.items():
        if _within(truth.sensor_faults, "stuck", ts) is not None:
            continue
        if metric not in VIBRATION:
            assert value == true[(ts, metric)]  # temperatures: the true reading
            continue
        gain = math.prod(factor for start, factor in steps if start <= ts)
        expected = true[(ts, metric)] * gain
        if _within(truth.sensor_faults, "spike", ts) is None:
            assert value == pytest.approx(expected, abs=0.002)
        elif expected > 0.1:  # readings are rounded to 0.001
            assert 2.9 <= value / expected <= 10.1
            spiked += 1
    assert spiked >= 20


def test_sensor_faults_are_written_beside_the_other_truth(tmp_path: Path) -> None:
    truth = Truth("tiny", directory=tmp_path)
    layout = with_sample_interval(_tiny(FAULTY), 300.0)
    source = SimulatorSource(layout, seed=3, start=MONDAY, days=2.0, truth=truth)
    for _ in source.samples(threading.Event()):
        pass
    with (tmp_path / "sensor_faults.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and len(rows) == len(truth.sensor_faults)
    assert list(rows[0]) == ["site", "line", "machine", "metric", "kind", "start", "end", "factor"]
    for row, fault in zip(rows, truth.sensor_faults, strict=True):
        assert (row["site"], row["machine"], row["metric"], row["kind"]) == (
            "tiny",
            "comp-01",
            fault.metric,
            fault.kind,
        )
        assert row["start"].endswith("Z") and len(row["start"]) == 24
        if fault.kind == "gain_step":
            assert row["end"] == ""
            assert float(row["factor"]) == pytest.approx(fault.factor, abs=1e-4)
        else:
            assert row["end"].endswith("Z") and row["factor"] == ""


def test_the_same_seed_gives_the_same_sensor_faults() -> None:
    layout = with_sample_interval(_tiny(FAULTY), 300.0)
    first = SimulatorSource(layout, seed=8, start=MONDAY, days=2.0)
    again = SimulatorSource(layout, seed=8, start=MONDAY, days=2.0)
    other = SimulatorSource(layout, seed=9, start=MONDAY, days=2.0)
    samples = [list(s.samples(threading.Event())) for s in (first, again, other)]
    assert samples[0] == samples[1]
    assert first.truth.sensor_faults == again.truth.sensor_faults
    assert first.truth.sensor_faults and first.truth.sensor_faults != other.truth.sensor_faults


@pytest.mark.parametrize("field", ["gain_step", "spike_burst_min", "spike_factor", "stuck_h"])
def test_a_reversed_range_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="must be \\[low, high\\]"):
        Condition.model_validate({field: [12.0, 3.0]})

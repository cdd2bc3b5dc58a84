"""Machine states from power: synthetic cases and the simulator's ground truth."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.series import Series, to_ms
from analytics.states import (
    IDLE,
    OFF,
    RUNNING,
    PowerStateClassifier,
    StateInterval,
    intervals,
    merge_short_runs,
)
from simulators.run import build_source

STEP_MS = 10_000
STATE_NUMBERS = {"off": 0, "idle": 1, "running": 2, "fault": 3}


def _synthetic(levels_w: list[float], run_len: int, seed: int = 0) -> tuple[Series, np.ndarray]:
    rng = np.random.default_rng(seed)
    pattern = np.repeat(np.arange(len(levels_w)), run_len)
    truth = np.tile(pattern, 20)
    power = np.asarray(levels_w)[truth] * (1.0 + 0.03 * rng.standard_normal(truth.size))
    power[np.asarray(levels_w)[truth] == 0.0] = 0.0
    ts = np.arange(truth.size, dtype=np.int64) * STEP_MS
    return Series(ts, power), truth


def test_three_levels_are_learned_per_machine() -> None:
    series, truth = _synthetic([0.0, 125.0, 230.0], run_len=12)
    model = PowerStateClassifier(random_state=0).fit(series)
    assert model.n_levels_ == 2
    assert model.idle_w_ == pytest.approx(125.0, rel=0.02)
    assert 125.0 < model.running_below_w_ <= model.running_above_w_ < 230.0
    assert np.array_equal(model.predict(series), truth)


def test_thresholds_follow_the_machine_not_a_constant() -> None:
    small, _ = _synthetic([0.0, 5.5, 80.0], run_len=12)
    large, _ = _synthetic([0.0, 3300.0, 22000.0], run_len=12)
    a = PowerStateClassifier(random_state=0).fit(small)
    b = PowerStateClassifier(random_state=0).fit(large)
    assert a.running_above_w_ < 80.0 < b.running_below_w_


def test_machine_without_idle_draw_reports_off_when_not_running() -> None:
    series, truth = _synthetic([0.0, 80.0], run_len=12)
    model = PowerStateClassifier(random_state=0).fit(series)
    assert model.n_levels_ == 1
    assert model.idle_w_ is None
    assert np.array_equal(model.predict(series), np.where(truth == 1, RUNNING, OFF))


def test_hysteresis_fills_band_readings_from_the_next_clear_one() -> None:
    series, _ = _synthetic([0.0, 100.0, 1000.0], run_len=12)
    model = PowerStateClassifier(random_state=0).fit(series)
    probe = Series.of([0, 10_000, 20_000, 30_000, 40_000], [100.0, 100.0, 400.0, 1000.0, 100.0])
    assert model.running_below_w_ < 400.0 < model.running_above_w_
    assert model.predict(probe).tolist() == [IDLE, IDLE, RUNNING, RUNNING, IDLE]
    previous = PowerStateClassifier(fill="previous", random_state=0).fit(series)
    assert previous.predict(probe).tolist() == [IDLE, IDLE, IDLE, RUNNING, IDLE]


def test_short_runs_merge_into_the_run_before() -> None:
    ts = np.arange(8, dtype=np.int64) * STEP_MS
    states = np.array([1, 1, 1, 2, 1, 1, 2, 2], dtype=np.int8)
    assert merge_short_runs(ts, states, 15.0).tolist() == [1, 1, 1, 1, 1, 1, 2, 2]
    assert merge_short_runs(ts, states, 0.0).tolist() == states.tolist()


def test_intervals_end_at_the_next_run() -> None:
    ts = np.array([0, 10, 20, 30], dtype=np.int64)
    got = intervals(ts, np.array([1, 1, 2, 0], dtype=np.int8))
    assert got == [StateInterval(1, 0, 20), StateInterval(2, 20, 30), StateInterval(0, 30, 40)]
    assert intervals(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8)) == []


def test_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        PowerStateClassifier().predict(Series.of([0], [1.0]))


def test_bad_parameters_are_rejected_at_fit() -> None:
    series, _ = _synthetic([0.0, 100.0, 200.0], run_len=5)
    with pytest.raises(ValueError, match="hysteresis"):
        PowerStateClassifier(hysteresis=2.0).fit(series)


def _running_f1(layout: str, seed: int) -> float:
    """Pooled F1 of running against idle over the machines whose state follows their power.

    Only readings whose true state is idle or running count (off and fault are left out).
    Production machines, compressors and cold rooms are scored; the meter and the
    thermostat-cycled loads (irons, boiler) are not, since their state follows the shift
    clock rather than their draw.
    """
    source, truth = build_source(
        layout=layout,
        seed=seed,
        start=datetime(2026, 11, 23, tzinfo=UTC),
        days=1,
        realtime=False,
        truth_dir=None,
    )
    readings: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
    for sample in source.samples(threading.Event()):
        if sample.metric == "active_power":
            ts, values = readings.setdefault((sample.line, sample.machine), ([], []))
            ts.append(to_ms(sample.ts))
            values.append(sample.value)
    tp = fp = fn = 0
    for (line, machine), (ts, values) in readings.items():
        if machine.startswith(("meter", "irons", "boiler")):
            continue
        series = Series.of(ts, values)
        predicted = PowerStateClassifier(random_state=0).fit(series).predict(series)
        spans = truth.states_of(line, machine)
        starts = np.array([to_ms(s.start) for s in spans])
        actual = np.array([STATE_NUMBERS[s.state] for s in spans])[
            np.searchsorted(starts, series.ts_ms, side="right") - 1
        ]
        scored = (actual == IDLE) | (actual == RUNNING)
        is_running, said_running = actual[scored] == RUNNING, predicted[scored] == RUNNING
        tp += int(np.sum(is_running & said_running))
        fp += int(np.sum(~is_running & said_running))
        fn += int(np.sum(is_running & ~said_running))
    return 2 * tp / (2 * tp + fp + fn)


@pytest.mark.parametrize(("layout", "seed"), [("garment", 7), ("garment", 3), ("food", 7)])
def test_running_f1_against_simulator_truth(layout: str, seed: int) -> None:
    assert _running_f1(layout, seed) >= 0.95

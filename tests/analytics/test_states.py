"""Machine states from power: synthetic cases and the simulator's ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.job import MIN_DWELL_S
from analytics.series import Series
from analytics.states import (
    IDLE,
    OFF,
    RUNNING,
    PowerStateClassifier,
    StateInterval,
    intervals,
    merge_short_runs,
)
from tonle.cli.evaluation import peak_hit_rate, running_f1

STEP_MS = 10_000


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


@pytest.mark.parametrize(("layout", "seed"), [("garment", 7), ("garment", 3), ("food", 7)])
def test_running_f1_against_simulator_truth(layout: str, seed: int) -> None:
    assert running_f1(layout, seed) >= 0.95


def test_running_f1_with_the_jobs_minimum_dwell() -> None:
    assert running_f1("garment", 5, min_dwell_s=MIN_DWELL_S) >= 0.95


def test_monthly_peaks_are_found_against_the_meter_register() -> None:
    rate, months = peak_hit_rate("tiny", 2, months=2, sample_interval_s=60.0)
    assert months == 3  # the period starts on 1 January local and ends in March
    assert rate >= 0.95

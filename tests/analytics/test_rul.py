"""Remaining useful life: benchmark metrics, window features and the C-MAPSS FD001 targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.cmapss import (
    evaluate_fd001,
    last_cycle_rows,
    load_cmapss,
    phm08_score,
    rmse,
)
from analytics.rul import RulRegressor, WindowFeatures, run_to_failure_rul
from tests.conftest import SHARED

FD001 = SHARED / "datasets" / "cmapss-fd001"


def test_phm08_score_on_hand_computed_errors() -> None:
    # d = -13 (early): e^1 - 1; d = +10 (late): e^1 - 1; d = 0: 0; d = +20: e^2 - 1.
    true = [50.0, 40.0, 30.0, 10.0]
    pred = [37.0, 50.0, 30.0, 30.0]
    assert phm08_score(true, pred) == pytest.approx(2 * (math.e - 1) + (math.e**2 - 1), rel=1e-12)


def test_phm08_score_punishes_late_more_than_early() -> None:
    assert phm08_score([100.0], [110.0]) > phm08_score([100.0], [90.0])
    assert phm08_score([100.0], [90.0]) == pytest.approx(math.exp(10 / 13) - 1, rel=1e-12)


def test_rmse_on_hand_computed_errors() -> None:
    assert rmse([0.0, 0.0, 0.0, 0.0], [3.0, -4.0, 0.0, 0.0]) == 2.5
    assert rmse([1.0, 2.0], [1.0, 2.0]) == 0.0


def test_run_to_failure_rul_counts_down_to_each_units_last_cycle() -> None:
    units = np.array([2, 2, 2, 1, 1], dtype=np.int64)
    cycles = np.array([1, 2, 3, 1, 2], dtype=np.int64)
    assert run_to_failure_rul(units, cycles).tolist() == [2, 1, 0, 1, 0]
    assert last_cycle_rows(units, cycles).tolist() == [4, 2]


def _linear_unit(n: int, slope: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cycles = np.arange(1, n + 1, dtype=np.int64)
    rising = 2.0 + slope * cycles
    constant = np.full(n, 7.0)
    return np.ones(n, dtype=np.int64), cycles, np.column_stack([rising, constant])


def test_window_features_of_a_linear_sensor() -> None:
    window, slope, n = 10, 0.5, 40
    units, cycles, x = _linear_unit(n, slope)
    features = WindowFeatures(window=window, smoothing=0.1, baseline_cycles=5)
    out = features.fit_transform(units, cycles, x)

    assert features.informative_.tolist() == [0]  # the constant sensor is dropped
    assert out.shape == (n, 7 + 1)
    last, mean, trend, spread, _, _, mean_drift, cycle = out[-1]
    assert last == pytest.approx(2.0 + slope * n)
    assert mean == pytest.approx(2.0 + slope * (n - (window - 1) / 2))
    assert trend == pytest.approx(slope)
    # Population standard deviation of `window` equally spaced values.
    assert spread == pytest.approx(slope * math.sqrt((window**2 - 1) / 12))
    baseline = 2.0 + slope * 3.0  # mean of cycles 1..5
    assert mean_drift == pytest.approx(mean - baseline)
    assert cycle == n
    # Every row sees only its past: the first row's trend and spread are zero.
    assert out[0, 2] == 0.0 and out[0, 3] == 0.0
    assert out[:, 2][window - 1 :] == pytest.approx(np.full(n - window + 1, slope))


def test_window_features_do_not_depend_on_row_order() -> None:
    units, cycles, x = _linear_unit(25, -1.5)
    units = np.r_[units, units + 1]
    cycles = np.r_[cycles, cycles]
    x = np.vstack([x, x * 2.0])
    features = WindowFeatures(window=8).fit(units, cycles, x)
    shuffled = np.random.default_rng(0).permutation(units.size)
    in_order = features.transform(units, cycles, x)
    assert features.transform(units[shuffled], cycles[shuffled], x[shuffled]) == pytest.approx(
        in_order[shuffled]
    )


def test_rul_regressor_learns_a_synthetic_fleet_with_an_interval() -> None:
    rng = np.random.default_rng(3)
    units, cycles, rows = [], [], []
    for unit in range(12):
        life = int(rng.integers(120, 200))
        t = np.arange(1, life + 1)
        wear = np.exp((t - life) / 25.0)
        rows.append(np.column_stack([wear + rng.normal(0, 0.02, life), rng.normal(0, 1, life)]))
        units.append(np.full(life, unit))
        cycles.append(t)
    u, c, x = np.concatenate(units), np.concatenate(cycles), np.vstack(rows)
    model = RulRegressor(window=20, baseline_cycles=10, min_samples_leaf=20, random_state=0)
    assert model.fit(u, c, x) is model
    low, mid, high = model.predict_interval(u, c, x, coverage=0.8)
    assert np.all(low <= mid) and np.all(mid <= high)
    assert np.all(low >= 0.0) and np.all(mid <= model.cap)
    truth = np.minimum(run_to_failure_rul(u, c), model.cap)
    near_failure = truth < 60
    assert rmse(truth[near_failure], mid[near_failure]) < 10.0
    np.testing.assert_array_equal(model.predict(u, c, x), mid)


def test_rul_regressor_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        RulRegressor().fit([1, 1], [1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="one entry per row"):
        RulRegressor().fit([1], [1, 2], [[1.0], [2.0]])


def test_fd001_loads_as_documented() -> None:
    data = load_cmapss(FD001)
    assert len(data.train) == 20_631 and len(data.test) == 13_096
    assert np.unique(data.train.units).size == 100 and data.test_rul.size == 100
    assert data.train.settings.shape == (20_631, 3) and data.train.sensors.shape == (20_631, 21)


def test_fd001_meets_the_benchmark_targets() -> None:
    result = evaluate_fd001(FD001, random_state=0)
    assert result["units"] == 100
    assert result["rmse"] <= 13.0
    assert result["phm08_score"] <= 250.0

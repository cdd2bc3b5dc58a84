"""NASA C-MAPSS turbofan data: loading, the benchmark metrics and the FD001 evaluation.

The protocol is the field's: train on the train file only, predict the RUL at the
last cycle of each test engine, compare with ``RUL_FD001.txt`` by RMSE and by the
asymmetric PHM08 score (late predictions cost more than early ones).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

from analytics.rul import RulRegressor, run_to_failure_rul
from analytics.series import FloatArray, Int64Array

N_SETTINGS = 3
N_SENSORS = 21
_COLUMNS = 2 + N_SETTINGS + N_SENSORS
# Held-out points in cross-validation resemble the test file: engines seen for at
# least as long as the shortest test engine, not further than the test's largest RUL.
_CV_MIN_CYCLES = 31
_CV_MAX_RUL = 145


@dataclass(frozen=True)
class CmapssFrame:
    """Rows of one C-MAPSS file: one per (unit, cycle), in file order."""

    units: Int64Array
    cycles: Int64Array
    settings: FloatArray
    sensors: FloatArray

    def __len__(self) -> int:
        return int(self.units.size)


@dataclass(frozen=True)
class CmapssData:
    """A C-MAPSS subset: training histories, truncated test histories and the test RUL."""

    train: CmapssFrame
    test: CmapssFrame
    test_rul: FloatArray


def read_frame(path: Path) -> CmapssFrame:
    """Read one space-separated C-MAPSS file (unit, cycle, 3 settings, 21 sensors)."""
    table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if table.shape[1] != _COLUMNS:
        raise ValueError(f"{path}: expected {_COLUMNS} columns, found {table.shape[1]}")
    return CmapssFrame(
        units=table[:, 0].astype(np.int64),
        cycles=table[:, 1].astype(np.int64),
        settings=table[:, 2 : 2 + N_SETTINGS],
        sensors=table[:, 2 + N_SETTINGS :],
    )


def load_cmapss(directory: Path | str, subset: str = "FD001") -> CmapssData:
    """Load ``train_<subset>.txt``, ``test_<subset>.txt`` and ``RUL_<subset>.txt``."""
    root = Path(directory)
    train = read_frame(root / f"train_{subset}.txt")
    test = read_frame(root / f"test_{subset}.txt")
    test_rul = np.loadtxt(root / f"RUL_{subset}.txt", dtype=np.float64, ndmin=1)
    n_test_units = np.unique(test.units).size
    if test_rul.size != n_test_units:
        raise ValueError(f"{test_rul.size} RUL values for {n_test_units} test units")
    return CmapssData(train=train, test=test, test_rul=test_rul)


def phm08_score(true: Any, pred: Any) -> float:
    """PHM08 score, d = pred - true: sum of exp(-d/13) - 1 if d < 0, else exp(d/10) - 1."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def rmse(true: Any, pred: Any) -> float:
    """Root mean squared error."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sqrt(np.mean(d**2)))


def last_cycle_rows(units: Int64Array, cycles: Int64Array) -> Int64Array:
    """Index of the last cycle of each unit, in increasing order of unit id."""
    order = np.lexsort((cycles, units))
    sorted_units = units[order]
    is_last = np.r_[sorted_units[1:] != sorted_units[:-1], True]
    rows: Int64Array = order[is_last].astype(np.int64)
    return rows


def evaluate_fd001(
    directory: Path | str, random_state: int = 0, **params: Any
) -> dict[str, float | int]:
    """Train on the FD001 train file, score the last cycle of each test unit.

    ``params`` go to :class:`~analytics.rul.RulRegressor` (its defaults otherwise,
    which were chosen by :func:`cross_validate_fd001` on the training units, never on
    the test file). Returns ``rmse``, ``phm08_score``, ``units`` and ``fit_seconds``.
    """
    data = load_cmapss(directory)
    model = RulRegressor(random_state=random_state, **params)
    started = time.perf_counter()
    model.fit(data.train.units, data.train.cycles, data.train.sensors)
    fit_seconds = time.perf_counter() - started
    rows = last_cycle_rows(data.test.units, data.test.cycles)
    pred = model.predict(data.test.units, data.test.cycles, data.test.sensors)[rows]
    return {
        "rmse": rmse(data.test_rul, pred),
        "phm08_score": phm08_score(data.test_rul, pred),
        "units": int(rows.size),
        "fit_seconds": fit_seconds,
    }


def cross_validate_fd001(
    directory: Path | str, n_splits: int = 5, random_state: int = 0, **params: Any
) -> dict[str, float | int]:
    """Cross-validate a :class:`~analytics.rul.RulRegressor` on the FD001 training units.

    Folds are grouped by unit. In each held-out unit every cycle from the 31st on
    whose true RUL is at most 145 is scored against the uncapped truth, as the test
    file would be. ``phm08_score_per_100`` scales the score to 100 points so that it
    reads like the test figure. This is the only data used to choose parameters.
    """
    train = load_cmapss(directory).train
    truth = run_to_failure_rul(train.units, train.cycles).astype(np.float64)
    scored = (train.cycles >= _CV_MIN_CYCLES) & (truth <= _CV_MAX_RUL)
    pred = np.full(truth.shape, np.nan)
    for fit_rows, held in GroupKFold(n_splits=n_splits).split(train.sensors, groups=train.units):
        model = RulRegressor(random_state=random_state, **params)
        model.fit(train.units[fit_rows], train.cycles[fit_rows], train.sensors[fit_rows])
        pred[held] = model.predict(train.units[held], train.cycles[held], train.sensors[held])
    n = int(scored.sum())
    return {
        "rmse": rmse(truth[scored], pred[scored]),
        "phm08_score_per_100": 100.0 * phm08_score(truth[scored], pred[scored]) / n,
        "points": n,
    }


def evaluate_fd001_forest(
    directory: Path | str, random_state: int = 0, window: int = 30, cap: float = 125.0
) -> dict[str, float | int]:
    """The reference: a plain random forest on 30-cycle window features, same protocol.

    Rows are :class:`~analytics.rul.WindowFeatures` of the informative sensors over the
    last ``window`` cycles, the target the RUL capped at ``cap``; 100 trees, scikit-learn's
    defaults otherwise except 30 % of the features per split and leaves of at least 5
    rows, which keep the fit to about half a minute. Returns ``rmse``, ``phm08_score``,
    ``units`` and ``fit_seconds``.
    """
    from sklearn.ensemble import RandomForestRegressor

    from analytics.rul import WindowFeatures

    data = load_cmapss(directory)
    train = data.train
    features = WindowFeatures(window=window, baseline_cycles=window)
    x = features.fit_transform(train.units, train.cycles, train.sensors)
    y = np.minimum(run_to_failure_rul(train.units, train.cycles), cap).astype(np.float64)
    started = time.perf_counter()
    forest = RandomForestRegressor(
        n_estimators=100,
        max_features=0.3,
        min_samples_leaf=5,
        n_jobs=-1,
        random_state=random_state,
    ).fit(x, y)
    fit_seconds = time.perf_counter() - started
    rows = last_cycle_rows(data.test.units, data.test.cycles)
    test_x = features.transform(data.test.units, data.test.cycles, data.test.sensors)
    pred = np.clip(forest.predict(test_x[rows]), 0.0, cap)
    return {
        "rmse": rmse(data.test_rul, pred),
        "phm08_score": phm08_score(data.test_rul, pred),
        "units": int(rows.size),
        "fit_seconds": fit_seconds,
    }

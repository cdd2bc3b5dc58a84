"""Remaining useful life from run-to-failure histories: window features and a regressor.

:class:`WindowFeatures` turns each cycle of each unit into a row of features computed
from that unit's past only: per informative sensor the last reading, the mean, the
least-squares slope and the spread over the last ``window`` cycles, an exponentially
smoothed level, and the drift of that level and of the window mean from the unit's
own first ``baseline_cycles`` (which removes the engine-to-engine offsets of initial
wear and manufacturing), plus the cycle count. :class:`RulRegressor` fits gradient
boosting on those rows against a piecewise-linear target (capped at ``cap``) and gives
intervals from out-of-fold residuals, grouped by unit so that they are honest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold
from sklearn.utils.validation import check_is_fitted

from analytics.series import FloatArray, Int64Array

# A sensor whose spread over the training rows is below this carries no information.
_CONSTANT_STD = 1e-8
# Residual quantiles are taken per band of predicted RUL (errors grow with the RUL).
_INTERVAL_BANDS = 5
_FEATURES_PER_SENSOR = 7


def run_to_failure_rul(units: Int64Array, cycles: Int64Array) -> Int64Array:
    """Cycles left before each unit's last recorded cycle (the target of run-to-failure data)."""
    units = np.asarray(units, dtype=np.int64)
    cycles = np.asarray(cycles, dtype=np.int64)
    _, inverse = np.unique(units, return_inverse=True)
    last = np.full(int(inverse.max()) + 1 if inverse.size else 0, np.iinfo(np.int64).min)
    np.maximum.at(last, inverse, cycles)
    return last[inverse] - cycles


def unit_window_features(
    values: FloatArray, window: int, smoothing: float, baseline_cycles: int
) -> FloatArray:
    """Features of every cycle of one unit (rows in cycle order, one column per sensor).

    Returns an array of shape ``(n_cycles, 7 * n_sensors)``, in blocks of ``n_sensors``
    columns: last reading, window mean, window slope (per cycle), window standard
    deviation, smoothed level, smoothed level minus baseline, window mean minus
    baseline. The baseline is the mean of the first ``baseline_cycles`` cycles (or of
    all cycles so far while fewer have been seen), so no row looks ahead.
    """
    x = np.asarray(values, dtype=np.float64)
    n, m = x.shape
    if n == 0:
        return np.empty((0, _FEATURES_PER_SENSOR * m))
    idx = np.arange(n)
    lo = np.maximum(0, idx - window + 1)
    count = (idx + 1 - lo).astype(np.float64)[:, None]
    t = idx.astype(np.float64)[:, None]

    def window_sum(a: FloatArray) -> FloatArray:
        c = np.vstack([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])
        out: FloatArray = c[idx + 1] - c[lo]
        return out

    sum_x = window_sum(x)
    sum_xx = window_sum(x * x)
    sum_xt = window_sum(x * t)
    sum_t = window_sum(t)
    sum_tt = window_sum(t * t)
    mean = sum_x / count
    std = np.sqrt(np.maximum(sum_xx / count - mean**2, 0.0))
    denominator = count * sum_tt - sum_t**2
    safe = np.where(denominator > 0, denominator, 1.0)
    slope = np.where(denominator > 0, (count * sum_xt - sum_t * sum_x) / safe, 0.0)

    smoothed = np.empty_like(x)
    smoothed[0] = x[0]
    for i in range(1, n):
        smoothed[i] = smoothing * x[i] + (1.0 - smoothing) * smoothed[i - 1]

    k = min(baseline_cycles, n)
    early = np.cumsum(x[:k], axis=0) / np.arange(1, k + 1, dtype=np.float64)[:, None]
    baseline = early[np.minimum(idx, k - 1)]
    features: FloatArray = np.hstack(
        [x, mean, slope, std, smoothed, smoothed - baseline, mean - baseline]
    )
    return features


def _check_rows(units: Any, cycles: Any, X: Any) -> tuple[Int64Array, Int64Array, FloatArray]:
    u = np.asarray(units, dtype=np.int64)
    c = np.asarray(cycles, dtype=np.int64)
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"X must be 2-D (rows × sensors), got shape {x.shape}")
    if u.shape != (x.shape[0],) or c.shape != (x.shape[0],):
        raise ValueError("units and cycles must be 1-D with one entry per row of X")
    if x.shape[0] == 0:
        raise ValueError("no rows")
    if not np.all(np.isfinite(x)):
        raise ValueError("X contains NaN or infinite values")
    return u, c, x


class WindowFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Per-cycle features of each unit over a sliding window of its past cycles.

    Parameters
    ----------
    window : int, default=30
        Number of most recent cycles (including the current one) in the window.
    smoothing : float, default=0.1
        Weight of the newest reading in the exponentially smoothed level.
    baseline_cycles : int, default=20
        Number of first cycles of a unit that define its own healthy baseline.

    Attributes
    ----------
    informative_ : ndarray of int
        Indices of the columns of ``X`` that vary in the training rows (the others
        are constant and dropped).
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit``.
    """

    def __init__(self, window: int = 30, smoothing: float = 0.1, baseline_cycles: int = 20):
        self.window = window
        self.smoothing = smoothing
        self.baseline_cycles = baseline_cycles

    def fit(self, units: Any, cycles: Any, X: Any) -> WindowFeatures:
        """Learn which sensors are informative (not constant) from the training rows."""
        if self.window < 2:
            raise ValueError("window must be at least 2 cycles")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError("smoothing must be in (0, 1]")
        if self.baseline_cycles < 1:
            raise ValueError("baseline_cycles must be at least 1")
        _, _, x = _check_rows(units, cycles, X)
        self.informative_ = np.flatnonzero(x.std(axis=0) > _CONSTANT_STD)
        if self.informative_.size == 0:
            raise ValueError("every sensor is constant in the training rows")
        self.n_features_in_ = x.shape[1]
        return self

    def transform(self, units: Any, cycles: Any, X: Any) -> FloatArray:
        """Feature rows aligned with the input rows (any order; units sorted by cycle inside)."""
        check_is_fitted(self, "informative_")
        u, c, x = _check_rows(units, cycles, X)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {x.shape[1]} columns, fitted with {self.n_features_in_}")
        x = x[:, self.informative_]
        order = np.lexsort((c, u))
        out = np.empty((x.shape[0], _FEATURES_PER_SENSOR * x.shape[1] + 1))
        sorted_units = u[order]
        starts = np.flatnonzero(np.r_[True, sorted_units[1:] != sorted_units[:-1]])
        ends = np.r_[starts[1:], sorted_units.size]
        for start, end in zip(starts, ends, strict=True):
            rows = order[start:end]
            out[rows, :-1] = unit_window_features(
                x[rows], self.window, self.smoothing, self.baseline_cycles
            )
        out[:, -1] = c
        return out

    def fit_transform(self, units: Any, cycles: Any, X: Any) -> FloatArray:
        """Fit on the rows, then transform them."""
        return self.fit(units, cycles, X).transform(units, cycles, X)


class RulRegressor(BaseEstimator):  # type: ignore[misc]
    """Remaining useful life from sensor histories, with an interval.

    Gradient boosting (squared error) on :class:`WindowFeatures` rows, trained against
    the RUL capped at ``cap`` (a unit is taken as healthy, RUL ``cap``, until it is
    within ``cap`` cycles of failure). Intervals come from the residuals of
    ``interval_folds`` out-of-fold fits (folds grouped by unit), taken per band of
    predicted RUL.

    The defaults were chosen by 5-fold cross-validation grouped by unit on the C-MAPSS
    FD001 training engines only (see :func:`analytics.cmapss.cross_validate_fd001`).

    Parameters
    ----------
    window : int, default=80
        Cycles in the sliding window of the features.
    cap : float, default=125
        Upper limit of the training target (piecewise-linear RUL).
    smoothing : float, default=0.1
        Weight of the newest reading in the smoothed level.
    baseline_cycles : int, default=30
        First cycles of each unit that define its own baseline.
    learning_rate : float, default=0.05
    max_iter : int, default=200
    max_leaf_nodes : int, default=15
    min_samples_leaf : int, default=100
    l2_regularization : float, default=1.0
        Gradient boosting parameters.
    interval_folds : int, default=3
        Folds (grouped by unit) whose out-of-fold residuals calibrate the interval.
    random_state : int, RandomState instance or None, default=None
        Seed of the boosting (and of nothing else; the folds are deterministic).

    Attributes
    ----------
    features_ : WindowFeatures
        The fitted feature transformer.
    model_ : HistGradientBoostingRegressor
        The point model fitted on all training rows.
    band_edges_ : ndarray of float
        Inner edges of the predicted-RUL bands of the residual quantiles.
    residuals_ : list of ndarray of float
        Out-of-fold residuals (true minus predicted) of each band.
    n_features_in_ : int
        Number of sensor columns seen in ``fit``.
    """

    def __init__(
        self,
        window: int = 80,
        cap: float = 125.0,
        smoothing: float = 0.1,
        baseline_cycles: int = 30,
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 100,
        l2_regularization: float = 1.0,
        interval_folds: int = 3,
        random_state: int | np.random.RandomState | None = None,
    ):
        self.window = window
        self.cap = cap
        self.smoothing = smoothing
        self.baseline_cycles = baseline_cycles
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.interval_folds = interval_folds
        self.random_state = random_state

    def _booster(self) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        )

    def fit(self, units: Any, cycles: Any, X: Any, y: Any = None) -> RulRegressor:
        """Fit on sensor rows; without ``y`` every unit is taken to run to failure.

        Args:
            units: unit id of each row.
            cycles: cycle (time step) of each row.
            X: sensor readings, one row per (unit, cycle), one column per sensor.
            y: remaining life of each row; by default the cycles left to the unit's
                last row (run-to-failure histories).
        """
        if self.cap <= 0:
            raise ValueError("cap must be positive")
        if self.interval_folds < 2:
            raise ValueError("interval_folds must be at least 2")
        u, c, x = _check_rows(units, cycles, X)
        target = run_to_failure_rul(u, c) if y is None else np.asarray(y, dtype=np.float64)
        if target.shape != u.shape:
            raise ValueError("y must have one entry per row of X")
        capped = np.minimum(target.astype(np.float64), float(self.cap))
        if np.unique(u).size < self.interval_folds:
            raise ValueError(f"need at least {self.interval_folds} units to fit")

        self.features_ = WindowFeatures(self.window, self.smoothing, self.baseline_cycles)
        features = self.features_.fit_transform(u, c, x)
        self.n_features_in_ = x.shape[1]

        predicted = np.empty_like(capped)
        for train, held in GroupKFold(n_splits=self.interval_folds).split(features, capped, u):
            predicted[held] = (
                self._booster().fit(features[train], capped[train]).predict(features[held])
            )
        residual = capped - predicted
        quantiles = np.linspace(0, 1, _INTERVAL_BANDS + 1)[1:-1]
        self.band_edges_ = np.quantile(predicted, quantiles)
        band = np.searchsorted(self.band_edges_, predicted)
        self.residuals_ = [np.sort(residual[band == b]) for b in range(_INTERVAL_BANDS)]

        self.model_ = self._booster().fit(features, capped)
        return self

    def predict(self, units: Any, cycles: Any, X: Any) -> FloatArray:
        """RUL estimate of every row (in cycles, between 0 and ``cap``)."""
        check_is_fitted(self, "model_")
        features = self.features_.transform(units, cycles, X)
        estimate: FloatArray = np.clip(self.model_.predict(features), 0.0, float(self.cap))
        return estimate

    def predict_interval(
        self, units: Any, cycles: Any, X: Any, coverage: float = 0.8
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Low, middle and high RUL of every row; the central ``coverage`` of likely values.

        The bounds are calibrated on out-of-fold residuals against the capped target
        over all training cycles, so they are on the capped scale and tend to be narrow
        for units whose true RUL is above ``cap``.
        """
        if not 0.0 < coverage < 1.0:
            raise ValueError("coverage must be in (0, 1)")
        mid = self.predict(units, cycles, X)
        band = np.searchsorted(self.band_edges_, mid)
        tail = (1.0 - coverage) / 2.0
        low = np.empty_like(mid)
        high = np.empty_like(mid)
        for b, residual in enumerate(self.residuals_):
            rows = band == b
            if residual.size == 0:
                low[rows] = mid[rows]
                high[rows] = mid[rows]
                continue
            low[rows] = mid[rows] + np.quantile(residual, tail)
            high[rows] = mid[rows] + np.quantile(residual, 1.0 - tail)
        return np.clip(low, 0.0, mid), mid, np.maximum(high, mid)

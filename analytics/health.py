"""Machine health from load-normalised condition features, fitted on its own healthy period.

A machine working harder vibrates more and runs hotter without being sick, so each
condition metric is first explained by the load (and the bearing's temperature also by
the motor's, which carries the room temperature): a robust linear model (scikit-learn's
``HuberRegressor``) fitted on the machine's healthy windows. What the load does not
explain is the *deviation*: for vibration the log ratio to the healthy level at that
load, for the bearing the kelvins above it. Each deviation, and the day's trend of the
vibration deviation and its kurtosis over a day (a fault that comes and goes makes it
heavy-tailed), is turned into a robust z-score against the healthy period (median and
MAD). Only rises count (a fault makes a machine louder and hotter, never quieter).

Each z-score is smoothed by its median over the machine's last few running windows, so
that a knock or a loose guard lasting an hour or two does not raise an alert; the
anomaly score of a window is the largest smoothed z-score (trend and kurtosis only
explain), and the health index maps it onto 0–100: ``100 / (1 + (score / 5)³)``, so a
score of 2 (ordinary) reads 94, 4 (an alert opens) 66, 6 reads 37 and 10 reads 11.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import HuberRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from analytics.condition import (
    Samples,
    Windows,
    reference_load,
    trailing_kurtosis,
    trailing_trend,
    window_stats,
)
from analytics.series import MS_PER_HOUR, FloatArray

# Deviations the score is made of: (name, metric, how the metric is compared).
LOG: Final = "log"  # multiplicative: vibration
KELVIN: Final = "kelvin"  # additive: temperature
DEVIATIONS: Final = (
    ("vibration_rms", "vibration_rms", LOG),
    ("vibration_peak", "vibration_peak", LOG),
    ("bearing_temp", "bearing_temp", KELVIN),
)
TREND: Final = "vibration_rms_trend"
KURTOSIS: Final = "vibration_rms_kurtosis"
# Features that explain an alert but do not raise one (see HealthModel.assess).
EXPLANATORY: Final = (TREND, KURTOSIS)
# MAD floors: the sensors' own resolution, so a perfectly quiet training period does
# not make every later wobble look huge (2 % in vibration, 0.3 K in temperature).
_MIN_SCALE: Final = {LOG: 0.02, KELVIN: 0.3, TREND: 0.01, KURTOSIS: 0.5}
_MAD_TO_SIGMA: Final = 1.4826


def health_index(score: FloatArray) -> FloatArray:
    """Health 0–100 (100 healthy) from an anomaly score (NaN stays NaN)."""
    s = np.maximum(np.asarray(score, dtype=np.float64), 0.0)
    out: FloatArray = 100.0 / (1.0 + (s / 5.0) ** 3)
    return out


def past_median(x: FloatArray, span: int) -> FloatArray:
    """Median of each value and the ``span − 1`` values before it, NaNs skipped.

    The look-back counts values, not windows: a machine that stood still overnight is
    judged on its last ``span`` running windows. NaN where ``x`` is NaN.
    """
    values = np.asarray(x, dtype=np.float64)
    out = np.full(values.size, np.nan)
    ok = np.flatnonzero(np.isfinite(values))
    if ok.size:
        padded = np.concatenate([np.full(span - 1, np.nan), values[ok]])
        rows = np.lib.stride_tricks.sliding_window_view(padded, span)
        out[ok] = np.nanmedian(rows, axis=1)
    return out


@dataclass(frozen=True)
class Assessment:
    """A machine's health over consecutive windows.

    ``z`` holds, per feature, the robust z-score of each window (NaN where the machine
    did not run enough); ``change`` the deviation from healthy in the feature's unit
    (a fraction for vibration, kelvins for temperature, a fraction per day for the
    trend); ``score`` the smoothed anomaly score and ``health`` the index 0–100.
    """

    windows: Windows
    z: dict[str, FloatArray]
    change: dict[str, FloatArray]
    score: FloatArray
    health: FloatArray


@dataclass(frozen=True, slots=True)
class Reason:
    """One feature that moved: its z-score, how much it moved, and a sentence saying so."""

    feature: str
    z: float
    change: float
    text: str


class HealthModel(BaseEstimator):  # type: ignore[misc]
    """Health index of one machine, fitted on a period in which it was healthy.

    Parameters
    ----------
    window_ms : int, default=3_600_000
        Length of the windows the running samples are summarised over.
    trend_windows : int, default=24
        Windows the vibration trend is fitted over.
    smooth_windows : int, default=8
        Windows the anomaly score's median is taken over.
    min_windows : int, default=24
        Fewest windows with a running machine to fit on.
    epsilon : float, default=1.35
        ``HuberRegressor``'s threshold between squared and absolute loss.
    two_sided : bool, default=False
        Count falls as well as rises (for a process value, such as a temperature that
        collapses when a machine fails; never for vibration on its own).

    Attributes
    ----------
    reference_load_ : float
        Full load of the machine (W or A): the 95th percentile of its load readings.
    features_ : list of str
        Features of the score, in order.
    regressors_ : dict of str to Pipeline
        Healthy level of each deviation's metric given the load (and motor temperature):
        a ``StandardScaler`` then a ``HuberRegressor``.
    center_, scale_ : dict of str to float
        Median and MAD-based sigma of each feature's healthy deviation.
    trained_from_ms_, trained_to_ms_ : int
        The training period.
    n_windows_ : int
        Running windows trained on.
    """

    def __init__(
        self,
        window_ms: int = MS_PER_HOUR,
        trend_windows: int = 24,
        smooth_windows: int = 8,
        min_windows: int = 24,
        epsilon: float = 1.35,
        two_sided: bool = False,
    ) -> None:
        self.window_ms = window_ms
        self.trend_windows = trend_windows
        self.smooth_windows = smooth_windows
        self.min_windows = min_windows
        self.epsilon = epsilon
        self.two_sided = two_sided

    # -- fitting ------------------------------------------------------------------

    def _design(self, windows: Windows, metric: str) -> FloatArray:
        load = windows.load
        columns = [load, load * load]
        if metric == "bearing_temp" and "motor_temp" in windows.level:
            columns.append(windows.level["motor_temp"])
        return np.column_stack(columns)

    @staticmethod
    def _target(windows: Windows, metric: str, kind: str) -> FloatArray:
        level = windows.level[metric]
        if kind == LOG:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(level > 0, np.log(level), np.nan)
        return level

    def fit(self, samples: Samples, start_ms: int, end_ms: int) -> HealthModel:
        """Fit on the windows of ``[start_ms, end_ms)``, taken to be healthy.

        Raises:
            ValueError: fewer than ``min_windows`` windows with a running machine, or no
                condition metric the model knows.
        """
        part = samples.between(start_ms, end_ms)
        reference = reference_load(part.load_raw) if part.load_metric else 1.0
        if not reference > 0:
            raise ValueError("no load readings to learn the machine's full load from")
        windows = window_stats(part, reference, start_ms, end_ms, self.window_ms)
        self.reference_load_ = reference
        self.regressors_: dict[str, Pipeline] = {}
        self.center_: dict[str, float] = {}
        self.scale_: dict[str, float] = {}
        self.features_: list[str] = []
        deviations: dict[str, FloatArray] = {}
        for name, metric, kind in DEVIATIONS:
            if metric not in windows.level:
                continue
            y = self._target(windows, metric, kind)
            x = self._design(windows, metric)
            ok = np.isfinite(y) & np.all(np.isfinite(x), axis=1)
            if int(ok.sum()) < self.min_windows:
                continue
            # Scaled inputs (load is 0–1, temperatures tens of kelvins) converge in a few
            # iterations where raw ones take hundreds.
            regressor = make_pipeline(
                StandardScaler(), HuberRegressor(epsilon=self.epsilon, max_iter=500)
            ).fit(x[ok], y[ok])
            residual = y - self._predict(regressor, x)
            self._fit_scale(name, residual[ok], _MIN_SCALE[kind])
            self.regressors_[name] = regressor
            self.features_.append(name)
            deviations[name] = residual
        if not self.features_:
            raise ValueError(
                f"fewer than {self.min_windows} running windows with condition readings "
                "to learn the healthy machine from"
            )
        if "vibration_rms" in deviations:
            trend = trailing_trend(windows.end_ms, deviations["vibration_rms"], self.trend_windows)
            if int(np.isfinite(trend).sum()) >= self.min_windows:
                self._fit_scale(TREND, trend[np.isfinite(trend)], _MIN_SCALE[TREND])
                self.features_.append(TREND)
            peaked = trailing_kurtosis(deviations["vibration_rms"], self.trend_windows)
            if int(np.isfinite(peaked).sum()) >= self.min_windows:
                self._fit_scale(KURTOSIS, peaked[np.isfinite(peaked)], _MIN_SCALE[KURTOSIS])
                self.features_.append(KURTOSIS)
        self.trained_from_ms_ = int(start_ms)
        self.trained_to_ms_ = int(end_ms)
        self.n_windows_ = int(np.sum(windows.count > 0))
        return self

    def _fit_scale(self, name: str, values: FloatArray, floor: float) -> None:
        center = float(np.median(values))
        mad = float(np.median(np.abs(values - center)))
        self.center_[name] = center
        self.scale_[name] = max(_MAD_TO_SIGMA * mad, floor)

    @staticmethod
    def _predict(regressor: Pipeline, x: FloatArray) -> FloatArray:
        out = np.full(x.shape[0], np.nan)
        ok = np.all(np.isfinite(x), axis=1)
        if ok.any():
            out[ok] = regressor.predict(x[ok])
        return out

    # -- scoring ------------------------------------------------------------------

    def assess(self, samples: Samples, start_ms: int, end_ms: int) -> Assessment:
        """Health of the windows of ``[start_ms, end_ms)``.

        The trend and the smoothing look back, so pass samples from a day or so before
        ``start_ms`` when there are some; windows before ``start_ms`` are not returned.
        """
        check_is_fitted(self, "features_")
        lookback = self.window_ms * (self.trend_windows + self.smooth_windows)
        first = start_ms - lookback
        windows = window_stats(samples, self.reference_load_, first, end_ms, self.window_ms)
        z: dict[str, FloatArray] = {}
        change: dict[str, FloatArray] = {}
        deviations: dict[str, FloatArray] = {}
        for name, metric, kind in DEVIATIONS:
            if name not in self.regressors_:
                continue
            if metric not in windows.level:
                continue
            target = self._target(windows, metric, kind)
            residual = target - self._predict(self.regressors_[name], self._design(windows, metric))
            deviations[name] = residual
            moved = residual - self.center_[name]
            z[name] = moved / self.scale_[name]
            change[name] = np.expm1(moved) if kind == LOG else moved
        if TREND in self.center_ and "vibration_rms" in deviations:
            trend = trailing_trend(windows.end_ms, deviations["vibration_rms"], self.trend_windows)
            # Only where the machine ran: the slope of past windows says nothing of now.
            trend[~np.isfinite(deviations["vibration_rms"])] = np.nan
            z[TREND] = (trend - self.center_[TREND]) / self.scale_[TREND]
            change[TREND] = np.expm1(trend)
        if KURTOSIS in self.center_ and "vibration_rms" in deviations:
            peaked = trailing_kurtosis(deviations["vibration_rms"], self.trend_windows)
            peaked[~np.isfinite(deviations["vibration_rms"])] = np.nan
            z[KURTOSIS] = (peaked - self.center_[KURTOSIS]) / self.scale_[KURTOSIS]
            change[KURTOSIS] = peaked - self.center_[KURTOSIS]
        # Each feature is smoothed on its own, so the score and the reasons given for it
        # are the same numbers.
        z = {k: past_median(v, self.smooth_windows) for k, v in z.items()}
        fold = np.abs if self.two_sided else (lambda v: np.maximum(v, 0.0))
        # The trend and the kurtosis explain an alert but do not raise one: a knock that
        # lasts an hour tilts a day's slope and fattens its tails as a wearing bearing does.
        scored = [fold(v) for k, v in z.items() if k not in EXPLANATORY]
        stacked = np.vstack(scored) if scored else None
        score = np.full(len(windows), np.nan)
        if stacked is not None:
            seen = np.isfinite(stacked).any(axis=0)
            score[seen] = np.nanmax(stacked[:, seen], axis=0)
        keep = windows.end_ms > start_ms
        kept = Windows(
            windows.end_ms[keep],
            windows.count[keep],
            windows.load[keep],
            {m: v[keep] for m, v in windows.level.items()},
            {m: v[keep] for m, v in windows.spread.items()},
        )
        return Assessment(
            kept,
            {k: v[keep] for k, v in z.items()},
            {k: v[keep] for k, v in change.items()},
            score[keep],
            health_index(score[keep]),
        )

    def expected(self, samples: Samples, start_ms: int, end_ms: int) -> dict[str, FloatArray]:
        """The healthy level of each deviation's metric per window, at the load of the window.

        In the metric's comparison scale: log of the level for vibration, kelvins for the
        bearing. Comparing two models' expectations over the same windows tells how far
        apart their ideas of healthy are.
        """
        check_is_fitted(self, "features_")
        windows = window_stats(samples, self.reference_load_, start_ms, end_ms, self.window_ms)
        out: dict[str, FloatArray] = {}
        for name, metric, _ in DEVIATIONS:
            if name in self.regressors_ and metric in windows.level:
                design = self._design(windows, metric)
                out[name] = self._predict(self.regressors_[name], design) + self.center_[name]
        return out

    def summary(self) -> dict[str, Any]:
        """What the model was trained on and learned, for the model registry."""
        check_is_fitted(self, "features_")
        return {
            "trained_from_ms": self.trained_from_ms_,
            "trained_to_ms": self.trained_to_ms_,
            "n_windows": self.n_windows_,
            "reference_load": self.reference_load_,
            "features": list(self.features_),
            "scale": dict(self.scale_),
        }


_NAMES: Final = {
    "vibration_rms": "vibration (RMS velocity)",
    "vibration_peak": "vibration peaks",
    "bearing_temp": "bearing temperature",
    TREND: "vibration trend",
    KURTOSIS: "vibration",
}


def explain(assessment: Assessment, index: int, top: int = 3, min_z: float = 2.0) -> list[Reason]:
    """The features that moved most at window ``index``, largest first, in plain words."""
    reasons: list[Reason] = []
    for feature, values in assessment.z.items():
        value = float(values[index])
        if not math.isfinite(value) or value < min_z:
            continue
        moved = float(assessment.change[feature][index])
        name = _NAMES.get(feature, feature)
        if feature == "bearing_temp":
            text = f"{name} {moved:+.1f} K above healthy at this load"
        elif feature == TREND:
            text = f"{name}: rising {100 * moved:.0f}% per day"
        elif feature == KURTOSIS:
            text = f"{name} comes and goes (kurtosis over a day {moved:+.1f} above healthy)"
        else:
            text = f"{name} {100 * moved:.0f}% above healthy at this load"
        reasons.append(Reason(feature, round(value, 2), round(moved, 4), f"{text} (z {value:.1f})"))
    reasons.sort(key=lambda r: r.z, reverse=True)
    return reasons[:top]

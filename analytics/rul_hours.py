"""Hours to failure of a machine from its health features, trained on run-to-failure lives.

The inputs are what the condition monitor already computes for each running window after
its model has learned (:class:`analytics.health.Assessment`): how far each condition
metric sits above its healthy level at that load (vibration as a fraction, the bearing
in kelvins), the anomaly score, and the load. Those are comparable between machines of
different sizes, so one regressor serves a fleet. Each life — from a reset to the
failure that ended it — is a unit of :class:`analytics.rul.RulRegressor`, its running
windows the cycles, and the target the calendar hours left to the failure, capped at
:data:`CAP_H` (a machine further from failure than that is simply healthy). The interval
comes from out-of-fold residuals grouped by life.

The same rows are built from a monitoring run in memory (training) and from the stored
``machine_health`` rows of a segment (the maintenance job), by :func:`health_rows`, so a
life reads the same either way.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no py.typed

from analytics.health import Assessment
from analytics.rul import RulRegressor
from analytics.series import MS_PER_HOUR, FloatArray, Int64Array

CAP_H: Final = 14 * 24.0
FEATURES: Final = ("vibration_rms", "vibration_peak", "bearing_temp")
COLUMNS: Final = (*(f"{name}_change" for name in FEATURES), "score", "load")
COVERAGE: Final = 0.8

BoolArray = npt.NDArray[np.bool_]


def health_rows(assessment: Assessment) -> tuple[Int64Array, FloatArray]:
    """The running, assessed windows of an assessment: their ends and their feature rows.

    Columns (:data:`COLUMNS`): the change of each of :data:`FEATURES` (0 where the
    machine lacks the metric), the anomaly score and the load.
    """
    n = len(assessment.windows)
    columns = [assessment.change.get(name, np.zeros(n)) for name in FEATURES]
    columns += [assessment.score, assessment.windows.load]
    x = np.column_stack(columns) if n else np.empty((0, len(COLUMNS)))
    keep = np.all(np.isfinite(x), axis=1)
    return assessment.windows.end_ms[keep], x[keep]


@dataclass(frozen=True)
class Life:
    """One life of a machine: its assessed windows and, if it ended in one, the failure."""

    end_ms: Int64Array
    x: FloatArray
    failed_ms: int | None


def lives_between(
    assessment: Assessment,
    start_ms: int,
    end_ms: int,
    resets_ms: Sequence[int],
    failures_ms: Sequence[int],
    window_ms: int = MS_PER_HOUR,
) -> list[Life]:
    """A machine's lives between its resets, each cut at the first failure in it, if any.

    ``assessment`` covers ``[start_ms, end_ms)`` as :func:`analytics.monitor.monitor`
    gives it, and the lives are its segments: each reset rounded up to the next window
    (a window the reset falls in belongs to the life before it). A life holds the rows
    of :func:`health_rows` of its segment up to its failure.
    """
    ends, x = health_rows(assessment)
    failures = sorted(failures_ms)
    cuts = sorted(
        {start_ms, end_ms}
        | {
            start_ms + -(-(r - start_ms) // window_ms) * window_ms
            for r in resets_ms
            if start_ms < r < end_ms
        }
    )
    lives = []
    for start, stop in itertools.pairwise(cuts):
        failed = next((f for f in failures if start <= f < stop), None)
        until = failed if failed is not None else stop
        keep = (ends > start) & (ends <= until)
        lives.append(Life(ends[keep], x[keep], failed))
    return lives


class HoursToFailure(BaseEstimator):  # type: ignore[misc]
    """Remaining useful life in hours, with an interval, for lives in progress.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the gradient boosting.
    window : int, default=48
        Running hours in the sliding window of :class:`~analytics.rul.RulRegressor`.
    baseline_cycles : int, default=24
        First running hours of a life that define its own baseline.
    capped_within_h : float, default=24.0
        A middle estimate this close to :data:`CAP_H` reads as "more than the cap": the
        model learned every window further from failure than the cap as the cap, and
        its estimates of healthy windows scatter just below it.
    n_threads : int or None, default=1
        OpenMP threads of the gradient boosting (None: one per core). One by default:
        a prediction covers a few thousand rows, and with other work on the CPU the
        waiting threads of a wider pool make it a hundred times slower.

    Attributes
    ----------
    model_ : RulRegressor
        The regressor, in running hours with the target capped at :data:`CAP_H`.
    lives_ : int
        Run-to-failure lives trained on.
    windows_ : int
        Windows of those lives trained on.
    """

    def __init__(
        self,
        random_state: int = 0,
        window: int = 48,
        baseline_cycles: int = 24,
        capped_within_h: float = 24.0,
        n_threads: int | None = 1,
    ) -> None:
        self.random_state = random_state
        self.window = window
        self.baseline_cycles = baseline_cycles
        self.capped_within_h = capped_within_h
        self.n_threads = n_threads

    def fit(self, lives: Sequence[Life]) -> HoursToFailure:
        """Fit on the lives that ended in a failure (the others carry no target).

        Raises:
            ValueError: fewer than three lives ended in a failure.
        """
        failed = [life for life in lives if life.failed_ms is not None and len(life.end_ms)]
        if len(failed) < 3:
            raise ValueError(f"need at least 3 run-to-failure lives, got {len(failed)}")
        units, cycles, rows, target = [], [], [], []
        for unit, life in enumerate(failed):
            assert life.failed_ms is not None
            units.append(np.full(len(life.end_ms), unit))
            cycles.append(np.arange(len(life.end_ms)))
            rows.append(life.x)
            target.append((life.failed_ms - life.end_ms) / MS_PER_HOUR)
        regressor = RulRegressor(
            window=self.window,
            cap=CAP_H,
            baseline_cycles=self.baseline_cycles,
            min_samples_leaf=50,
            random_state=self.random_state,
        )
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            self.model_ = regressor.fit(
                np.concatenate(units),
                np.concatenate(cycles),
                np.vstack(rows),
                np.concatenate(target),
            )
        self.lives_ = len(failed)
        self.windows_ = int(sum(len(life.end_ms) for life in failed))
        return self

    def predict_interval(
        self, life: Life, coverage: float = COVERAGE
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Low, middle and high hours to failure at each window of a life, past only.

        All three lie in ``[0, CAP_H]`` with low ≤ middle ≤ high. The estimate of a window
        depends only on the windows of the life up to it.
        """
        check_is_fitted(self, "model_")
        n = len(life.end_ms)
        units = np.zeros(n, dtype=np.int64)
        cycles = np.arange(n, dtype=np.int64)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            low, mid, high = self.model_.predict_interval(units, cycles, life.x, coverage)
        # The target was capped, so hours beyond the cap carry no information.
        return low, mid, np.minimum(high, CAP_H)

    def capped(self, mid: FloatArray) -> BoolArray:
        """Which middle estimates read as "more than :data:`CAP_H` hours"."""
        out: BoolArray = np.asarray(mid, dtype=np.float64) >= CAP_H - self.capped_within_h
        return out

    def summary(self) -> dict[str, Any]:
        """What the model was trained on and how it reads, for the model registry."""
        check_is_fitted(self, "model_")
        return {
            "params": self.get_params(),
            "columns": list(COLUMNS),
            "cap_h": CAP_H,
            "interval_coverage": COVERAGE,
            "training_lives": self.lives_,
            "training_windows": self.windows_,
        }


@dataclass(frozen=True, slots=True)
class RulScore:
    """How hours to failure did on lives that ended in a failure, within the cap of it.

    ``windows`` scored, the mean absolute error of the middle estimate, and the share
    of windows whose true hours lay inside the interval (NaN when none was scored).
    """

    windows: int
    mae_h: float
    coverage: float


def score_lives(
    model: HoursToFailure, lives: Sequence[Life], coverage: float = COVERAGE
) -> RulScore:
    """Score every window of a failed life that lay within :data:`CAP_H` hours of its failure."""
    errors, inside = [], []
    for life in lives:
        if life.failed_ms is None or not len(life.end_ms):
            continue
        low, mid, high = model.predict_interval(life, coverage)
        truth = (life.failed_ms - life.end_ms) / MS_PER_HOUR
        near = truth <= CAP_H
        errors.append(np.abs(mid - truth)[near])
        inside.append(((low <= truth) & (truth <= high))[near])
    error = np.concatenate(errors) if errors else np.empty(0)
    held = np.concatenate(inside) if inside else np.empty(0, dtype=bool)
    return RulScore(
        int(error.size),
        float(error.mean()) if error.size else float("nan"),
        float(held.mean()) if held.size else float("nan"),
    )


def pooled(scores: Sequence[RulScore]) -> RulScore:
    """The score of several held-out sets taken together (weighted by windows scored)."""
    scored = [s for s in scores if s.windows]
    total = sum(s.windows for s in scored)
    if not total:
        return RulScore(0, float("nan"), float("nan"))
    return RulScore(
        total,
        sum(s.mae_h * s.windows for s in scored) / total,
        sum(s.coverage * s.windows for s in scored) / total,
    )

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from analytics.health import Assessment
from analytics.rul import RulRegressor
from analytics.series import MS_PER_HOUR, FloatArray, Int64Array

CAP_H: Final = 14 * 24.0
FEATURES: Final = ("vibration_rms", "vibration_peak", "bearing_temp")


def health_rows(assessment: Assessment) -> tuple[Int64Array, FloatArray]:
    """The running, assessed windows of an assessment: their ends and their feature rows.

    Columns: the change of each of :data:`FEATURES` (0 where the machine lacks the
    metric), the anomaly score and the load.
    """
    n = len(assessment.windows)
    columns = [
        assessment.change.get(name, np.zeros(n)) if name in assessment.change else np.zeros(n)
        for name in FEATURES
    ]
    columns += [assessment.score, assessment.windows.load]
    x = np.column_stack(columns) if n else np.empty((0, len(FEATURES) + 2))
    keep = np.all(np.isfinite(x), axis=1)
    return assessment.windows.end_ms[keep], x[keep]


@dataclass(frozen=True)
class Life:
    """One life of a machine: its assessed windows and, if it ended in one, the failure."""

    end_ms: Int64Array
    x: FloatArray
    failed_ms: int | None


class HoursToFailure:
    """Remaining useful life in hours, with an interval, for lives in progress.

    Parameters are those of :class:`~analytics.rul.RulRegressor` with windows counted
    in running hours: ``window`` 48, ``baseline_cycles`` 24, ``cap`` :data:`CAP_H`.
    """

    def __init__(self, random_state: int = 0, window: int = 48, baseline_cycles: int = 24):
        self.random_state = random_state
        self.window = window
        self.baseline_cycles = baseline_cycles

    def fit(self, lives: list[Life]) -> HoursToFailure:
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
        self.model_ = RulRegressor(
            window=self.window,
            cap=CAP_H,
            baseline_cycles=self.baseline_cycles,
            min_samples_leaf=50,
            random_state=self.random_state,
        ).fit(
            np.concatenate(units),
            np.concatenate(cycles),
            np.vstack(rows),
            np.concatenate(target),
        )
        self.lives_ = len(failed)
        return self

    def predict_interval(
        self, life: Life, coverage: float = 0.8
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Low, middle and high hours to failure at each window of a life, past only."""
        n = len(life.end_ms)
        units = np.zeros(n, dtype=np.int64)
        cycles = np.arange(n, dtype=np.int64)
        return self.model_.predict_interval(units, cycles, life.x, coverage)

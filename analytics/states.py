"""Machine states (off, idle, running) from active power, for machines that do not report them.

Each machine gets its own thresholds, learned from its power readings:

* **off** is near zero: readings at or below ``off_floor_w`` and, more generally, below
  half of the lowest tail of the lowest non-zero power level.
* The non-zero readings are modelled as a Gaussian mixture on log power with one to
  three components, the number chosen by BIC. Components whose densities run into each
  other without a dip are one *level*. With two or more levels the lowest is **idle**
  and everything above it **running** (a warm-up or heat-up level above the running
  level therefore counts as running). With a single level the machine has no idle draw
  that can be told apart from zero (a servo sewing motor, say): its non-zero readings
  are running and its idle time shows as off. Running against not running is what such
  a machine's numbers rest on; its idle energy is near zero either way.

Prediction applies hysteresis: a reading above ``running_above_w_`` is running, one
below ``running_below_w_`` is not, and one in between (or not finite) is ambiguous.
Ambiguous readings take the state of the previous clear reading (``fill="previous"``,
classic hysteresis, right for instantaneous readings) or of the next one
(``fill="next"``, right for readings that are the mean power over the interval ending
at their timestamp, as meters that integrate between samples report: a reading in the
band is a transition, and the state at its timestamp is the one it was moving into).
Finally runs shorter than ``min_dwell_s`` are merged into the run before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Self

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.mixture import GaussianMixture

from analytics.series import FloatArray, Int64Array, Series

OFF: Final = 0
IDLE: Final = 1
RUNNING: Final = 2
STATE_NAMES: Final = ("off", "idle", "running")

Int8Array = npt.NDArray[np.int8]

_GRID_POINTS: Final = 512
_DIP_RATIO: Final = 0.8  # a density dip below this share of the lower peak separates two levels
_MAIN_SHARE: Final = 0.25  # of the running readings, for a component to be a running level
_TAIL_SD: Final = 3.0  # a level's readings lie within this many standard deviations of it


@dataclass(frozen=True, slots=True)
class StateInterval:
    """A machine was in ``state`` (0 off, 1 idle, 2 running) from ``start_ms`` until ``end_ms``."""

    state: int
    start_ms: int
    end_ms: int


class PowerStateClassifier(BaseEstimator):  # type: ignore[misc]
    """Classify active power readings of one machine as off, idle or running.

    Parameters
    ----------
    min_dwell_s : float, default=0.0
        Runs of one state shorter than this are merged into the run before them.
        Zero keeps every run; real machines can switch between idle and running
        within one sample interval, so keep it at or below the shortest real dwell.
    hysteresis : float, default=0.9
        Width of the band around the idle/running boundary, as a fraction of the gap
        between the idle level's upper tail and the running level's lower tail (three
        standard deviations, in log power): 0 is a single threshold, 1 the whole gap.
    fill : {"previous", "next"}, default="next"
        Which clear neighbour an ambiguous reading takes its state from (see module).
    off_floor_w : float, default=2.0
        Readings at or below this are zero whatever the data say.
    max_levels : int, default=3
        Most mixture components tried on the non-zero log power.
    min_level_share : float, default=0.02
        Smallest share of non-zero readings that a level needs to count as idle.
    max_fit_samples : int, default=100_000
        Fit on a random subsample of at most this many non-zero readings.
    random_state : int, numpy.random.Generator or None, default=None
        Seeds the subsample and the mixture fits.

    Attributes
    ----------
    off_below_w_ : float
        Readings below this (when not running) are off.
    running_above_w_ : float
        Readings above this are running (the upper hysteresis threshold).
    running_below_w_ : float
        Running ends at a reading below this (the lower hysteresis threshold).
    idle_w_ : float or None
        Typical idle draw, None when the machine has no idle level distinct from zero.
    running_w_ : float or None
        Typical running draw (median of non-zero readings above the boundary).
    n_levels_ : int
        Non-zero power levels found (1 or 2: idle and running, or running alone).
    n_components_ : int
        Mixture components chosen by BIC.
    """

    def __init__(
        self,
        min_dwell_s: float = 0.0,
        hysteresis: float = 0.9,
        fill: Literal["previous", "next"] = "next",
        off_floor_w: float = 2.0,
        max_levels: int = 3,
        min_level_share: float = 0.02,
        max_fit_samples: int = 100_000,
        random_state: int | np.random.Generator | None = None,
    ) -> None:
        self.min_dwell_s = min_dwell_s
        self.hysteresis = hysteresis
        self.fill = fill
        self.off_floor_w = off_floor_w
        self.max_levels = max_levels
        self.min_level_share = min_level_share
        self.max_fit_samples = max_fit_samples
        self.random_state = random_state

    def _validate_params(self) -> None:
        if not 0.0 <= self.hysteresis <= 1.0:
            raise ValueError(f"hysteresis must be in [0, 1], got {self.hysteresis}")
        if self.min_dwell_s < 0.0:
            raise ValueError(f"min_dwell_s must be >= 0, got {self.min_dwell_s}")
        if self.fill not in ("previous", "next"):
            raise ValueError(f"fill must be 'previous' or 'next', got {self.fill!r}")
        if self.off_floor_w < 0.0:
            raise ValueError(f"off_floor_w must be >= 0, got {self.off_floor_w}")
        if not 1 <= self.max_levels <= 6:
            raise ValueError(f"max_levels must be between 1 and 6, got {self.max_levels}")
        if self.max_fit_samples < 10:
            raise ValueError(f"max_fit_samples must be >= 10, got {self.max_fit_samples}")

    def fit(self, series: Series, y: object = None) -> Self:
        """Learn this machine's off, idle and running thresholds from its power readings."""
        self._validate_params()
        power_w = np.asarray(series.values, dtype=np.float64)
        power_w = power_w[np.isfinite(power_w)]
        floor_w = max(float(self.off_floor_w), 1e-3)
        nonzero = power_w[power_w > floor_w]
        rng = np.random.default_rng(self.random_state)
        self.off_below_w_ = floor_w
        self.idle_w_: float | None = None
        self.running_w_: float | None = None
        self.n_levels_ = 0
        self.n_components_ = 0
        if nonzero.size < 10:  # too little to learn from: anything above the floor runs
            self.running_above_w_ = self.running_below_w_ = floor_w
            if nonzero.size:
                self.running_w_ = float(np.median(nonzero))
                self.n_levels_ = 1
            return self
        if nonzero.size > self.max_fit_samples:
            nonzero = rng.choice(nonzero, size=self.max_fit_samples, replace=False)
        log_p = np.log10(nonzero).reshape(-1, 1)
        mixture = self._best_mixture(log_p, rng)
        means = mixture.means_.ravel()
        sds = np.sqrt(mixture.covariances_.ravel())
        weights = mixture.weights_.ravel()
        order = np.argsort(means)
        means, sds, weights = means[order], sds[order], weights[order]
        self.n_components_ = int(means.size)
        groups = _levels(means, sds, weights)
        low = groups[0]
        lowest_tail = float(means[low[0]] - 3.0 * sds[low[0]])
        self.off_below_w_ = max(floor_w, 0.5 * 10.0**lowest_tail)
        idle_share = float(weights[low].sum())
        if len(groups) < 2 or idle_share < self.min_level_share:
            self.n_levels_ = 1
            self.running_above_w_ = self.running_below_w_ = self.off_below_w_
            self.running_w_ = float(np.median(nonzero))
            return self
        upper = groups[1][0]
        top_idle = low[-1]
        boundary = _boundary(means, sds, weights, low, top_idle, upper)
        idle_tail = min(boundary, float(means[top_idle] + _TAIL_SD * sds[top_idle]))
        running_tail = max(boundary, _lower_tail(means, sds, weights, groups[1:]))
        h = float(self.hysteresis)
        low_edge = boundary - h * (boundary - idle_tail)
        high_edge = boundary + h * (running_tail - boundary)
        self.n_levels_ = 2
        self.running_below_w_ = float(10.0**low_edge)
        self.running_above_w_ = float(10.0**high_edge)
        split_w = 10.0**boundary
        self.idle_w_ = float(np.median(nonzero[nonzero <= split_w]))
        self.running_w_ = float(np.median(nonzero[nonzero > split_w]))
        return self

    def _best_mixture(self, log_p: FloatArray, rng: np.random.Generator) -> GaussianMixture:
        best: GaussianMixture | None = None
        best_bic = np.inf
        for k in range(1, self.max_levels + 1):
            if log_p.shape[0] < 5 * k:
                break
            seed = int(rng.integers(2**31 - 1))
            model = GaussianMixture(
                n_components=k, reg_covar=1e-4, n_init=1, random_state=seed
            ).fit(log_p)
            bic = float(model.bic(log_p))
            if bic < best_bic:
                best, best_bic = model, bic
        assert best is not None
        return best

    def predict(self, series: Series) -> Int8Array:
        """The state of every reading: 0 off, 1 idle, 2 running."""
        running_above = self._fitted()
        power_w = np.asarray(series.values, dtype=np.float64)
        if power_w.size == 0:
            return np.zeros(0, dtype=np.int8)
        finite = np.isfinite(power_w)
        clear = np.full(power_w.size, -1, dtype=np.int8)
        clear[finite & (power_w > running_above)] = 1
        clear[finite & (power_w < self.running_below_w_)] = 0
        if self.running_above_w_ == self.running_below_w_:
            clear[finite & (power_w == running_above)] = 0
        running = _fill(clear, forward=self.fill == "previous")
        states = np.where(running, RUNNING, IDLE).astype(np.int8)
        off = ~running & ((power_w < self.off_below_w_) | (power_w <= self.off_floor_w))
        if self.n_levels_ < 2:  # no idle level: everything not running is off
            off = ~running
        states[off] = OFF
        states[~running & ~finite] = OFF if self.n_levels_ < 2 else IDLE
        if self.min_dwell_s > 0.0:
            states = merge_short_runs(series.ts_ms, states, self.min_dwell_s)
        return states

    def fit_predict(self, series: Series, y: object = None) -> Int8Array:
        """Fit on ``series`` and return its states."""
        return self.fit(series).predict(series)

    def _fitted(self) -> float:
        above = getattr(self, "running_above_w_", None)
        if above is None:
            raise RuntimeError("PowerStateClassifier is not fitted yet; call fit first")
        return float(above)


def _levels(means: FloatArray, sds: FloatArray, weights: FloatArray) -> list[list[int]]:
    """Group sorted mixture components into levels: neighbours without a density dip merge."""
    groups: list[list[int]] = [[0]]
    for i in range(1, means.size):
        grid = np.linspace(means[i - 1], means[i], _GRID_POINTS)
        density = _density(grid, means, sds, weights)
        peak = min(density[0], density[-1])
        if float(density.min()) < _DIP_RATIO * peak:
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def _lower_tail(
    means: FloatArray, sds: FloatArray, weights: FloatArray, groups: list[list[int]]
) -> float:
    """Lowest tail of the running components that hold a real share of the running readings.

    Broad components of little weight stand for readings that straddle a change (a mean
    over an interval with both states in it); they belong in the ambiguous band.
    """
    members = np.array([i for group in groups for i in group])
    share = weights[members] / weights[members].sum()
    main = members[share >= _MAIN_SHARE]
    if main.size == 0:
        main = members[[int(np.argmax(share))]]
    return float(np.min(means[main] - _TAIL_SD * sds[main]))


def _boundary(
    means: FloatArray, sds: FloatArray, weights: FloatArray, low: list[int], a: int, b: int
) -> float:
    """Log power between components ``a`` and ``b`` where the idle level stops being likelier."""
    grid = np.linspace(means[a], means[b], _GRID_POINTS)
    idle = _density(grid, means[low], sds[low], weights[low])
    total = _density(grid, means, sds, weights)
    above = np.nonzero(idle < 0.5 * total)[0]
    if above.size == 0:
        return float(grid[-1])
    return float(grid[above[0]])


def _density(x: FloatArray, means: FloatArray, sds: FloatArray, weights: FloatArray) -> FloatArray:
    z = (x[:, None] - means[None, :]) / sds[None, :]
    parts = weights[None, :] * np.exp(-0.5 * z * z) / sds[None, :]
    result: FloatArray = parts.sum(axis=1)
    return result


def _fill(clear: Int8Array, *, forward: bool) -> npt.NDArray[np.bool_]:
    """Resolve ambiguous entries (-1) from the previous (forward) or next clear entry."""
    values = clear if forward else clear[::-1]
    n = values.size
    index = np.where(values >= 0, np.arange(n), -1)
    np.maximum.accumulate(index, out=index)
    filled = np.where(index >= 0, values[np.maximum(index, 0)], -1)
    if (filled < 0).any():  # nothing clear before: take the first clear one after
        clear_at = np.nonzero(values >= 0)[0]
        filled[filled < 0] = values[clear_at[0]] if clear_at.size else 0
    running: npt.NDArray[np.bool_] = filled == 1
    return running if forward else running[::-1]


def merge_short_runs(ts_ms: Int64Array, states: Int8Array, min_dwell_s: float) -> Int8Array:
    """States with every run shorter than ``min_dwell_s`` merged into the run before it.

    A run lasts from its first reading to the first reading of the next run; the last
    run is never shortened away. A short first run takes the state of the first long one.
    """
    n = states.size
    if n == 0 or min_dwell_s <= 0.0:
        return states.copy()
    starts = np.concatenate(([0], np.nonzero(np.diff(states))[0] + 1))
    ends_ms = np.append(ts_ms[starts[1:]], np.iinfo(np.int64).max)
    durations_ms = ends_ms - ts_ms[starts]
    long_run = durations_ms >= min_dwell_s * 1000.0
    long_run[-1] = True
    run_index = np.where(long_run, np.arange(starts.size), -1)
    np.maximum.accumulate(run_index, out=run_index)
    first_long = int(np.argmax(long_run))
    run_index[run_index < 0] = first_long
    run_states = states[starts][run_index]
    lengths = np.diff(np.append(starts, n))
    merged: Int8Array = np.repeat(run_states, lengths).astype(np.int8)
    return merged


def intervals(ts_ms: Int64Array, states: Int8Array) -> list[StateInterval]:
    """Runs of equal state as intervals; each ends at the next run's first reading.

    The last interval ends one median sample interval after the last reading.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    values = np.asarray(states)
    if ts.shape != values.shape:
        raise ValueError("ts_ms and states must have the same length")
    if ts.size == 0:
        return []
    starts = np.concatenate(([0], np.nonzero(np.diff(values))[0] + 1))
    step = int(np.median(np.diff(ts))) if ts.size > 1 else 0
    ends = np.append(ts[starts[1:]], ts[-1] + step)
    return [
        StateInterval(int(values[s]), int(ts[s]), int(e))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]

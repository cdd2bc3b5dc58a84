"""Least squares with a cooling change point: the balance point found by search over a grid.

The design is ``[fixed | CDH(bp) · group_j]``: fixed columns (time of week, production)
and, for each group (e.g. occupied and unoccupied hours), cooling degrees above the
balance point ``bp``. Only the cooling columns change with ``bp``, so the cross
products of the fixed columns are computed once and each candidate costs a small
solve. The candidate with the lowest BIC wins, including a model with no cooling
term, so a site whose load does not follow the weather is not forced to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analytics.series import FloatArray


@dataclass(frozen=True)
class ChangePointFit:
    """The chosen model: ``coef`` over the ``n_base`` base columns, then the cooling columns."""

    balance_point_c: float | None
    coef: FloatArray
    sse: float
    n_params: int
    n_base: int

    @property
    def cooling_slopes(self) -> FloatArray:
        """Energy per degree above the balance point, per group (empty without cooling)."""
        return np.asarray(self.coef[self.n_base :], dtype=np.float64)


def cooling_columns(temps_c: FloatArray, balance_point_c: float, groups: FloatArray) -> FloatArray:
    """Degrees above the balance point, one column per group weight (n × g)."""
    degrees = np.maximum(temps_c - balance_point_c, 0.0)
    return np.asarray(degrees[:, None] * groups, dtype=np.float64)


@dataclass(frozen=True)
class Design:
    """The fixed columns: one indicator per level of ``codes`` (e.g. hour of the week),
    then ``dense`` columns (e.g. production). Kept apart so the indicators' cross
    products are counts and sums, computed in one pass."""

    codes: np.ndarray
    n_levels: int
    dense: FloatArray

    @property
    def size(self) -> int:
        """Number of fixed columns."""
        return self.n_levels + int(self.dense.shape[1])

    def cross(self, columns: FloatArray) -> FloatArray:
        """The fixed columns' cross products with ``columns`` (size × m)."""
        sums = [
            np.bincount(self.codes, weights=columns[:, j], minlength=self.n_levels)
            for j in range(columns.shape[1])
        ]
        return np.vstack([np.column_stack(sums), self.dense.T @ columns])

    def gram(self) -> FloatArray:
        """The fixed columns' own cross products."""
        counts = np.bincount(self.codes, minlength=self.n_levels).astype(np.float64)
        by_level = self.cross(self.dense)[: self.n_levels]
        return np.block([[np.diag(counts), by_level], [by_level.T, self.dense.T @ self.dense]])

    def times(self, coef: FloatArray) -> FloatArray:
        """The fixed columns times their coefficients."""
        levels = coef[: self.n_levels]
        return np.asarray(levels[self.codes] + self.dense @ coef[self.n_levels :], dtype=np.float64)


def predict(
    fit: ChangePointFit, design: Design, temps_c: FloatArray, groups: FloatArray
) -> FloatArray:
    """A fitted model's values for some points."""
    values = design.times(fit.coef[: fit.n_base])
    if fit.balance_point_c is not None:
        values = values + cooling_columns(temps_c, fit.balance_point_c, groups) @ fit.cooling_slopes
    return np.asarray(values, dtype=np.float64)


def _inverse(matrix: FloatArray, ridge: float) -> FloatArray:
    """The (pseudo-)inverse of a symmetric cross-product matrix, each diagonal raised by
    ``ridge`` of itself: scale-free, and harmless to columns of very different sizes."""
    regularised = matrix + np.diag(np.diag(matrix)) * ridge
    return np.asarray(np.linalg.pinv(regularised, hermitian=True), dtype=np.float64)


def _bic(n: int, sse: float, k: int) -> float:
    return n * math.log(max(sse, 1e-12) / n) + k * math.log(n)


def balance_point_grid(temps_c: FloatArray, step_k: float, min_share: float) -> FloatArray:
    """Candidate balance points that leave at least ``min_share`` of points on each side."""
    low = float(np.quantile(temps_c, min_share))
    high = float(np.quantile(temps_c, 1.0 - min_share))
    if high <= low:
        return np.zeros(0)
    start = math.ceil(low / step_k) * step_k
    return np.arange(start, high + 1e-9, step_k)


def fit_change_point(
    design: Design,
    y: FloatArray,
    temps_c: FloatArray,
    groups: FloatArray,
    *,
    step_k: float = 0.5,
    min_share: float = 0.05,
    ridge: float = 1e-8,
) -> ChangePointFit:
    """Fit ``y`` on the fixed columns plus cooling above the best balance point.

    Args:
        design: the fixed columns.
        y: the response (n).
        temps_c: air temperature per point (n).
        groups: one weight column per cooling slope (n × g), e.g. occupied and
            unoccupied shares; a single column of ones for one slope.
        step_k: grid step of the balance-point search.
        min_share: least share of points above and below any candidate.
        ridge: relative ridge that keeps empty or collinear columns solvable.
    """
    n, k, g = y.size, design.size, groups.shape[1]
    base_y = design.cross(y[:, None])[:, 0]
    yy = float(y @ y)
    # Every candidate shares the fixed block: invert it once and solve each candidate
    # through its Schur complement (a g × g system).
    gram_inv = _inverse(design.gram(), ridge)
    coef = gram_inv @ base_y
    best = ChangePointFit(None, coef, yy - float(coef @ base_y), k, k)
    best_bic = _bic(n, best.sse, k)
    for bp in balance_point_grid(temps_c, step_k, min_share):
        cooling = cooling_columns(temps_c, float(bp), groups)
        cross = design.cross(cooling)
        cooling_y = cooling.T @ y
        projected = gram_inv @ cross
        schur = cooling.T @ cooling - cross.T @ projected
        slopes = _inverse(schur, ridge) @ (cooling_y - projected.T @ base_y)
        if bool(np.any(slopes < 0.0)):
            continue  # cooling that lowers consumption is not a cooling load
        levels = coef - projected @ slopes
        sse = yy - float(levels @ base_y) - float(slopes @ cooling_y)
        bic = _bic(n, sse, k + g + 1)
        if bic < best_bic:
            fit = ChangePointFit(float(bp), np.concatenate([levels, slopes]), sse, k + g + 1, k)
            best, best_bic = fit, bic
    return best

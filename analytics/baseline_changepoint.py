"""Least squares with change points: cooling and heating balance points found by search.

The design is ``[fixed | CDH(bc) · group_j | HDH(bh) · group_j]``: fixed columns (time
of week, production), then, for each group (e.g. occupied and unoccupied hours),
cooling degrees above the cooling balance point ``bc`` and heating degrees below the
heating balance point ``bh``. Only the weather columns change with the balance points,
so the fixed block is inverted once and each candidate costs a small solve through its
Schur complement. With ``bh ≤ bc`` no hour has both cooling and heating degrees, so the
two blocks are orthogonal and every pair of candidates reuses the cross products of its
two halves. The candidate with the lowest BIC wins among: no weather term, cooling
only, heating only, and both; a slope that lowers consumption is not a weather load, so
candidates with a negative slope are dropped. A site whose load does not follow the
weather is not forced to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analytics.series import FloatArray


@dataclass(frozen=True)
class ChangePointFit:
    """The chosen model: ``coef`` over the ``n_base`` base columns, then the cooling
    slopes (when ``balance_point_c`` is set), then the heating slopes (when
    ``heating_balance_point_c`` is set), one per group each."""

    balance_point_c: float | None
    coef: FloatArray
    sse: float
    n_params: int
    n_base: int
    heating_balance_point_c: float | None = None

    def _weather_slopes(self) -> tuple[FloatArray, FloatArray]:
        slopes = np.asarray(self.coef[self.n_base :], dtype=np.float64)
        empty = np.zeros(0)
        if self.balance_point_c is None:
            return empty, slopes if self.heating_balance_point_c is not None else empty
        if self.heating_balance_point_c is None:
            return slopes, empty
        half = slopes.size // 2
        return slopes[:half], slopes[half:]

    @property
    def cooling_slopes(self) -> FloatArray:
        """Energy per degree above the cooling balance point, per group (empty without)."""
        return self._weather_slopes()[0]

    @property
    def heating_slopes(self) -> FloatArray:
        """Energy per degree below the heating balance point, per group (empty without)."""
        return self._weather_slopes()[1]


def cooling_columns(temps_c: FloatArray, balance_point_c: float, groups: FloatArray) -> FloatArray:
    """Degrees above the balance point, one column per group weight (n × g)."""
    degrees = np.maximum(temps_c - balance_point_c, 0.0)
    return np.asarray(degrees[:, None] * groups, dtype=np.float64)


def heating_columns(temps_c: FloatArray, balance_point_c: float, groups: FloatArray) -> FloatArray:
    """Degrees below the balance point, one column per group weight (n × g)."""
    degrees = np.maximum(balance_point_c - temps_c, 0.0)
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
    if fit.heating_balance_point_c is not None:
        heating = heating_columns(temps_c, fit.heating_balance_point_c, groups)
        values = values + heating @ fit.heating_slopes
    return np.asarray(values, dtype=np.float64)


def _inverse(matrix: FloatArray, ridge: float) -> FloatArray:
    """The (pseudo-)inverse of a symmetric cross-product matrix (or a stack of them), each
    diagonal raised by ``ridge`` of itself: scale-free, and harmless to columns of very
    different sizes."""
    size = matrix.shape[-1]
    regularised = matrix * (1.0 + ridge * np.eye(size))
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


@dataclass(frozen=True)
class _Candidates:
    """One weather term (cooling or heating) at each balance point of the grid, reduced
    to what the solve needs; ``m`` candidates, ``k`` fixed columns, ``g`` groups."""

    balance_points_c: FloatArray  # (m,)
    cross: FloatArray  # (m, k, g): cross products with the fixed columns
    projected: FloatArray  # (m, k, g): the fixed block's inverse times the cross products
    schur: FloatArray  # (m, g, g): own cross products less their part in the fixed block
    rhs: FloatArray  # (m, g): cross products with y less their part in the fixed block

    @classmethod
    def of(
        cls,
        balance_points_c: FloatArray,
        columns_at: Callable[[float], FloatArray],
        design: Design,
        gram_inv: FloatArray,
        base_y: FloatArray,
        y: FloatArray,
    ) -> _Candidates:
        """Reduce the columns ``columns_at(bp)`` for every balance point of a grid."""
        crosses, projected, schur, rhs = [], [], [], []
        for bp in balance_points_c.tolist():
            columns = columns_at(bp)
            cross = design.cross(columns)
            inner = gram_inv @ cross
            crosses.append(cross)
            projected.append(inner)
            schur.append(columns.T @ columns - cross.T @ inner)
            rhs.append(columns.T @ y - inner.T @ base_y)
        k, g = gram_inv.shape[0], 0 if not rhs else rhs[0].size
        return cls(
            balance_points_c,
            np.asarray(crosses).reshape(-1, k, g),
            np.asarray(projected).reshape(-1, k, g),
            np.asarray(schur).reshape(-1, g, g),
            np.asarray(rhs).reshape(-1, g),
        )


def _solve(schur: FloatArray, rhs: FloatArray, ridge: float) -> FloatArray:
    """The weather slopes of a stack of candidates (b × s), from their Schur complements."""
    return np.asarray((_inverse(schur, ridge) @ rhs[..., None])[..., 0], dtype=np.float64)


def _pairs(cooling: _Candidates, heating: _Candidates) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """Schur complements and right-hand sides of every (cooling, heating) pair, and the
    mask of pairs whose heating balance point is at or below the cooling one.

    The weather columns of such a pair never overlap (no hour is both above the one and
    below the other), so the pair's own cross products are block diagonal and only the
    fixed block couples the two halves."""
    c, h = cooling.rhs.shape[0], heating.rhs.shape[0]
    g = cooling.rhs.shape[1]
    coupling = -np.einsum("ckg,hkf->chgf", cooling.cross, heating.projected)
    schur = np.empty((c, h, 2 * g, 2 * g))
    schur[:, :, :g, :g] = cooling.schur[:, None]
    schur[:, :, g:, g:] = heating.schur[None, :]
    schur[:, :, :g, g:] = coupling
    schur[:, :, g:, :g] = np.swapaxes(coupling, 2, 3)
    rhs = np.concatenate(
        [
            np.broadcast_to(cooling.rhs[:, None], (c, h, g)),
            np.broadcast_to(heating.rhs[None], (c, h, g)),
        ],
        axis=2,
    )
    mask = heating.balance_points_c[None, :] <= cooling.balance_points_c[:, None]
    return schur[mask], rhs[mask], mask


def fit_change_point(
    design: Design,
    y: FloatArray,
    temps_c: FloatArray,
    groups: FloatArray,
    *,
    step_k: float = 0.5,
    min_share: float = 0.05,
    ridge: float = 1e-8,
    heating: bool = True,
) -> ChangePointFit:
    """Fit ``y`` on the fixed columns plus cooling and heating at the best balance points.

    Args:
        design: the fixed columns.
        y: the response (n).
        temps_c: air temperature per point (n).
        groups: one weight column per weather slope (n × g), e.g. occupied and
            unoccupied shares; a single column of ones for one slope.
        step_k: grid step of the balance-point search.
        min_share: least share of points above and below any candidate.
        ridge: relative ridge that keeps empty or collinear columns solvable.
        heating: also search a heating balance point (at or below the cooling one).
    """
    n, k, g = y.size, design.size, groups.shape[1]
    base_y = design.cross(y[:, None])[:, 0]
    gram_inv = _inverse(design.gram(), ridge)
    coef = gram_inv @ base_y
    sse_fixed = float(y @ y) - float(coef @ base_y)
    best = ChangePointFit(None, coef, sse_fixed, k, k)
    grid = balance_point_grid(temps_c, step_k, min_share)
    if grid.size == 0:
        return best

    def reduce(columns_at: Callable[[float], FloatArray]) -> _Candidates:
        return _Candidates.of(grid, columns_at, design, gram_inv, base_y, y)

    cooling = reduce(lambda bp: cooling_columns(temps_c, bp, groups))
    heating_grid = reduce(lambda bp: heating_columns(temps_c, bp, groups)) if heating else None
    # Every model is one stack of candidates: (which cooling, which heating) per row.
    options: list[tuple[FloatArray, FloatArray, np.ndarray, np.ndarray]] = []
    rows = np.arange(grid.size)
    none = np.full(grid.size, -1)
    options.append((cooling.schur, cooling.rhs, rows, none))
    if heating_grid is not None:
        options.append((heating_grid.schur, heating_grid.rhs, none, rows))
        schur, rhs, mask = _pairs(cooling, heating_grid)
        which_c, which_h = np.nonzero(mask)
        options.append((schur, rhs, which_c, which_h))
    best_bic = _bic(n, sse_fixed, k)
    for schur, rhs, which_c, which_h in options:
        if rhs.shape[0] == 0:
            continue
        slopes = _solve(schur, rhs, ridge)
        # A slope that lowers consumption is not a weather load.
        allowed = ~np.any(slopes < 0.0, axis=1)
        sse = sse_fixed - np.sum(slopes * rhs, axis=1)
        terms = int(which_c[0] >= 0) + int(which_h[0] >= 0)
        n_params = k + terms * (g + 1)  # slopes and one balance point per term
        bic = n * np.log(np.maximum(sse, 1e-12) / n) + n_params * math.log(n)
        bic = np.where(allowed, bic, np.inf)
        i = int(np.argmin(bic))
        if bic[i] < best_bic:
            best_bic = float(bic[i])
            best = _assemble(
                (cooling, int(which_c[i])),
                (heating_grid, int(which_h[i])),
                coef,
                slopes[i],
                float(sse[i]),
                n_params,
            )
    return best


def _assemble(
    cooling: tuple[_Candidates, int],
    heating: tuple[_Candidates | None, int],
    coef: FloatArray,
    slopes: FloatArray,
    sse: float,
    n_params: int,
) -> ChangePointFit:
    """The fit of one candidate (the index of its cooling and heating term, or -1):
    the fixed levels adjusted for its weather slopes."""
    projected = []
    balance_points: list[float | None] = []
    for candidates, which in (cooling, heating):
        if candidates is None or which < 0:
            balance_points.append(None)
            continue
        projected.append(candidates.projected[which])
        balance_points.append(float(candidates.balance_points_c[which]))
    levels = coef - np.hstack(projected) @ slopes
    return ChangePointFit(
        balance_points[0],
        np.concatenate([levels, slopes]),
        sse,
        n_params,
        coef.size,
        balance_points[1],
    )

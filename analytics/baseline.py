"""Energy baselines of a site (IPMVP Option C): hourly and daily change-point regressions.

:class:`HourlyBaseline` models hourly kWh on the local hour of the week (168
indicators), production (units per hour), the operating share of the hour when known,
cooling degree-hours above a balance point and heating degree-hours below another,
both found by search (separate slopes for occupied and unoccupied hours).
:class:`DailyBaseline` models daily kWh on the day of the week, production, cooling
and heating degree-days. Both report Guideline 14 statistics
in-sample and on held-out weeks, project into a reporting period and compute savings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from analytics import mv
from analytics.baseline_changepoint import ChangePointFit, Design, fit_change_point, predict
from analytics.baseline_frame import (
    HOURS_PER_WEEK,
    MS_PER_DAY,
    DailyFrame,
    HourlyFrame,
    hour_of_week,
    utc_offsets_ms,
)
from analytics.baseline_savings import SavingsReport, savings_report
from analytics.series import MS_PER_HOUR, FloatArray, Int64Array

MS_PER_WEEK = 7 * MS_PER_DAY

FrameT = TypeVar("FrameT", HourlyFrame, DailyFrame)


Granularity = Literal["hourly", "daily"]


@dataclass(frozen=True)
class FitStatistics:
    """Guideline 14 statistics of a baseline on some data (percentages in percent).

    ``meets_guideline14`` applies the hourly limits to an hourly model and the monthly
    limits to a daily model's calendar-month totals.
    """

    r_squared: float
    cv_rmse_pct: float
    nmbe_pct: float
    n: int
    p: int
    granularity: Granularity
    meets_guideline14: bool


@dataclass(frozen=True)
class _Columns:
    design: Design
    temps_c: FloatArray
    groups: FloatArray
    energy_kwh: FloatArray
    start_ms: Int64Array


def _statistics(
    actual: FloatArray, predicted: FloatArray, p: int, granularity: Granularity, verdict: bool
) -> FitStatistics:
    return FitStatistics(
        r_squared=mv.r_squared(actual, predicted),
        cv_rmse_pct=mv.cv_rmse(actual, predicted, p),
        nmbe_pct=mv.nmbe(actual, predicted, p),
        n=int(actual.size),
        p=p,
        granularity=granularity,
        meets_guideline14=verdict,
    )


class _ChangePointBaseline(BaseEstimator, Generic[FrameT]):  # type: ignore[misc]
    """What the hourly and daily baselines share: fit, held-out check, projection, savings."""

    timezone: str
    balance_point_step_k: float
    holdout_folds: int
    heating: bool

    _period_ms: int

    def _statistics(self, columns: _Columns, predicted: FloatArray, p: int) -> FitStatistics:
        raise NotImplementedError

    def _columns(self, frame: FrameT, fitting: bool) -> _Columns:
        raise NotImplementedError

    def _check_frame(self, frame: object) -> FrameT:
        raise NotImplementedError

    def _search(self, columns: _Columns) -> ChangePointFit:
        return fit_change_point(
            columns.design,
            columns.energy_kwh,
            columns.temps_c,
            columns.groups,
            step_k=self.balance_point_step_k,
            heating=self.heating,
        )

    @staticmethod
    def _predict_with(fit: ChangePointFit, columns: _Columns) -> FloatArray:
        return predict(fit, columns.design, columns.temps_c, columns.groups)

    def fit(self, frame: FrameT, y: None = None) -> _ChangePointBaseline[FrameT]:
        """Fit the baseline on a baseline period's frame (``y`` is unused: kWh is in the frame).

        Sets ``balance_point_c_`` and ``heating_balance_point_c_`` (cooling and heating
        balance points, each None when the load does not follow the weather that way),
        ``coef_``, ``n_params_``, ``in_sample_`` and ``held_out_`` (:class:`FitStatistics`,
        ``held_out_`` None when the period is too short to hold weeks out),
        ``residual_autocorrelation_`` and ``n_baseline_``.
        """
        frame = self._check_frame(frame)
        if self.holdout_folds < 2:
            raise ValueError(f"holdout_folds must be at least 2, got {self.holdout_folds}")
        columns = self._columns(frame, fitting=True)
        fit = self._search(columns)
        predicted = self._predict_with(fit, columns)
        actual = columns.energy_kwh
        self.fit_ = fit
        self.balance_point_c_ = fit.balance_point_c
        self.heating_balance_point_c_ = fit.heating_balance_point_c
        self.coef_ = fit.coef
        self.n_params_ = fit.n_params
        self.n_baseline_ = int(actual.size)
        self.in_sample_ = self._statistics(columns, predicted, fit.n_params)
        self.residual_autocorrelation_ = mv.lag1_autocorrelation(actual - predicted)
        self.held_out_ = self._held_out(columns)
        return self

    def _held_out(self, columns: _Columns) -> FitStatistics | None:
        """Statistics of predictions for whole weeks left out of the fit, k-fold."""
        weeks = columns.start_ms // MS_PER_WEEK
        distinct = np.unique(weeks)
        folds = min(self.holdout_folds, int(distinct.size))
        if folds < 2:
            return None
        fold_of_week = {int(w): i % folds for i, w in enumerate(distinct.tolist())}
        fold = np.array([fold_of_week[int(w)] for w in weeks.tolist()])
        predicted = np.empty_like(columns.energy_kwh)
        for k in range(folds):
            test = fold == k
            train = _subset(columns, ~test)
            fit = self._search(train)
            predicted[test] = self._predict_with(fit, _subset(columns, test))
        return self._statistics(columns, predicted, 0)

    def predict(self, frame: FrameT) -> FloatArray:
        """Modelled kWh per period of ``frame`` (its own kWh is ignored)."""
        check_is_fitted(self, "fit_")
        columns = self._columns(self._check_frame(frame), fitting=False)
        return self._predict_with(self.fit_, columns)

    def project(self, reporting: FrameT) -> FloatArray:
        """The adjusted baseline: what the site would have used in the reporting periods."""
        return self.predict(reporting)

    def savings(self, reporting: FrameT, *, price: mv.Price | None = None) -> SavingsReport:
        """Avoided energy and cost over a reporting period, with Guideline 14 FSU (68 %).

        Args:
            reporting: the reporting period's frame, with its measured kWh.
            price: a flat price per kWh, or a callable ``(period_start_ms, kwh) -> cost``
                per period (a tariff); None reports energy only.
        """
        frame = self._check_frame(reporting)
        adjusted = self.project(frame)
        columns = self._columns(frame, fitting=False)
        return savings_report(
            period_start_ms=columns.start_ms,
            period_ms=self._period_ms,
            adjusted_baseline_kwh=adjusted,
            reporting_kwh=columns.energy_kwh,
            baseline_cv_rmse_pct=self.in_sample_.cv_rmse_pct,
            baseline_points=self.n_baseline_,
            residual_autocorrelation=self.residual_autocorrelation_,
            n_params=self.n_params_,
            price=price,
        )


def _subset(columns: _Columns, mask: np.ndarray) -> _Columns:
    design = columns.design
    return _Columns(
        Design(design.codes[mask], design.n_levels, design.dense[mask]),
        columns.temps_c[mask],
        columns.groups[mask],
        columns.energy_kwh[mask],
        columns.start_ms[mask],
    )


class HourlyBaseline(_ChangePointBaseline[HourlyFrame]):
    """Hourly site energy on time of week, production, operating share, cooling and heating.

    Parameters
    ----------
    timezone : str
        IANA zone of the site; the hour of the week is local.
    balance_point_step_k : float
        Step of the balance-point search (°C), over the range the data covers.
    holdout_folds : int
        Whole weeks are dealt into this many folds for the held-out statistics.
    occupancy_slopes : bool
        Separate weather slopes for occupied and unoccupied hours (occupied: the
        frame's ``operating`` share, else hours with production).
    heating : bool
        Also search a heating balance point (at or below the cooling one).

    Attributes
    ----------
    balance_point_c_ : float or None
        The fitted cooling balance point; None when cooling did not improve the fit.
    heating_balance_point_c_ : float or None
        The fitted heating balance point; None when heating did not improve the fit.
    coef_ : ndarray
        168 hour-of-week levels, kWh per unit, kWh at full operation (if given), then
        kWh per degree-hour above the cooling balance point and below the heating
        balance point (each per occupancy group, when fitted).
    in_sample_, held_out_ : FitStatistics
        Guideline 14 statistics on the fitted data and on held-out weeks.
    """

    _period_ms = MS_PER_HOUR

    def __init__(
        self,
        timezone: str = "UTC",
        balance_point_step_k: float = 0.5,
        holdout_folds: int = 5,
        occupancy_slopes: bool = True,
        heating: bool = True,
    ) -> None:
        self.timezone = timezone
        self.balance_point_step_k = balance_point_step_k
        self.holdout_folds = holdout_folds
        self.occupancy_slopes = occupancy_slopes
        self.heating = heating

    def _statistics(self, columns: _Columns, predicted: FloatArray, p: int) -> FitStatistics:
        actual = columns.energy_kwh
        verdict = mv.meets_guideline14(
            "hourly", mv.cv_rmse(actual, predicted, p), mv.nmbe(actual, predicted, p)
        )
        return _statistics(actual, predicted, p, "hourly", verdict)

    def _check_frame(self, frame: object) -> HourlyFrame:
        if not isinstance(frame, HourlyFrame):
            raise TypeError(f"expected an HourlyFrame, got {type(frame).__name__}")
        return frame

    def _columns(self, frame: HourlyFrame, fitting: bool) -> _Columns:
        n = len(frame)
        how = hour_of_week(frame.hour_start_ms, self.timezone)
        extras = [frame.units]
        if fitting:
            self.uses_operating_ = frame.operating is not None
        if self.uses_operating_:
            if frame.operating is None:
                raise ValueError("the baseline was fitted with operating shares; give them here")
            extras.append(frame.operating)
        design = Design(how, HOURS_PER_WEEK, np.column_stack(extras))
        occupied = (
            frame.operating if frame.operating is not None else (frame.units > 0).astype(float)
        )
        if fitting:
            share = float(occupied.mean())
            self.two_groups_ = self.occupancy_slopes and 0.0 < share < 1.0
        groups = (
            np.column_stack([occupied, 1.0 - occupied]) if self.two_groups_ else np.ones((n, 1))
        )
        return _Columns(design, frame.ambient_c, groups, frame.energy_kwh, frame.hour_start_ms)


class DailyBaseline(_ChangePointBaseline[DailyFrame]):
    """Daily site energy on day of week, production, operating hours and degree-days.

    Parameters
    ----------
    timezone : str
        IANA zone of the site; days are local.
    balance_point_step_k : float
        Step of the balance-point search (°C) on the daily mean temperature.
    holdout_folds : int
        Whole weeks are dealt into this many folds for the held-out statistics.
    heating : bool
        Also search a heating balance point (at or below the cooling one).

    Attributes
    ----------
    balance_point_c_ : float or None
        The fitted cooling balance point; None when cooling did not improve the fit.
    heating_balance_point_c_ : float or None
        The fitted heating balance point; None when heating did not improve the fit.
    coef_ : ndarray
        7 day-of-week levels, kWh per unit, kWh per operating hour (if given), kWh
        per cooling degree-day, kWh per heating degree-day (each when fitted).
    in_sample_, held_out_ : FitStatistics
        Daily statistics; the Guideline 14 verdict is on calendar-month totals.
    """

    _period_ms = MS_PER_DAY

    def __init__(
        self,
        timezone: str = "UTC",
        balance_point_step_k: float = 0.5,
        holdout_folds: int = 5,
        heating: bool = True,
    ) -> None:
        self.timezone = timezone
        self.balance_point_step_k = balance_point_step_k
        self.holdout_folds = holdout_folds
        self.heating = heating

    def _check_frame(self, frame: object) -> DailyFrame:
        if not isinstance(frame, DailyFrame):
            raise TypeError(f"expected a DailyFrame, got {type(frame).__name__}")
        return frame

    def _columns(self, frame: DailyFrame, fitting: bool) -> _Columns:
        n = len(frame)
        local_day = (frame.day_start_ms + utc_offsets_ms(frame.day_start_ms, self.timezone)) // (
            MS_PER_DAY
        )
        weekday = np.asarray((local_day + 3) % 7, dtype=np.int64)  # Monday 0
        extras = [frame.units]
        if fitting:
            self.uses_operating_ = frame.operating_h is not None
        if self.uses_operating_:
            if frame.operating_h is None:
                raise ValueError("the baseline was fitted with operating hours; give them here")
            extras.append(frame.operating_h)
        design = Design(weekday, 7, np.column_stack(extras))
        return _Columns(
            design, frame.ambient_c, np.ones((n, 1)), frame.energy_kwh, frame.day_start_ms
        )

    def _statistics(self, columns: _Columns, predicted: FloatArray, p: int) -> FitStatistics:
        actual = columns.energy_kwh
        months = _local_months(columns.start_ms, self.timezone)
        _, inverse = np.unique(months, return_inverse=True)
        actual_m = np.bincount(inverse, weights=actual)
        predicted_m = np.bincount(inverse, weights=predicted)
        verdict = mv.meets_guideline14(
            "monthly", mv.cv_rmse(actual_m, predicted_m), mv.nmbe(actual_m, predicted_m)
        )
        return _statistics(actual, predicted, p, "daily", verdict)


def _local_months(start_ms: Int64Array, timezone: str) -> np.ndarray:
    local = start_ms + utc_offsets_ms(start_ms, timezone)
    return np.asarray(local.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64))

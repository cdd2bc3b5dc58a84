"""``tonle bench energy``: the hourly baseline against a simulated intervention with known truth.

A simulated site runs a baseline year and a reporting year; the reporting year is run
twice with the same seed, with and without a known intervention, so the run without
it is the true counterfactual. The hourly baseline fitted on the baseline year is
projected onto the reporting year and scored against that counterfactual, beside
opendsm's CalTRACK hourly model on the same data when opendsm is installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from analytics import mv
from analytics.baseline import DailyBaseline, HourlyBaseline
from analytics.baseline_frame import HourlyFrame, daily_from_hourly
from analytics.baseline_opendsm import INSTALL_HINT, caltrack_hourly_predict, opendsm_available
from simulators.hourly import HourlySite, hourly_site, with_sample_interval
from simulators.layout import Intervention, Layout, load_layout

Progress = Callable[[str], None]

# Local midnight, 1 January 2026 in Phnom Penh (UTC+7); both periods are 52 whole weeks.
BASELINE_START = datetime(2025, 12, 31, 17, 0, tzinfo=UTC)
PERIOD_DAYS = 364
OPENDSM_KEYS = (
    "opendsm_hourly_cv_rmse",
    "opendsm_hourly_nmbe",
    "opendsm_savings_error_pp",
    "opendsm_fit_seconds",
)


@dataclass(frozen=True)
class BenchSettings:
    """What the benchmark simulates: layout, period length, sample interval, intervention."""

    layout: str = "garment"
    days: int = PERIOD_DAYS
    sample_interval_s: float = 300.0
    idle_power_factor: float = 0.85
    running_power_factor: float = 0.95
    base_load_factor: float = 0.95
    compare_opendsm: bool = True


def frame_of(site: HourlySite) -> HourlyFrame:
    """An hourly baseline frame from simulated hours (without the operating share)."""
    return HourlyFrame.of(site.hour_start_ms, site.energy_kwh, site.ambient_c, site.units)


def _savings_pct(baseline_kwh: np.ndarray, actual_kwh: np.ndarray) -> float:
    total = float(np.sum(baseline_kwh))
    return (total - float(np.sum(actual_kwh))) / total * 100.0


def _simulate(
    settings: BenchSettings, seed: int, progress: Progress
) -> tuple[Layout, HourlySite, HourlySite, HourlySite, float]:
    layout = with_sample_interval(load_layout(settings.layout), settings.sample_interval_s)
    reporting_start = datetime.fromtimestamp(
        BASELINE_START.timestamp() + settings.days * 86_400, tz=UTC
    )
    intervention = Intervention(
        start=reporting_start,
        idle_power_factor=settings.idle_power_factor,
        running_power_factor=settings.running_power_factor,
        base_load_factor=settings.base_load_factor,
    )
    intervened = layout.model_copy(update={"intervention": intervention})
    started = time.perf_counter()
    progress(f"simulating the baseline year of {layout.site} (seed {seed})")
    baseline = hourly_site(layout, seed=seed, start=BASELINE_START, days=settings.days)
    progress("simulating the reporting year without the intervention (the counterfactual)")
    counterfactual = hourly_site(layout, seed=seed, start=reporting_start, days=settings.days)
    progress("simulating the reporting year with the intervention")
    reporting = hourly_site(intervened, seed=seed, start=reporting_start, days=settings.days)
    return layout, baseline, counterfactual, reporting, time.perf_counter() - started


def _scores(
    prefix: str,
    projected: np.ndarray,
    counterfactual: np.ndarray,
    actual: np.ndarray,
    true_savings_pct: float,
) -> dict[str, Any]:
    keep = np.isfinite(projected)
    estimated = _savings_pct(projected[keep], actual[keep])
    return {
        f"{prefix}hourly_cv_rmse": round(mv.cv_rmse(counterfactual[keep], projected[keep]), 3),
        f"{prefix}hourly_nmbe": round(mv.nmbe(counterfactual[keep], projected[keep]), 3),
        f"{prefix}estimated_savings_pct": round(estimated, 3),
        f"{prefix}savings_error_pp": round(abs(estimated - true_savings_pct), 3),
        f"{prefix}hours_predicted": int(np.count_nonzero(keep)),
    }


def run_energy_bench(
    seed: int, progress: Progress, settings: BenchSettings | None = None
) -> dict[str, Any]:
    """Simulate, fit, project and score; the figures as a JSON-ready dict.

    CV(RMSE), NMBE, savings and errors in percent (12.3 means 12.3 %); ``*_pp`` in
    percentage points; opendsm's figures are None (with ``opendsm_note``) when it is
    not installed.
    """
    settings = settings or BenchSettings()
    layout, baseline, counterfactual, reporting, simulate_s = _simulate(settings, seed, progress)
    base_frame = frame_of(baseline)
    cf_frame = frame_of(counterfactual)
    rep_frame = frame_of(reporting)
    true_savings = _savings_pct(cf_frame.energy_kwh, rep_frame.energy_kwh)

    progress("fitting the hourly baseline")
    started = time.perf_counter()
    model = HourlyBaseline(timezone=layout.timezone).fit(base_frame)
    fit_s = time.perf_counter() - started
    projected = model.project(rep_frame)
    report = model.savings(rep_frame)
    figures: dict[str, Any] = {"seed": seed, "layout": layout.site}
    figures |= _scores("", projected, cf_frame.energy_kwh, rep_frame.energy_kwh, true_savings)
    figures |= {
        "true_savings_pct": round(true_savings, 3),
        "fsu_pct_68": round(report.fsu_pct, 2),
        "balance_point_c": model.balance_point_c_,
        "baseline_cv_rmse": round(model.in_sample_.cv_rmse_pct, 3),
        "baseline_nmbe": round(model.in_sample_.nmbe_pct, 4),
        "baseline_r2": round(model.in_sample_.r_squared, 4),
        "heldout_cv_rmse": None
        if model.held_out_ is None
        else round(model.held_out_.cv_rmse_pct, 3),
        "heldout_nmbe": None if model.held_out_ is None else round(model.held_out_.nmbe_pct, 3),
        "meets_guideline14": model.in_sample_.meets_guideline14,
        "fit_seconds": round(fit_s, 3),
    }

    # The same model without production, on the information CalTRACK gets (time and weather).
    blind = HourlyFrame.of(
        base_frame.hour_start_ms,
        base_frame.energy_kwh,
        base_frame.ambient_c,
        np.zeros(len(base_frame)),
    )
    blind_rep = HourlyFrame.of(
        rep_frame.hour_start_ms, rep_frame.energy_kwh, rep_frame.ambient_c, np.zeros(len(rep_frame))
    )
    blind_model = HourlyBaseline(timezone=layout.timezone, holdout_folds=2).fit(blind)
    blind_scores = _scores(
        "", blind_model.project(blind_rep), cf_frame.energy_kwh, rep_frame.energy_kwh, true_savings
    )
    figures["no_production_hourly_cv_rmse"] = blind_scores["hourly_cv_rmse"]
    figures["no_production_savings_error_pp"] = blind_scores["savings_error_pp"]

    daily = DailyBaseline(timezone=layout.timezone).fit(
        daily_from_hourly(base_frame, layout.timezone)
    )
    daily_rep = daily_from_hourly(rep_frame, layout.timezone)
    daily_cf = daily_from_hourly(cf_frame, layout.timezone)
    daily_projected = daily.project(daily_rep)
    figures |= {
        "daily_cv_rmse": round(mv.cv_rmse(daily_cf.energy_kwh, daily_projected), 3),
        "daily_savings_error_pp": round(
            abs(_savings_pct(daily_projected, daily_rep.energy_kwh) - true_savings), 3
        ),
        "daily_balance_point_c": daily.balance_point_c_,
    }

    if settings.compare_opendsm:
        figures |= _opendsm_figures(base_frame, cf_frame, rep_frame, true_savings, progress)
    else:
        figures |= dict.fromkeys(OPENDSM_KEYS) | {"opendsm_note": "opendsm comparison skipped"}
    figures["simulate_seconds"] = round(simulate_s, 1)
    figures["sample_interval_s"] = settings.sample_interval_s
    return figures


def _opendsm_figures(
    base: HourlyFrame,
    counterfactual: HourlyFrame,
    reporting: HourlyFrame,
    true_savings: float,
    progress: Progress,
) -> dict[str, Any]:
    empty: dict[str, Any] = dict.fromkeys(OPENDSM_KEYS)
    if not opendsm_available():
        return empty | {"opendsm_note": f"opendsm not installed ({INSTALL_HINT})"}
    progress("fitting opendsm's CalTRACK hourly model")
    started = time.perf_counter()
    predicted = caltrack_hourly_predict(
        base.hour_start_ms,
        base.energy_kwh,
        base.ambient_c,
        reporting.hour_start_ms,
        reporting.ambient_c,
    )
    seconds = time.perf_counter() - started
    if not bool(np.any(np.isfinite(predicted))):
        return empty | {"opendsm_note": "opendsm returned no predictions"}
    scores = _scores(
        "opendsm_", predicted, counterfactual.energy_kwh, reporting.energy_kwh, true_savings
    )
    return scores | {"opendsm_fit_seconds": round(seconds, 3)}

"""``tonle bench energy``: the hourly baseline against a simulated intervention with known truth.

A simulated site runs a baseline year and a reporting year; the reporting year is run
twice with the same seed, with and without a known intervention, so the run without
it is the true counterfactual. The hourly baseline fitted on the baseline year is
projected onto the reporting year and scored against that counterfactual, beside
opendsm's CalTRACK hourly model on the same data when opendsm is installed.

:func:`run_sample_meters_bench` runs both models on opendsm's own bundled hourly sample
meters, whose reporting year carries a known 10 % saving.
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
from analytics.baseline_opendsm import (
    INSTALL_HINT,
    SAMPLE_METERS,
    SampleMeter,
    caltrack_hourly_fit,
    caltrack_hourly_model_predict,
    caltrack_hourly_predict,
    load_sample_meter,
    opendsm_available,
)
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
SAMPLE_KEYS = (
    "samples_tonle_cv_rmse",
    "samples_opendsm_cv_rmse",
    "samples_cv_gap_pp",
    "samples_tonle_baseline_cv_rmse",
    "samples_opendsm_baseline_cv_rmse",
    "samples_tonle_savings_error_pp",
    "samples_opendsm_savings_error_pp",
    "samples_meters",
    "samples_by_meter",
    "samples_seconds",
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


def _meter_scores(
    meter: SampleMeter, baseline_predicted: np.ndarray, reporting_predicted: np.ndarray
) -> dict[str, float]:
    """One model on one sample meter: in-sample CV(RMSE) on the baseline year, and on the
    reporting year against the known counterfactual (the prediction less the known
    saving), with the saving it estimates."""
    base = meter.baseline.kwh
    rep = meter.reporting.kwh
    in_base = np.isfinite(baseline_predicted)
    in_rep = np.isfinite(reporting_predicted)
    after = reporting_predicted[in_rep] * (1.0 - meter.true_savings_pct / 100.0)
    estimated = _savings_pct(reporting_predicted[in_rep], rep[in_rep])
    return {
        "cv_rmse": round(mv.cv_rmse(rep[in_rep], after), 3),
        "baseline_cv_rmse": round(mv.cv_rmse(base[in_base], baseline_predicted[in_base]), 3),
        "savings_pct": round(estimated, 3),
        "savings_error_pp": round(abs(estimated - meter.true_savings_pct), 3),
    }


def run_sample_meters_bench(
    progress: Progress, meters: tuple[str, ...] = SAMPLE_METERS
) -> dict[str, Any]:
    """Tonle's hourly baseline and CalTRACK's side by side on opendsm's sample meters.

    Each meter's year before its blackout is the baseline, the year after it the
    reporting period (a known 10 % saving). Both models see time and temperature only.
    ``samples_*_cv_rmse`` is the reporting year's CV(RMSE) against the known
    counterfactual (out of sample, in percent), averaged over the meters;
    ``samples_cv_gap_pp`` is Tonle's less CalTRACK's (positive: Tonle is worse).
    Every figure is None, with ``samples_note``, when opendsm is not installed.
    """
    if not opendsm_available():
        return dict.fromkeys(SAMPLE_KEYS) | {
            "samples_note": f"opendsm not installed ({INSTALL_HINT})"
        }
    started = time.perf_counter()
    by_meter: dict[str, dict[str, dict[str, float]]] = {}
    for name in meters:
        progress(f"opendsm sample meter {name}: fitting Tonle's baseline and CalTRACK's")
        meter = load_sample_meter(name)
        by_meter[name] = {
            "tonle": _meter_scores(meter, *_tonle_predictions(meter)),
            "opendsm": _meter_scores(meter, *_caltrack_predictions(meter)),
        }

    def mean(model: str, figure: str) -> float:
        return round(float(np.mean([m[model][figure] for m in by_meter.values()])), 3)

    tonle_cv, opendsm_cv = mean("tonle", "cv_rmse"), mean("opendsm", "cv_rmse")
    return {
        "samples_tonle_cv_rmse": tonle_cv,
        "samples_opendsm_cv_rmse": opendsm_cv,
        "samples_cv_gap_pp": round(tonle_cv - opendsm_cv, 3),
        "samples_tonle_baseline_cv_rmse": mean("tonle", "baseline_cv_rmse"),
        "samples_opendsm_baseline_cv_rmse": mean("opendsm", "baseline_cv_rmse"),
        "samples_tonle_savings_error_pp": mean("tonle", "savings_error_pp"),
        "samples_opendsm_savings_error_pp": mean("opendsm", "savings_error_pp"),
        "samples_meters": list(by_meter),
        "samples_by_meter": by_meter,
        "samples_seconds": round(time.perf_counter() - started, 1),
    }


def _tonle_predictions(meter: SampleMeter) -> tuple[np.ndarray, np.ndarray]:
    def frame(period: Any) -> HourlyFrame:
        return HourlyFrame.of(period.start_ms, period.kwh, period.temp_c, np.zeros(period.kwh.size))

    base = frame(meter.baseline)
    model = HourlyBaseline(timezone=meter.timezone, holdout_folds=2).fit(base)
    return model.predict(base), model.project(frame(meter.reporting))


def _caltrack_predictions(meter: SampleMeter) -> tuple[np.ndarray, np.ndarray]:
    base, rep = meter.baseline, meter.reporting
    model = caltrack_hourly_fit(base.start_ms, base.kwh, base.temp_c)
    return (
        caltrack_hourly_model_predict(model, base.start_ms, base.temp_c),
        caltrack_hourly_model_predict(model, rep.start_ms, rep.temp_c),
    )

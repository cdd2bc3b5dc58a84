"""The energy benchmark end to end on a short horizon (the full run is ``tonle bench energy``)."""

from __future__ import annotations

import importlib
import importlib.util
import json

import pytest

from tonle.cli.bench_energy import BenchSettings, run_energy_bench, run_sample_meters_bench

# The module, not the command of the same name that ``tonle.cli`` exports.
bench_energy = importlib.import_module("tonle.cli.bench_energy")

REQUIRED = (
    "hourly_cv_rmse",
    "hourly_nmbe",
    "savings_error_pp",
    "opendsm_hourly_cv_rmse",
    "fit_seconds",
)


def test_a_short_bench_scores_the_baseline_against_the_true_counterfactual() -> None:
    messages: list[str] = []
    settings = BenchSettings(days=28, sample_interval_s=300.0, compare_opendsm=False)
    figures = run_energy_bench(2, messages.append, settings)
    json.dumps(figures)  # JSON-ready
    for key in REQUIRED:
        assert key in figures
    assert figures["opendsm_hourly_cv_rmse"] is None and "skipped" in figures["opendsm_note"]
    assert 0.0 < figures["true_savings_pct"] < 20.0
    assert figures["hourly_cv_rmse"] < 15.0
    assert abs(figures["hourly_nmbe"]) < 3.0
    assert figures["savings_error_pp"] < 2.0
    assert figures["fit_seconds"] < 5.0
    assert messages and messages[0].startswith("simulating the baseline year")


def test_the_same_seed_gives_the_same_figures() -> None:
    settings = BenchSettings(days=14, sample_interval_s=300.0, compare_opendsm=False)
    first = run_energy_bench(5, lambda _: None, settings)
    again = run_energy_bench(5, lambda _: None, settings)
    timing = {"fit_seconds", "simulate_seconds"}
    assert {k: v for k, v in first.items() if k not in timing} == {
        k: v for k, v in again.items() if k not in timing
    }


def test_the_sample_meter_bench_runs_one_meter_or_says_opendsm_is_missing() -> None:
    messages: list[str] = []
    meter = "il-gas-hdd-only-hourly"
    figures = run_sample_meters_bench(messages.append, meters=(meter,))
    json.dumps(figures)  # JSON-ready
    if importlib.util.find_spec("opendsm") is None:
        assert figures["samples_tonle_cv_rmse"] is None
        assert figures["samples_opendsm_cv_rmse"] is None
        assert figures["samples_meters"] is None
        assert "not installed" in figures["samples_note"]
        assert not messages
        return
    assert figures["samples_meters"] == [meter]
    tonle, opendsm = figures["samples_by_meter"][meter]["tonle"], figures["samples_opendsm_cv_rmse"]
    assert figures["samples_tonle_cv_rmse"] == tonle["cv_rmse"]
    assert figures["samples_cv_gap_pp"] == pytest.approx(
        figures["samples_tonle_cv_rmse"] - opendsm, abs=1e-3
    )
    assert figures["samples_cv_gap_pp"] <= 1.0  # within a point of CalTRACK, or better
    assert figures["samples_tonle_savings_error_pp"] < 2.0  # the known saving is 10 %
    assert messages and meter in messages[0]


def test_the_sample_meter_bench_without_opendsm_returns_none_with_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_energy, "opendsm_available", lambda: False)
    figures = bench_energy.run_sample_meters_bench(lambda _: None)
    assert set(bench_energy.SAMPLE_KEYS) <= set(figures)
    assert all(figures[key] is None for key in bench_energy.SAMPLE_KEYS)
    assert "not installed" in figures["samples_note"]

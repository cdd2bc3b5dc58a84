"""The energy benchmark end to end on a short horizon (the full run is ``tonle bench energy``)."""

from __future__ import annotations

import json

from tonle.cli.bench_energy import BenchSettings, run_energy_bench

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

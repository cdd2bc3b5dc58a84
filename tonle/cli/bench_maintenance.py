"""``tonle bench maintenance``: early warnings, remaining life and anomalies, side by side.

Three tests, each beside a reference:

- **Simulated fleets** the detector never saw (months of several machines with load
  changes, sensor drift, maintenance resets, benign disturbances and failures): the
  condition monitor (:func:`analytics.monitor.monitor`) against a rolling z-score on
  the same hourly vibration, scored by :mod:`analytics.maintenance_eval` against the
  simulator's truth. The factory's maintenance log (repairs and services) is known to
  both, as it is in a pilot.
- **NASA C-MAPSS FD001**: remaining useful life at the last test cycle (RMSE and PHM08
  score), beside a plain random forest on 30-cycle window features.
- **NAB machine temperature**: scored windows found and false episodes per week after
  the probation period, beside an IsolationForest fitted on the probation period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

from analytics.condition import Samples, reference_load, window_stats
from analytics.episodes import Episode, Hysteresis
from analytics.health import HealthModel
from analytics.maintenance_eval import (
    MachineTruth,
    combine,
    score_machine,
    zscore_episodes,
)
from analytics.monitor import DEFAULT_RULE, MS_PER_DAY
from analytics.rul_hours import HoursToFailure, Life, score_lives
from analytics.series import MS_PER_HOUR
from simulators.fleet import Fleet, MachineHistory
from tonle.cli.rul_training import (
    lives_of,
    resets_of,
    simulated_fleet,
    training_fleets,
    watch,
)

Progress = Callable[[str], None]

FLEET_DAYS: Final = 180.0
FLEET_MACHINES: Final = 12
FLEETS: Final = 2
# The remaining-life regressor learns on fleets of other seeds than the ones it is
# scored on: seed + RUL_SEED_OFFSET + k.
RUL_SEED_OFFSET: Final = 1000
# The z-score reference: the same persistence and merging as the monitor, the textbook
# 3σ to open, over a week of trailing hourly levels.
ZSCORE_WINDOW_MS: Final = 7 * MS_PER_DAY
ZSCORE_BASELINE_RULE: Final = Hysteresis(
    open_at=3.0,
    close_at=2.0,
    open_after=DEFAULT_RULE.open_after,
    close_after=DEFAULT_RULE.close_after,
    merge_gap_ms=DEFAULT_RULE.merge_gap_ms,
)
# NAB's machine temperature is one process value, where a fall is as bad as a rise: the
# same model, two-sided, opening at the textbook 3σ (one feature, no maximum over several).
NAB_RULE: Final = Hysteresis(
    open_at=3.0, close_at=2.0, open_after=3, close_after=12, merge_gap_ms=2 * MS_PER_DAY
)
TARGETS: Final = {
    "cmapss_rmse": ("≤", 13.0),
    "cmapss_score": ("≤", 250.0),
    "event_recall": ("≥", 0.9),
    "episode_precision": ("≥", 0.8),
    "false_per_1000h": ("≤", 0.5),
    "median_lead_h": ("≥", 48.0),
    "p10_lead_h": ("≥", 12.0),
    "nab_windows_found": ("≥", 2.0),
}


def truth_of(fleet: Fleet, history: MachineHistory) -> tuple[MachineTruth, list[int]]:
    """What happened to a machine, and the resets its maintenance log shows."""
    failures = [f for f in fleet.failures if f.machine == history.machine]
    services = [m for m in fleet.maintenance if m.machine == history.machine]
    excluded = [(_ms(f.failed_at), _ms(f.repaired_at) if f.repaired_at else fleet.end_ms)
                for f in failures]  # fmt: skip
    excluded += [(_ms(m.start), _ms(m.end)) for m in services]
    truth = MachineTruth(
        span_ms=(fleet.start_ms, fleet.end_ms),
        failures_ms=tuple(_ms(f.failed_at) for f in failures),
        degradation_ms=tuple(
            (start, end) for start, end, _ in fleet.degradations(history.machine, include_open=True)
        ),
        excluded_ms=tuple(excluded),
    )
    return truth, resets_of(fleet, history.machine)


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def zscore_reference(samples: Samples, start_ms: int, end_ms: int) -> list[Episode]:
    """The rolling z-score of the hourly running vibration level, as episodes."""
    reference = reference_load(samples.load_raw) if samples.load_metric else 1.0
    windows = window_stats(samples, reference, start_ms, end_ms, MS_PER_HOUR)
    level = windows.level.get("vibration_rms")
    if level is None:
        return []
    ok = np.isfinite(level)
    return zscore_episodes(
        windows.end_ms[ok], level[ok], ZSCORE_WINDOW_MS, 24, rule=ZSCORE_BASELINE_RULE
    )


def rul_figures(
    seed: int, fleets: int, machines: int, days: float, test_lives: list[Life], say: Progress
) -> dict[str, Any]:
    """Train hours-to-failure on other seeds' fleets; score it on the test fleets' lives.

    Scored: every assessed window of a test life that ended in a failure within
    :data:`~analytics.rul_hours.CAP_H` hours of it — the error of the middle estimate and
    how often the 80 % interval holds the truth.
    """
    training = training_fleets(seed + RUL_SEED_OFFSET, fleets, machines, days,
                               lambda message: say(f"RUL training {message}"))  # fmt: skip
    model = HoursToFailure(random_state=seed).fit([life for f in training for life in f.lives])
    score = score_lives(model, test_lives)
    return {
        "rul_training_lives": model.lives_,
        "rul_scored_windows": score.windows,
        "rul_mae_h": score.mae_h,
        "rul_interval_coverage": score.coverage,
    }


def fleet_figures(
    seed: int, fleets: int, machines: int, days: float, say: Progress
) -> dict[str, Any]:
    """Monitor and z-score on ``fleets`` simulated fleets (seeds ``seed``, ``seed + 1``, …)."""
    ours, reference = [], []
    lives: list[Life] = []
    simulate_s = monitor_s = 0.0
    for k in range(fleets):
        started = time.perf_counter()
        fleet = simulated_fleet(seed + k, machines, days)
        simulate_s += time.perf_counter() - started
        say(f"fleet seed {seed + k}: {len(fleet.machines)} machines × {days:g} days, "
            f"{len(fleet.failures)} failures, {len(fleet.maintenance)} services")  # fmt: skip
        started = time.perf_counter()
        for watched in watch(fleet):
            truth, _ = truth_of(fleet, watched.history)
            alerts = watched.monitoring.alerts
            ours.append(score_machine([a.episode for a in alerts], truth))
            baseline = zscore_reference(watched.samples, fleet.start_ms, fleet.end_ms)
            reference.append(score_machine(baseline, truth))
            lives += lives_of(fleet, watched)
        monitor_s += time.perf_counter() - started
    score, base = combine(ours), combine(reference)
    figures = {
        "failures": score.failures,
        "caught": score.caught,
        "event_recall": score.event_recall,
        "episodes": score.episodes,
        "episode_precision": score.episode_precision,
        "false_episodes": score.false_episodes,
        "healthy_hours": score.healthy_hours,
        "false_per_1000h": score.false_per_1000h,
        "median_lead_h": score.median_lead_h,
        "p10_lead_h": score.p10_lead_h,
        "baseline_event_recall": base.event_recall,
        "baseline_episode_precision": base.episode_precision,
        "baseline_false_per_1000h": base.false_per_1000h,
        "baseline_median_lead_h": base.median_lead_h,
        "simulate_seconds": simulate_s,
        "monitor_seconds": monitor_s,
    }
    return figures | rul_figures(seed, fleets, machines, days, lives, say)


def nab_figures(directory: Path) -> dict[str, Any]:
    """The monitor (two-sided, one feature) and the IsolationForest on NAB's machine temperature."""
    from analytics.episodes import episodes
    from analytics.nab import isolation_forest_nab, load_nab, probation_end_ms, score_nab

    data = load_nab(directory)
    ts, values = data.ts_ms, data.values
    probation = probation_end_ms(ts)
    start = int(ts[0]) // MS_PER_HOUR * MS_PER_HOUR
    fit_end = probation // MS_PER_HOUR * MS_PER_HOUR
    end = int(ts[-1]) // MS_PER_HOUR * MS_PER_HOUR + MS_PER_HOUR
    samples = Samples(ts, {"bearing_temp": values}, np.full(ts.size, np.nan), None)
    model = HealthModel(two_sided=True).fit(samples, start, fit_end)
    assessment = model.assess(samples, fit_end, end)
    found = episodes(assessment.windows.end_ms, assessment.score, NAB_RULE)
    span = (int(ts[0]), int(ts[-1]))
    ours = score_nab(found, data.windows, probation, span)
    forest = score_nab(isolation_forest_nab(ts, values, probation), data.windows, probation, span)
    return {
        "nab_windows_scored": ours.windows_scored,
        "nab_windows_found": ours.windows_found,
        "nab_false_per_week": ours.false_per_week,
        "nab_iforest_windows_found": forest.windows_found,
        "nab_iforest_false_per_week": forest.false_per_week,
    }


def cmapss_figures(directory: Path, seed: int) -> dict[str, Any]:
    """Remaining useful life on FD001, Tonle's regressor and the random-forest reference."""
    from analytics.cmapss import evaluate_fd001, evaluate_fd001_forest

    ours = evaluate_fd001(directory, random_state=seed)
    forest = evaluate_fd001_forest(directory, random_state=seed)
    return {
        "cmapss_rmse": ours["rmse"],
        "cmapss_score": ours["phm08_score"],
        "cmapss_fit_seconds": ours["fit_seconds"],
        "cmapss_forest_rmse": forest["rmse"],
        "cmapss_forest_score": forest["phm08_score"],
    }


def met(key: str, value: float) -> str:
    """``yes`` or ``NO`` against the target of ``key``; empty without one."""
    if key not in TARGETS:
        return ""
    sense, target = TARGETS[key]
    ok = value <= target if sense == "≤" else value >= target
    return "yes" if ok else "NO"

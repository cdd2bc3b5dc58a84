"""The health model and the monitor on a machine whose failure is known."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pytest

from analytics.condition import Samples
from analytics.health import HealthModel, explain, health_index, past_median
from analytics.monitor import MS_PER_DAY, monitor, review

STEP_MS = 600_000
FAIL_MS = 60 * MS_PER_DAY
ONSET_MS = FAIL_MS - 14 * MS_PER_DAY
REPAIRED_MS = FAIL_MS + 8 * 3_600_000


def machine(days: int = 90, seed: int = 0, fail: bool = True) -> Samples:
    """A day-shift machine whose load changes every 3 days; a bearing wears out at day 60."""
    rng = np.random.default_rng(seed)
    n = days * MS_PER_DAY // STEP_MS
    ts = np.arange(n, dtype=np.int64) * STEP_MS
    hour = (ts // 3_600_000) % 24
    running = (hour >= 7) & (hour < 19)
    regime = np.repeat(rng.uniform(0.5, 1.0, days // 3 + 1), 3 * 144)[:n]
    load = np.where(running, regime * (1 + rng.normal(0, 0.05, n)), 0.0)
    fraction = np.clip((ts - ONSET_MS) / (FAIL_MS - ONSET_MS), 0, None)
    fraction[ts >= FAIL_MS] = 0
    severity = (np.exp(4 * fraction) - 1) / (np.exp(4) - 1) if fail else np.zeros(n)
    wear = 1 + severity * 4 * (0.5 + 0.5 * load)
    vib = np.where(running, 1.5 * (0.6 + 0.4 * load) * wear * (1 + rng.normal(0, 0.05, n)), 0.05)
    peak = 0.2 + 0.12 * vib + 3 * severity
    motor = 30 + 35 * (0.2 + 0.8 * load**2) * running + rng.normal(0, 0.3, n)
    bearing = 30 + 15 * (0.3 + 0.7 * load) * running + 20 * severity + rng.normal(0, 0.2, n)
    metrics = {
        "vibration_rms": vib,
        "vibration_peak": peak,
        "bearing_temp": bearing,
        "motor_temp": motor,
    }
    return Samples(ts, metrics, load * 5000.0, "active_power")


def test_health_index_reads_as_documented() -> None:
    assert health_index(np.array([0.0, 2.0, 4.0, 10.0])).round().tolist() == [100, 94, 66, 11]


def test_past_median_looks_back_only() -> None:
    x = np.array([1.0, 9.0, 2.0, np.nan, 3.0])
    assert past_median(x, 3)[[0, 1, 2, 4]].tolist() == [1.0, 5.0, 2.0, 3.0]
    assert np.isnan(past_median(x, 3)[3])


def test_a_healthy_machine_stays_healthy_whatever_its_load() -> None:
    samples = machine(fail=False)
    model = HealthModel().fit(samples, 0, 7 * MS_PER_DAY)
    assessment = model.assess(samples, 7 * MS_PER_DAY, 90 * MS_PER_DAY)
    running = np.isfinite(assessment.score)
    assert running.sum() > 900
    assert np.nanmax(assessment.score) < 4.0
    assert np.nanmin(assessment.health) > 60.0


def test_the_monitor_warns_days_before_the_failure_and_explains_why() -> None:
    watched = monitor(machine(), 0, 90 * MS_PER_DAY, [REPAIRED_MS])
    before = [a for a in watched.alerts if a.episode.start_ms < FAIL_MS]
    assert len(before) == 1
    alert = before[0]
    lead_h = (FAIL_MS - alert.episode.start_ms) / 3_600_000
    assert 48 <= lead_h <= 14 * 24
    # The repair answers the alert.
    assert alert.episode.end_ms == REPAIRED_MS  # on a window boundary already
    assert alert.severity == "critical"
    features = [reason.feature for reason in alert.reasons]
    assert "vibration_rms" in features or "vibration_peak" in features
    assert all("above healthy" in r.text or "rising" in r.text for r in alert.reasons)
    # A model per segment, and the scheduled retrain was accepted on a healthy month.
    statuses = [(r.status, r.reason.split(" ")[0]) for r in watched.models]
    assert ("active", "retrained") in statuses


def test_a_retrain_on_a_degrading_period_is_refused() -> None:
    samples = machine()
    active = HealthModel().fit(samples, 0, 7 * MS_PER_DAY)
    since, until = FAIL_MS - 7 * MS_PER_DAY, FAIL_MS
    candidate = HealthModel().fit(samples, since, until)
    scores = active.assess(samples, since, until).score
    accepted, why = review(active, candidate, samples, since, until, scores)
    assert not accepted
    assert "not healthy" in why


def test_explanations_name_what_moved_most_first() -> None:
    samples = machine()
    model = HealthModel().fit(samples, 0, 7 * MS_PER_DAY)
    assessment = model.assess(samples, FAIL_MS - 2 * MS_PER_DAY, FAIL_MS)
    worst = int(np.nanargmax(assessment.score))
    reasons = explain(assessment, worst)
    assert reasons
    assert [r.z for r in reasons] == sorted((r.z for r in reasons), reverse=True)


def test_a_model_saved_and_loaded_predicts_identically() -> None:
    samples = machine()
    model = HealthModel().fit(samples, 0, 7 * MS_PER_DAY)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    a = model.assess(samples, 40 * MS_PER_DAY, 60 * MS_PER_DAY)
    b = loaded.assess(samples, 40 * MS_PER_DAY, 60 * MS_PER_DAY)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.health, b.health)
    assert loaded.summary() == model.summary()


def test_too_little_running_to_learn_from_is_a_clear_error() -> None:
    samples = machine()
    with pytest.raises(ValueError, match="running windows"):
        HealthModel().fit(samples, 0, 12 * 3_600_000)


def test_two_sided_models_count_falls() -> None:
    samples = machine(fail=False)
    ts = samples.ts_ms
    temp = 80.0 + np.random.default_rng(1).normal(0, 1.0, ts.size)
    temp[ts > 50 * MS_PER_DAY] -= 15.0
    flat = Samples(ts, {"bearing_temp": temp}, np.full(ts.size, np.nan), None)
    up = HealthModel().fit(flat, 0, 7 * MS_PER_DAY).assess(flat, 45 * MS_PER_DAY, 55 * MS_PER_DAY)
    both = HealthModel(two_sided=True).fit(flat, 0, 7 * MS_PER_DAY)
    falls = both.assess(flat, 45 * MS_PER_DAY, 55 * MS_PER_DAY)
    assert np.nanmax(up.score) < 3.0
    assert np.nanmax(falls.score) > 10.0

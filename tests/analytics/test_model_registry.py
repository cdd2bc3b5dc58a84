"""The model registry in a real database: models stored, checked, promoted and refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from analytics.condition import Samples, align
from analytics.health import HealthModel
from analytics.model_registry import (
    Fit,
    MachineRef,
    ModelIntegrityError,
    active_model,
    dump_model,
    list_models,
    load_active,
    load_model,
    promote,
    record_rejected,
    restore_model,
)
from analytics.series import MS_PER_HOUR, Series, to_ms
from analytics.store import start_run

pytestmark = pytest.mark.db

MS_PER_DAY = 24 * MS_PER_HOUR
START = datetime(2026, 11, 1, 17, tzinfo=UTC)
REF = MachineRef("registry", "line-a", "pump-01")


def synthetic_series(
    seed: int,
    days: int,
    start_ms: int,
    fault_from_day: float | None = None,
    idle_days: float = 0.0,
    step_ms: int = 300_000,
) -> dict[str, Series]:
    """A pump's load, vibration and bearing temperature every 5 minutes, healthy unless told.

    It runs from 01:00 to 13:00 UTC and now and then at night (not at all in its first
    ``idle_days``); vibration and heat follow the load. From ``fault_from_day`` the
    vibration grows by its healthy level every 5 days.
    """
    rng = np.random.default_rng(seed)
    ts = start_ms + np.arange(0, days * MS_PER_DAY, step_ms, dtype=np.int64)
    hour = (ts // MS_PER_HOUR) % 24
    running = ((hour >= 1) & (hour < 13)) | (rng.random(ts.size) < 0.1)
    running &= ts >= start_ms + idle_days * MS_PER_DAY
    wave = 0.5 + 0.3 * np.sin(ts / (5 * MS_PER_HOUR)) + 0.05 * rng.standard_normal(ts.size)
    load = np.where(running, wave, 0.0)
    vibration = np.where(running, 0.6 + 0.4 * load, 0.05) * (
        1 + 0.05 * rng.standard_normal(ts.size)
    )
    bearing = (
        30 + np.where(running, 15 * (0.3 + 0.7 * load), 0) + 0.3 * rng.standard_normal(ts.size)
    )
    if fault_from_day is not None:
        grow = np.clip((ts - start_ms - fault_from_day * MS_PER_DAY) / (5 * MS_PER_DAY), 0, None)
        vibration = vibration * (1 + np.where(running, grow, 0))
    return {
        "active_power": Series(ts, np.round(np.clip(load, 0, None) * 4000.0, 1)),
        "vibration_rms": Series(ts, np.round(vibration, 4)),
        "bearing_temp": Series(ts, np.round(bearing, 2)),
    }


@pytest.fixture(scope="module")
def samples() -> Samples:
    return align(synthetic_series(1, 10, to_ms(START)))


@pytest.fixture(scope="module")
def fitted(samples: Samples) -> HealthModel:
    return HealthModel().fit(samples, to_ms(START), to_ms(START) + 7 * MS_PER_DAY)


@pytest.fixture
def run_id(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    return start_run(conn, REF.site, START, START + timedelta(days=10), "health-1")


def _fit(reason: str, days: int = 7) -> Fit:
    return Fit(START, START, START + timedelta(days=days), reason, "health-1", {"n": 1})


def test_a_stored_model_assesses_exactly_as_the_fitted_one(
    conn: psycopg.Connection[tuple[object, ...]],
    samples: Samples,
    fitted: HealthModel,
    run_id: int,
) -> None:
    ref = MachineRef("registry-same", "line-a", "pump-01")
    model_id = promote(
        conn, ref, fitted, _fit("first"), valid_from=START + timedelta(days=7),
        retire_reason="unused", run_id=run_id,
    )  # fmt: skip
    loaded = load_model(conn, model_id)
    assert loaded is not fitted
    span = (to_ms(START) + 7 * MS_PER_DAY, to_ms(START) + 10 * MS_PER_DAY)
    before, after = fitted.assess(samples, *span), loaded.assess(samples, *span)
    assert np.isfinite(before.score).sum() > 24
    np.testing.assert_array_equal(after.score, before.score)
    np.testing.assert_array_equal(after.health, before.health)
    assert after.z.keys() == before.z.keys()
    for feature in before.z:
        np.testing.assert_array_equal(after.z[feature], before.z[feature])
        np.testing.assert_array_equal(after.change[feature], before.change[feature])
    stored = active_model(conn, ref.site, ref.machine)
    assert stored is not None and stored.model_id == model_id
    assert stored.features == fitted.features_
    assert stored.sha256 == dump_model(fitted)[1]
    assert stored.metrics == {"n": 1}


def test_a_changed_artifact_is_refused(
    conn: psycopg.Connection[tuple[object, ...]], fitted: HealthModel, run_id: int
) -> None:
    ref = MachineRef("registry-tampered", "line-a", "pump-01")
    model_id = promote(
        conn, ref, fitted, _fit("first"), valid_from=START + timedelta(days=7),
        retire_reason="unused", run_id=run_id,
    )  # fmt: skip
    conn.execute(
        "UPDATE maintenance_models SET artifact = artifact || '\\x00'::bytea WHERE model_id = %s",
        (model_id,),
    )
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        load_model(conn, model_id)
    with pytest.raises(ModelIntegrityError):
        load_active(conn, ref.site, ref.machine)
    artifact, digest = dump_model(fitted)
    with pytest.raises(ModelIntegrityError):
        restore_model(artifact, "0" * 64)
    assert isinstance(restore_model(artifact, digest), HealthModel)


def test_promoting_retires_the_model_in_use_and_every_model_stays(
    conn: psycopg.Connection[tuple[object, ...]], fitted: HealthModel, run_id: int
) -> None:
    first = promote(
        conn, REF, fitted, _fit("fitted after a reset"), valid_from=START + timedelta(days=7),
        retire_reason="unused", run_id=run_id,
    )  # fmt: skip
    refused = record_rejected(conn, REF, fitted, _fit("the period was not healthy", 8),
                              run_id=run_id)  # fmt: skip
    failed = record_rejected(conn, REF, None, _fit("could not fit: too few windows", 9),
                             run_id=run_id)  # fmt: skip
    second = promote(
        conn, REF, fitted, _fit("retrained", 10), valid_from=START + timedelta(days=10),
        retire_reason="replaced by a retrained model", run_id=run_id,
    )  # fmt: skip
    models = {m.model_id: m for m in list_models(conn, REF.site, REF.machine)}
    assert list(models) == [first, refused, failed, second]
    assert models[first].status == "retired"
    assert models[first].retired_at == START + timedelta(days=10)
    assert models[first].retire_reason == "replaced by a retrained model"
    assert models[first].reason == "fitted after a reset"
    assert (models[refused].status, models[refused].valid_from) == ("rejected", None)
    assert models[refused].reason == "the period was not healthy"
    assert (models[failed].status, models[failed].sha256) == ("rejected", None)
    assert models[second].status == "active"
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "UPDATE maintenance_models SET status = 'active', retired_at = NULL"
            " WHERE model_id = %s",
            (first,),
        )


def test_a_failed_promotion_keeps_the_model_in_use(
    conn: psycopg.Connection[tuple[object, ...]], fitted: HealthModel, run_id: int
) -> None:
    ref = MachineRef("registry-failed", "line-a", "pump-01")
    first = promote(
        conn, ref, fitted, _fit("first"), valid_from=START + timedelta(days=7),
        retire_reason="unused", run_id=run_id,
    )  # fmt: skip
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        promote(
            conn, ref, fitted, _fit("second", 10), valid_from=START + timedelta(days=10),
            retire_reason="replaced", run_id=run_id + 1000,
        )  # fmt: skip
    stored = active_model(conn, ref.site, ref.machine)
    assert stored is not None and stored.model_id == first and stored.retired_at is None

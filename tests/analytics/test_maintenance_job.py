"""Predictive maintenance in a real database: models, hourly health and alerts per machine.

Two sites: the simulated ``tiny`` site for a fortnight, in which the compressor's bearing
fails and is repaired, run through ``tonle analytics run``; and a synthetic site of two
pumps over 45 days (one healthy, one developing a fault), long enough for a retrain.
Both are checked against :func:`analytics.monitor.monitor` on the same readings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from analytics.condition import CONDITION_METRICS, LOAD_METRICS, Samples, align
from analytics.maintenance_job import (
    MODEL_VERSION,
    AlertAcknowledgedError,
    AlertNotFoundError,
    MaintenanceReport,
    acknowledge_alert,
    get_alert,
    run_maintenance,
)
from analytics.monitor import Monitoring, monitor
from analytics.runner import run_once
from analytics.series import MS_PER_HOUR, Series, from_ms, to_ms
from analytics.store import load_series, site_sensors, start_run
from ingest.store import Batch, Store
from simulators.truth import Truth
from tests.analytics.conftest import fill_site
from tests.analytics.test_model_registry import synthetic_series

pytestmark = pytest.mark.db

Conn = psycopg.Connection[tuple[object, ...]]
MS_PER_DAY = 24 * MS_PER_HOUR
# Seed 1 of the tiny site: the compressor's bearing degrades from day 2, fails on day 11
# and is repaired that evening.
TINY_START = datetime(2026, 11, 1, 17, tzinfo=UTC)  # midnight in Phnom Penh
TINY_DAYS = 14
SYNTH_START = datetime(2026, 9, 1, tzinfo=UTC)
SYNTH_DAYS = 45
TABLES = {
    "maintenance_models": "model_version, status, reason, segment_start, trained_from,"
    " trained_to, valid_from, retired_at, retire_reason, features",
    "machine_health": "machine, ts, health, score, load, samples, z, change",
    "maintenance_alerts": "machine, opened_at, closed_at, severity, min_health, peak_at,"
    " peak_score, reasons, acknowledged_at, acknowledged_by, ack_comment",
    "maintenance_log": "machine, at, kind, note, source",
}


@dataclass(frozen=True)
class TinyRun:
    truth: Truth
    run_id: int
    rows: dict[str, int]
    summary: dict[str, Any]
    end: datetime


@pytest.fixture(scope="module")
def tiny(database_url: str) -> TinyRun:
    truth = fill_site(database_url, "tiny", seed=1, start=TINY_START, days=TINY_DAYS)
    (report,) = run_once(database_url, ["tiny"], None, None, None)
    return TinyRun(truth, report.run_id, dict(report.rows), report.summary, report.end)


@pytest.fixture(scope="module")
def synthetic(database_url: str) -> dict[str, dict[str, Series]]:
    """Pumps of site ``synth``: healthy throughout, faulty from day 33, idle for 8 days."""
    start_ms = to_ms(SYNTH_START)
    pumps = {
        "pump-ok": synthetic_series(2, SYNTH_DAYS, start_ms),
        "pump-bad": synthetic_series(3, SYNTH_DAYS, start_ms, fault_from_day=33),
        "pump-idle": synthetic_series(4, 14, start_ms, idle_days=8),
    }
    store = Store(database_url)
    store.connect()
    for machine, series in pumps.items():
        for metric, values in series.items():
            key = ("synth", "line-a", machine, metric)
            store.register([(key, None)], create=True)
            sensor = store.known(key)
            assert sensor is not None
            rows = [
                (from_ms(int(t)), sensor.id, float(v))
                for t, v in zip(values.ts_ms, values.values, strict=True)
            ]
            store.write(Batch(rows=rows))
    store.close()
    return pumps


def _rows(conn: Conn, site: str, table: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT {TABLES[table]} FROM {table} WHERE site = %s ORDER BY 1, 2, 3", (site,)
    ).fetchall()


def _snapshot(conn: Conn, site: str) -> dict[str, list[tuple[Any, ...]]]:
    return {table: _rows(conn, site, table) for table in TABLES}


def _run(conn: Conn, site: str, start: datetime, end: datetime) -> MaintenanceReport:
    run_id = start_run(conn, site, start, end, MODEL_VERSION)
    return run_maintenance(conn, site, start, end, run_id)


def _samples(conn: Conn, site: str, machine: str, end: datetime) -> Samples:
    series = {
        ref.metric: load_series(conn, ref.sensor_id, datetime(2000, 1, 1, tzinfo=UTC), end)
        for ref in site_sensors(conn, site)
        if ref.machine == machine and ref.metric in (*CONDITION_METRICS, *LOAD_METRICS)
    }
    return align(series)


def _same_as_monitor(conn: Conn, site: str, machine: str, expected: Monitoring) -> None:
    """Stored health and alerts equal what monitor() computed on the same readings."""
    stored = conn.execute(
        "SELECT (extract(epoch FROM ts) * 1000)::bigint, score, health FROM machine_health"
        " WHERE site = %s AND machine = %s ORDER BY ts",
        (site, machine),
    ).fetchall()
    ts = np.array([r[0] for r in stored], dtype=np.int64)
    windows = expected.assessment.windows.end_ms
    finite = np.isfinite(expected.assessment.score)
    np.testing.assert_array_equal(ts, windows[finite])
    np.testing.assert_allclose([r[1] for r in stored], expected.assessment.score[finite], 1e-12)
    np.testing.assert_allclose([r[2] for r in stored], expected.assessment.health[finite], 1e-12)
    alerts = conn.execute(
        "SELECT opened_at, closed_at, severity, min_health, peak_score FROM maintenance_alerts"
        " WHERE site = %s AND machine = %s ORDER BY opened_at",
        (site, machine),
    ).fetchall()
    assert alerts == [
        (
            from_ms(a.episode.start_ms),
            None if a.episode.end_ms is None else from_ms(a.episode.end_ms),
            a.severity,
            pytest.approx(a.min_health, rel=1e-12),
            pytest.approx(a.episode.peak_score, rel=1e-12),
        )
        for a in expected.alerts
    ]


# ------------------------------------------------------------------ tiny site


def test_the_migration_made_the_maintenance_tables(conn: Conn) -> None:
    for name in (*TABLES, "maintenance_models_one_active"):
        row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        assert row is not None and row[0] is not None, name


def test_a_run_learns_assesses_alerts_and_resets_at_the_repair(tiny: TinyRun, conn: Conn) -> None:
    (failure,) = [f for f in tiny.truth.failures if f.machine == "comp-01"]
    assert TINY_START + timedelta(days=7) < failure.failed_at < failure.repaired_at < tiny.end, (
        "the simulator changed: pick a seed whose compressor fails after the learning week"
    )
    # The repair is inferred from the fault spell in machine_states and starts a segment.
    ((at, kind, source),) = conn.execute(
        "SELECT at, kind, source FROM maintenance_log WHERE site = 'tiny'"
    ).fetchall()
    assert (kind, source) == ("repair", "inferred")
    assert abs(at - failure.repaired_at) < timedelta(minutes=1)
    reset = (at + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    # One model: learned on the first week, retired at the reset.
    ((model_id, status, segment_start, trained_to, valid_from, retired_at, why, features,
      run_id),) = conn.execute(
        "SELECT model_id, status, segment_start, trained_to, valid_from, retired_at,"
        " retire_reason, features, run_id FROM maintenance_models WHERE site = 'tiny'"
    ).fetchall()  # fmt: skip
    assert (status, segment_start) == ("retired", TINY_START)
    assert trained_to == valid_from == TINY_START + timedelta(days=7)
    assert retired_at == reset and str(why).startswith(f"reset at {reset.isoformat()}")
    assert {"vibration_rms", "bearing_temp"} <= set(features)
    assert run_id == tiny.run_id
    # Hourly health from the end of learning to the reset, none while learning again.
    health = conn.execute(
        "SELECT min(ts), max(ts), count(*), min(health), max(health), count(DISTINCT model_id)"
        " FROM machine_health WHERE site = 'tiny'"
    ).fetchone()
    assert health is not None
    first, last, count, worst, best, models = health
    assert first == valid_from + timedelta(hours=1) and last == reset and models == 1
    assert 0 <= worst < 30 and best <= 100
    # The failing bearing raised one alert, standing before the failure, closed by the repair.
    ((opened_at, closed_at, severity, reasons, alert_model),) = conn.execute(
        "SELECT opened_at, closed_at, severity, reasons, model_id FROM maintenance_alerts"
        " WHERE site = 'tiny'"
    ).fetchall()
    assert failure.degradation_start < opened_at < failure.failed_at
    assert closed_at == reset and severity == "critical" and alert_model == model_id
    assert reasons[0]["feature"] == "vibration_rms" and "vibration" in reasons[0]["text"]
    # The report and the run's summary say so.
    assert tiny.rows["maintenance_models"] == 1 and tiny.rows["maintenance_alerts"] == 1
    assert tiny.rows["machine_health"] == count
    assert tiny.summary["maintenance"]["machines"] == {
        "line-1/comp-01": f"learning since {reset.isoformat()}"
    }
    summary = conn.execute(
        "SELECT status, summary -> 'maintenance' -> 'rows' FROM analytics_runs WHERE id = %s",
        (tiny.run_id,),
    ).fetchone()
    assert summary == ("done", tiny.summary["maintenance"]["rows"])


def test_the_database_job_gives_what_monitor_gives(tiny: TinyRun, conn: Conn) -> None:
    end_ms = to_ms(tiny.end) // MS_PER_HOUR * MS_PER_HOUR
    (reset,) = [row[0] for row in conn.execute("SELECT at FROM maintenance_log")]
    expected = monitor(
        _samples(conn, "tiny", "comp-01", tiny.end), to_ms(TINY_START), end_ms, [to_ms(reset)]
    )
    _same_as_monitor(conn, "tiny", "comp-01", expected)


def test_a_second_run_changes_nothing_and_keeps_acknowledgements(tiny: TinyRun, conn: Conn) -> None:
    (alert_id,) = [row[0] for row in conn.execute("SELECT alert_id FROM maintenance_alerts")]
    acknowledged = acknowledge_alert(conn, alert_id, "sokha", "bearing ordered")
    assert acknowledged.acknowledged_by == "sokha" and acknowledged.acknowledged_at is not None
    before = _snapshot(conn, "tiny")
    report = _run(conn, "tiny", TINY_START, tiny.end)
    assert _snapshot(conn, "tiny") == before
    again = get_alert(conn, alert_id)
    assert again.run_id == report.run_id and again.ack_comment == "bearing ordered"


def test_acknowledging_twice_or_an_unknown_alert_is_refused(tiny: TinyRun, conn: Conn) -> None:
    (alert_id,) = [row[0] for row in conn.execute("SELECT alert_id FROM maintenance_alerts")]
    first = get_alert(conn, alert_id)
    if first.acknowledged_at is None:
        first = acknowledge_alert(conn, alert_id, "sokha")
    with pytest.raises(AlertAcknowledgedError, match="acknowledged by sokha"):
        acknowledge_alert(conn, alert_id, "dara", "me too")
    assert get_alert(conn, alert_id).acknowledged_by == "sokha"
    assert get_alert(conn, alert_id).acknowledged_at == first.acknowledged_at
    with pytest.raises(AlertNotFoundError):
        acknowledge_alert(conn, alert_id + 1000, "dara")


def test_a_changed_model_artifact_is_refused_and_the_machine_skipped(
    tiny: TinyRun, conn: Conn
) -> None:
    before = _snapshot(conn, "tiny")
    conn.execute("UPDATE maintenance_models SET sha256 = repeat('0', 64) WHERE site = 'tiny'")
    try:
        run_id = start_run(conn, "tiny", TINY_START, tiny.end, MODEL_VERSION)
        start = TINY_START + timedelta(days=9)
        report = run_maintenance(conn, "tiny", start, start + timedelta(days=1), run_id)
        assert re.match(r"skipped: model \d+ of tiny/comp-01", report.machines["line-1/comp-01"])
        assert _snapshot(conn, "tiny") == before
    finally:
        conn.execute(
            "UPDATE maintenance_models SET sha256 = encode(sha256(artifact), 'hex')"
            " WHERE site = 'tiny'"
        )


def test_runs_a_day_at_a_time_give_what_one_run_gives(tiny: TinyRun, conn: Conn) -> None:
    before = _snapshot(conn, "tiny")
    for table in ("maintenance_alerts", "machine_health", "maintenance_models", "maintenance_log"):
        conn.execute(f"DELETE FROM {table} WHERE site = 'tiny'")
    day = TINY_START
    while day < tiny.end:
        _run(
            conn,
            "tiny",
            max(TINY_START, day - timedelta(days=1)),
            min(tiny.end, day + timedelta(days=1)),
        )
        day += timedelta(days=1)
    after = _snapshot(conn, "tiny")
    unacknowledged = [(*row[:-3], None, None, None) for row in before["maintenance_alerts"]]
    assert after | {"maintenance_alerts": []} == before | {"maintenance_alerts": []}
    assert after["maintenance_alerts"] == unacknowledged


# ------------------------------------------------------------- synthetic site


@pytest.fixture(scope="module")
def synthetic_runs(
    conn_module: Conn, synthetic: dict[str, dict[str, Series]]
) -> list[MaintenanceReport]:
    """The synthetic site run in three overlapping pieces, as a scheduler would."""
    day = timedelta(days=1)
    end = SYNTH_START + timedelta(days=SYNTH_DAYS)
    pieces = [
        (SYNTH_START, SYNTH_START + 20 * day),
        (SYNTH_START + 19 * day, SYNTH_START + 40 * day),
        (SYNTH_START + 39 * day, end),
    ]
    return [_run(conn_module, "synth", start, stop) for start, stop in pieces]


@pytest.fixture(scope="module")
def conn_module(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def _models(conn: Conn, machine: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT status, trained_from, trained_to, valid_from, retired_at, reason, retire_reason"
        " FROM maintenance_models WHERE site = 'synth' AND machine = %s ORDER BY model_id",
        (machine,),
    ).fetchall()


def test_a_healthy_machine_is_retrained_after_30_days(
    synthetic_runs: list[MaintenanceReport], conn: Conn
) -> None:
    learnt = SYNTH_START + timedelta(days=7)
    retrained = learnt + timedelta(days=30)
    (first, second) = _models(conn, "pump-ok")
    assert first[:5] == ("retired", SYNTH_START, learnt, learnt, retrained)
    assert first[6] == f"replaced by a model retrained at {retrained.isoformat()}"
    assert second[:5] == ("active", retrained - timedelta(days=7), retrained, retrained, None)
    assert str(second[5]).startswith("retrained on a healthy period")
    assert conn.execute(
        "SELECT count(*) FROM maintenance_alerts WHERE site = 'synth' AND machine = 'pump-ok'"
    ).fetchone() == (0,)


def test_a_refused_retrain_is_kept_and_not_retried_at_every_run(
    synthetic_runs: list[MaintenanceReport], conn: Conn
) -> None:
    learnt = SYNTH_START + timedelta(days=7)
    retrain = learnt + timedelta(days=30)
    (active, refused) = _models(conn, "pump-bad")
    assert active[:5] == ("active", SYNTH_START, learnt, learnt, None)
    assert refused[:5] == ("rejected", retrain - timedelta(days=7), retrain, None, None)
    assert str(refused[5]).startswith("the period was not healthy")
    (alert,) = conn.execute(
        "SELECT opened_at, closed_at FROM maintenance_alerts WHERE site = 'synth'"
        " AND machine = 'pump-bad'"
    ).fetchall()
    assert SYNTH_START + timedelta(days=33) < alert[0] < retrain and alert[1] is None
    # Later runs before the next retrain point (30 days on) fit nothing new.
    _run(conn, "synth", SYNTH_START + timedelta(days=42), SYNTH_START + timedelta(days=SYNTH_DAYS))
    assert len(_models(conn, "pump-bad")) == 2


def test_runs_in_pieces_give_what_monitor_gives(
    synthetic: dict[str, dict[str, Series]], synthetic_runs: list[MaintenanceReport], conn: Conn
) -> None:
    start_ms = to_ms(SYNTH_START)
    end_ms = start_ms + SYNTH_DAYS * MS_PER_DAY
    for machine in ("pump-ok", "pump-bad"):
        expected = monitor(align(synthetic[machine]), start_ms, end_ms, [])
        _same_as_monitor(conn, "synth", machine, expected)
        fitted: dict[int, tuple[str, datetime]] = {}
        for record in expected.models:
            used = "rejected" if record.status == "rejected" else "used"
            fitted.setdefault(id(record.model), (used, from_ms(record.model.trained_to_ms_)))
        stored = [
            ("rejected" if m[0] == "rejected" else "used", m[2]) for m in _models(conn, machine)
        ]
        assert stored == list(fitted.values())


def test_a_machine_idle_through_its_learning_week_learns_when_it_runs(
    synthetic_runs: list[MaintenanceReport], conn: Conn
) -> None:
    # monitor() would give up on this segment; the job extends learning a day at a time.
    learnt, retrain = _models(conn, "pump-idle")
    assert learnt[:5] == ("active", SYNTH_START, *[SYNTH_START + timedelta(days=10)] * 2, None)
    assert "learning extended by 3 d: no load readings" in str(learnt[5])
    # Its readings stop on day 14: the retrain 30 days on has nothing to fit, and says so.
    assert retrain[:5] == (
        "rejected",
        *[SYNTH_START + timedelta(days=d) for d in (33, 40)],
        None,
        None,
    )
    assert str(retrain[5]).startswith("could not fit: fewer than 24 running windows")


def test_a_repair_logged_afterwards_closes_the_alert_and_starts_learning_again(
    synthetic_runs: list[MaintenanceReport], conn: Conn
) -> None:
    repaired = SYNTH_START + timedelta(days=40, hours=10, minutes=20)
    reset = SYNTH_START + timedelta(days=40, hours=11)
    conn.execute(
        "INSERT INTO maintenance_log (site, line, machine, at, kind, note, source)"
        " VALUES ('synth', 'line-a', 'pump-bad', %s, 'repair', 'bearing replaced', 'api')",
        (repaired,),
    )
    start = SYNTH_START + timedelta(days=43)
    report = _run(conn, "synth", start, start + timedelta(days=2))
    assert report.machines["line-a/pump-bad"] == f"learning since {reset.isoformat()}"
    assert conn.execute(
        "SELECT closed_at FROM maintenance_alerts WHERE site = 'synth' AND machine = 'pump-bad'"
    ).fetchall() == [(reset,)]
    assert conn.execute(
        "SELECT max(ts) FROM machine_health WHERE site = 'synth' AND machine = 'pump-bad'"
    ).fetchone() == (reset,)
    active, _ = _models(conn, "pump-bad")
    assert active[0] == "retired" and active[4] == reset
    assert active[6] == f"reset at {reset.isoformat()}: repair (api) on {repaired.isoformat()}"

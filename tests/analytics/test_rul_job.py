"""Hours to failure in a real database: the maintenance job's ``rul_estimates``.

One simulated fleet (seed 1000, 4 machines × 90 days, four failures) is written to the
database with its maintenance log (repairs and services, as a factory would import
them). A run before any RUL model exists says so once; then a model trained on the
fleet's own lives is stored, and the job's estimates are checked against the model's
on the lives :func:`analytics.monitor.monitor` gives for the same readings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest

from analytics.maintenance_job import (
    MODEL_VERSION,
    NO_RUL_MODEL,
    MaintenanceReport,
    run_maintenance,
)
from analytics.model_registry import RulPromotion, load_rul
from analytics.rul_hours import CAP_H, lives_between
from analytics.series import MS_PER_HOUR, from_ms, to_ms
from analytics.store import start_run
from ingest.store import Batch, Store
from simulators.fleet import Fleet
from tonle.cli.rul_training import (
    TrainingFleet,
    Watched,
    fit_rul,
    lives_of,
    resets_of,
    simulated_fleet,
    store_rul,
    watch,
)

pytestmark = pytest.mark.db

Conn = psycopg.Connection[tuple[object, ...]]
SEED, MACHINES, DAYS = 1000, 4, 90
SITE = "rulsite"
COLUMNS = "machine, ts, rul_h, low_h, high_h, capped, model_id, health_model_id"


@dataclass(frozen=True)
class Simulated:
    fleet: Fleet
    watched: list[Watched]

    @property
    def start(self) -> datetime:
        return from_ms(self.fleet.start_ms)

    @property
    def end(self) -> datetime:
        return from_ms(self.fleet.end_ms)


@dataclass(frozen=True)
class Runs:
    before: MaintenanceReport  # without a RUL model
    said: list[str]
    promotion: RulPromotion
    after: MaintenanceReport  # the whole period, with the model


@pytest.fixture(scope="module")
def module_conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def simulated(database_url: str, module_conn: Conn) -> Simulated:
    """The fleet's readings and maintenance log in the database, and monitor() on them."""
    fleet = simulated_fleet(SEED, MACHINES, DAYS)
    assert len(fleet.failures) >= 3, "the simulator changed: pick a seed with three failures"
    store = Store(database_url)
    store.connect()
    for history in fleet.machines:
        times = [from_ms(int(t)) for t in history.ts_ms]
        for metric, values in history.metrics.items():
            key = (SITE, history.line, history.machine, metric)
            store.register([(key, None)], create=True)
            sensor = store.known(key)
            assert sensor is not None
            ok = np.flatnonzero(np.isfinite(values))
            store.write(Batch(rows=[(times[i], sensor.id, float(values[i])) for i in ok]))
    store.close()
    log = [(f.line, f.machine, f.repaired_at, "repair") for f in fleet.failures]
    log += [(m.line, m.machine, m.end, "service") for m in fleet.maintenance]
    with module_conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO maintenance_log (site, line, machine, at, kind, note, source)"
            " VALUES (%s, %s, %s, %s, %s, 'simulated', 'import')",
            [(SITE, *entry) for entry in log],
        )
    return Simulated(fleet, watch(fleet))


def _run(conn: Conn, start: datetime, end: datetime, say: Any = None) -> MaintenanceReport:
    run_id = start_run(conn, SITE, start, end, MODEL_VERSION)
    return run_maintenance(conn, SITE, start, end, run_id, say)


@pytest.fixture(scope="module")
def runs(module_conn: Conn, simulated: Simulated) -> Runs:
    said: list[str] = []
    before = _run(module_conn, simulated.start, simulated.start + timedelta(days=20), said.append)
    lives = [life for w in simulated.watched for life in lives_of(simulated.fleet, w)]
    training = TrainingFleet(SEED, len(simulated.fleet.failures), lives)
    model, figures = fit_rul([training], SEED, lambda _: None)
    promotion, _ = store_rul(module_conn, model, figures, machines=MACHINES, days=DAYS)
    after = _run(module_conn, simulated.start, simulated.end)
    return Runs(before, said, promotion, after)


def _estimates(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT {COLUMNS} FROM rul_estimates WHERE site = %s ORDER BY machine, ts", (SITE,)
    ).fetchall()


def test_without_a_rul_model_a_run_says_so_once_and_writes_no_estimates(runs: Runs) -> None:
    assert runs.before.rul == NO_RUL_MODEL
    assert [m for m in runs.said if "RUL" in m] == [f"{SITE}: {NO_RUL_MODEL}"]
    assert "rul_estimates" not in runs.before.rows
    assert len(runs.before.machines) == MACHINES
    assert not any("hours to failure" in status for status in runs.before.machines.values())
    assert runs.before.summary()["rul"] == NO_RUL_MODEL


def test_every_assessed_window_gets_an_estimate_within_the_cap(runs: Runs, conn: Conn) -> None:
    assert runs.after.rul == f"RUL model {runs.promotion.model_id}"
    rows = conn.execute(
        "SELECT e.rul_h, e.low_h, e.high_h, e.capped, e.model_id, e.health_model_id,"
        " h.model_id FROM rul_estimates e LEFT JOIN machine_health h"
        " ON (h.site, h.machine, h.ts) = (e.site, e.machine, e.ts) WHERE e.site = %s",
        (SITE,),
    ).fetchall()
    health = conn.execute("SELECT count(*) FROM machine_health WHERE site = %s", (SITE,)).fetchone()
    assert health is not None and len(rows) == health[0] == runs.after.rows["rul_estimates"]
    rul, low, high = (np.array([r[i] for r in rows]) for i in range(3))
    assert np.all((low >= 0) & (low <= rul) & (rul <= high) & (high <= CAP_H))
    assert [r[3] for r in rows] == list(rul >= CAP_H - 24)
    assert {r[4] for r in rows} == {runs.promotion.model_id}
    assert all(r[5] == r[6] for r in rows)  # the health row's model
    latest = re.compile(r"; hours to failure: (more than 336 h|\d+ h \(\d+–\d+ h\))$")
    statuses = runs.after.machines.values()
    assert all(latest.search(s) or s.startswith("learning since") for s in statuses)
    assert any(latest.search(s) for s in statuses)


def test_the_job_estimates_what_the_model_gives_on_monitored_lives(
    runs: Runs, simulated: Simulated, conn: Conn
) -> None:
    model = load_rul(conn, runs.promotion.model_id)
    fleet = simulated.fleet
    for watched in simulated.watched:
        machine = watched.history.machine
        stored = conn.execute(
            "SELECT (extract(epoch FROM ts) * 1000)::bigint, rul_h, low_h, high_h"
            " FROM rul_estimates WHERE site = %s AND machine = %s ORDER BY ts",
            (SITE, machine),
        ).fetchall()
        # The segments the job cut at the same resets, not cut at the failures.
        resets = resets_of(fleet, machine)
        lives = lives_between(
            watched.monitoring.assessment, fleet.start_ms, fleet.end_ms, resets, []
        )
        ends, expected = [], []
        for life in lives:
            if len(life.end_ms):
                ends.append(life.end_ms)
                expected.append(np.column_stack(model.predict_interval(life)))
        np.testing.assert_array_equal([r[0] for r in stored], np.concatenate(ends))
        got = np.array([(r[2], r[1], r[3]) for r in stored])
        np.testing.assert_allclose(got, np.vstack(expected), rtol=1e-12, atol=1e-9)


def test_estimates_fall_as_a_failure_nears(runs: Runs, simulated: Simulated, conn: Conn) -> None:
    for failure in simulated.fleet.failures:
        near = conn.execute(
            "SELECT avg(rul_h) FROM rul_estimates WHERE site = %s AND machine = %s"
            " AND ts > %s AND ts <= %s",
            (SITE, failure.machine, failure.failed_at - timedelta(hours=48), failure.failed_at),
        ).fetchone()
        far = conn.execute(
            "SELECT avg(rul_h) FROM rul_estimates WHERE site = %s AND machine = %s"
            " AND ts <= %s AND ts > %s",
            (SITE, failure.machine, failure.failed_at - timedelta(days=16),
             failure.failed_at - timedelta(days=30)),
        ).fetchone()  # fmt: skip
        assert near is not None and far is not None
        if near[0] is not None and far[0] is not None:
            assert near[0] < far[0] - 100, failure


def test_a_rerun_whole_or_in_part_changes_nothing(
    runs: Runs, simulated: Simulated, conn: Conn
) -> None:
    before = _estimates(conn)
    again = _run(conn, simulated.start, simulated.end)
    assert again.rows["rul_estimates"] == len(before)
    assert _estimates(conn) == before
    tail = _run(conn, simulated.end - timedelta(days=3), simulated.end)
    assert 0 < tail.rows["rul_estimates"] <= 3 * 24 * MACHINES
    assert _estimates(conn) == before


def test_a_changed_rul_artifact_is_refused_and_health_carries_on(
    runs: Runs, simulated: Simulated, conn: Conn
) -> None:
    before = _estimates(conn)
    model_id = runs.promotion.model_id
    conn.execute(
        "UPDATE maintenance_models SET sha256 = repeat('0', 64) WHERE model_id = %s", (model_id,)
    )
    try:
        start = simulated.end - timedelta(days=2)
        report = _run(conn, start, simulated.end)
    finally:
        conn.execute(
            "UPDATE maintenance_models SET sha256 = encode(sha256(artifact), 'hex')"
            " WHERE model_id = %s",
            (model_id,),
        )
    assert report.rul.startswith(f"RUL skipped: model {model_id} of */*")
    assert "train-rul" in report.rul
    assert report.rows["machine_health"] > 0 and "rul_estimates" not in report.rows
    assert _estimates(conn) == before


def test_a_service_logged_afterwards_removes_the_estimates_it_cut_off(
    runs: Runs, simulated: Simulated, conn: Conn
) -> None:
    serviced = simulated.end - timedelta(days=5, minutes=30)
    reset = serviced.replace(minute=0) + timedelta(hours=1)
    ((name, estimated),) = conn.execute(
        "SELECT machine, count(*) FROM rul_estimates WHERE site = %s AND ts > %s"
        " GROUP BY machine ORDER BY 2 DESC, 1 LIMIT 1",
        (SITE, reset),
    ).fetchall()
    assert estimated > 24
    machine = next(w.history for w in simulated.watched if w.history.machine == name)
    conn.execute(
        "INSERT INTO maintenance_log (site, line, machine, at, kind, note, source)"
        " VALUES (%s, %s, %s, %s, 'service', 'belt changed', 'api')",
        (SITE, machine.line, machine.machine, serviced),
    )
    _run(conn, simulated.end - timedelta(days=1), simulated.end)
    after = conn.execute(
        "SELECT count(*) FROM rul_estimates WHERE site = %s AND machine = %s AND ts > %s",
        (SITE, machine.machine, reset),
    ).fetchone()
    kept = conn.execute(
        "SELECT max(ts) FROM rul_estimates WHERE site = %s AND machine = %s",
        (SITE, machine.machine),
    ).fetchone()
    assert after == (0,)  # learning again for 7 days after the service
    assert kept is not None and kept[0] is not None and kept[0] <= reset
    assert to_ms(kept[0]) % MS_PER_HOUR == 0

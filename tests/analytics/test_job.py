"""The energy job on a simulated week in a real database: results in their tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics.job import MODEL_VERSION, run_energy
from analytics.runner import run_once
from analytics.site_config import load_sites
from analytics.store import last_done_run_end
from tests.analytics.conftest import fill_site

pytestmark = pytest.mark.db

WEEK_START = datetime(2026, 11, 15, 17, tzinfo=UTC)  # Monday 16 Nov 2026, 00:00 in Phnom Penh
WEEK_END = WEEK_START + timedelta(days=7)


@pytest.fixture(scope="module")
def tiny_week(database_url: str) -> object:
    return fill_site(database_url, "tiny", seed=3, start=WEEK_START, days=7)


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str, *args: object) -> object:
    row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def test_runner_picks_up_where_the_last_run_stopped(
    database_url: str, tiny_week: object, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    # First in this module: no run of the site exists yet.
    first = run_once(database_url, ["tiny"], WEEK_START, WEEK_START + timedelta(days=3), None)
    assert [r.end for r in first] == [WEEK_START + timedelta(days=3)]
    assert last_done_run_end(conn, "tiny") == WEEK_START + timedelta(days=3)
    later = run_once(database_url, ["tiny"], None, WEEK_END, None)
    # It starts again at local midnight of the day before the last run stopped.
    assert [r.start for r in later] == [WEEK_START + timedelta(days=2)]
    assert later[0].start.utcoffset() == timedelta(hours=7)
    assert run_once(database_url, ["tiny"], None, WEEK_END, None) == []  # nothing new


def test_a_week_of_the_tiny_site(
    database_url: str, tiny_week: object, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    config = load_sites()["tiny"]
    report = run_energy(conn, "tiny", config, WEEK_START, WEEK_END)
    assert _one(conn, "SELECT status, model_version FROM analytics_runs WHERE id = %s",
                report.run_id) == ("done", MODEL_VERSION)  # fmt: skip

    # Site energy per day adds up to the main meter's register over the week.
    meter = _one(
        conn,
        "SELECT max(value) - min(value) FROM telemetry WHERE site = 'tiny'"
        " AND machine = 'meter-01' AND metric = 'energy' AND ts >= %s AND ts < %s",
        WEEK_START, WEEK_END,
    )  # fmt: skip
    daily = _one(
        conn,
        "SELECT sum(energy_kwh), count(*) FROM energy_intervals"
        " WHERE site = 'tiny' AND level = 'site' AND grain = '1d'",
    )
    assert daily[1] == 7  # type: ignore[index]
    assert daily[0] == pytest.approx(float(meter) / 1000, rel=1e-6)  # type: ignore[arg-type,index]
    # Every grain sums to the same total; each row has a completeness between 0 and 1.
    for grain in ("15m", "1h", "shift"):
        total = _one(
            conn,
            "SELECT sum(energy_kwh) FROM energy_intervals WHERE site = 'tiny'"
            " AND level = 'machine' AND machine = 'comp-01' AND grain = %s",
            grain,
        )
        if grain != "shift":
            day_total = _one(
                conn,
                "SELECT sum(energy_kwh) FROM energy_intervals WHERE site = 'tiny'"
                " AND level = 'machine' AND machine = 'comp-01' AND grain = '1d'",
            )
            assert total == pytest.approx(day_total, rel=1e-9)
    assert _one(conn, "SELECT count(*) FROM energy_intervals WHERE completeness < 0"
                " OR completeness > 1") == 0  # fmt: skip
    # Cost by source covers the same energy as the site's days.
    by_source = _one(conn, "SELECT sum(energy_kwh) FROM energy_costs WHERE site = 'tiny'")
    assert by_source == pytest.approx(daily[0], rel=1e-6)  # type: ignore[index]
    # Outages in the truth are found.
    truth = tiny_week
    outages = [o for o in truth.outages if o.kind == "outage"]  # type: ignore[attr-defined]
    found = _one(conn, "SELECT count(*) FROM power_events WHERE site = 'tiny' AND kind = 'outage'")
    assert found == len(outages) > 0
    # States (reported by this layout's machines), idle waste and SEC are there.
    assert _one(conn, "SELECT count(DISTINCT machine) FROM machine_states WHERE site = 'tiny'") == 2
    assert _one(conn, "SELECT count(*) FROM idle_waste WHERE site = 'tiny' AND grain = '1d'") == 14
    assert _one(conn, "SELECT count(*) FROM sec_daily WHERE site = 'tiny'") == 7
    # OEE per shift for the sewing machine (it has an ideal cycle time in the sites file):
    # six working days' day shifts plus the evening shifts it ran in.
    oee_rows = conn.execute(
        "SELECT label, availability, performance, quality, oee, planned_s FROM oee_shifts"
        " WHERE site = 'tiny' AND machine = 'sew-01' ORDER BY bucket_start"
    ).fetchall()
    day_shifts = [r for r in oee_rows if r[0] == "day"]
    assert len(day_shifts) == 6
    for _, availability, performance, quality, overall, planned_s in day_shifts:
        assert planned_s == 8 * 3600  # 07:00–16:00 less the lunch hour
        assert 0 < availability <= 1 and 0 < performance <= 1.05 and 0.9 < quality <= 1
        assert overall == pytest.approx(availability * performance * quality)
    peak = _one(conn, "SELECT peak_kw, load_factor FROM demand_peaks WHERE site = 'tiny'")
    assert peak[0] > 0 and 0 < peak[1] <= 1  # type: ignore[index,operator]

    # Running again over the same period replaces rows rather than adding to them.
    counts = {t: _one(conn, f"SELECT count(*) FROM {t}") for t in report.rows}
    again = run_energy(conn, "tiny", config, WEEK_START, WEEK_END)
    assert {t: _one(conn, f"SELECT count(*) FROM {t}") for t in report.rows} == counts
    assert (
        _one(conn, "SELECT min(run_id) FROM energy_intervals WHERE site = 'tiny'") == again.run_id
    )


def test_inferred_states_on_machines_that_do_not_report_them(
    database_url: str, conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    start = datetime(2026, 11, 22, 17, tzinfo=UTC)
    fill_site(database_url, "garment", seed=4, start=start, days=1)
    run_energy(conn, "garment-pp", load_sites()["garment-pp"], start, start + timedelta(days=1))
    sources = dict(
        conn.execute(
            "SELECT source, count(DISTINCT machine) FROM machine_states"
            " WHERE site = 'garment-pp' GROUP BY source"
        ).fetchall()
    )
    assert sources.get("inferred", 0) >= 5
    running = _one(
        conn,
        "SELECT count(*) FROM machine_states WHERE site = 'garment-pp' AND source = 'inferred'"
        " AND state = 2",
    )
    assert running > 0  # type: ignore[operator]

"""A database filled by the simulators and analysed, for every dashboard panel's query.

Two sites: ``tiny``, 12.5 days of raw readings in which the compressor's bearing fails
and is repaired (seed 1, as in tests/analytics/test_maintenance_job.py), run through
``tonle analytics run``'s code with a small fleet-trained RUL model in place, plus the
messages and statuses of two edge gateways as the ingester stores them; and ``pilot``,
35 days of the tiny layout's hourly figures (simulators.hourly) before it, verified by
the M&V step on a 28-day baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from analytics.mv_job import evaluate
from analytics.runner import run_once
from analytics.site_config import Pilot, SiteConfig, Tariff
from analytics.store import finish_run, start_run, upsert
from ingest.store import Batch, Store
from simulators.hourly import HourlySite, hourly_site, with_sample_interval
from simulators.layout import load_layout
from tests.analytics.conftest import fill_site
from tests.api.conftest import refresh_rollups
from tonle.cli.rul_training import train_rul

TINY_START = datetime(2026, 11, 1, 17, tzinfo=UTC)  # midnight in Phnom Penh
TINY_DAYS = 12.5  # to the evening of the repair: health, an alert and the repair log
PILOT_DAYS, BASELINE_DAYS = 35, 28
PILOT_START = datetime(2026, 9, 20, tzinfo=UTC)
MESSAGE_EVERY = timedelta(minutes=10)
LOST_SEQS = range(100, 105)  # five messages of gw-01 that never arrive


@dataclass(frozen=True)
class Filled:
    """The filled database and the range that covers both sites' data."""

    url: str
    start: datetime
    end: datetime


def _edges(database_url: str) -> None:
    """Two gateways of tiny: messages with a gap and a replayed stretch, and their statuses."""
    end = TINY_START + timedelta(days=TINY_DAYS)
    messages = []
    seq, at = 1, TINY_START
    while at < end:
        if seq not in LOST_SEQS:
            buffered = 200 <= seq < 220  # replayed from the spool after an outage
            messages.append(("tiny", "gw-01", seq, at, buffered, 50))
        seq, at = seq + 1, at + MESSAGE_EVERY
    messages += [("tiny", "gw-02", n, TINY_START + n * MESSAGE_EVERY, False, 50) for n in (1, 2)]
    statuses = [
        ("tiny", "gw-01", "online", end),
        ("tiny", "gw-02", '{"status": "offline", "pending": 17}', TINY_START + 3 * MESSAGE_EVERY),
    ]
    store = Store(database_url)
    store.connect()
    store.write(Batch(messages=messages, statuses=statuses))
    store.close()


def _pilot_readings(database_url: str) -> HourlySite:
    """A simulated pilot's hourly air temperature and units, stored as readings."""
    layout = with_sample_interval(load_layout("tiny"), 300)
    hours = hourly_site(layout, seed=3, start=PILOT_START, days=PILOT_DAYS)
    starts = [datetime.fromtimestamp(ms / 1000, UTC) for ms in hours.hour_start_ms]
    store = Store(database_url)
    store.connect()
    keys = {"ambient_temp": ("pilot", "utilities", "ambient-01", "ambient_temp"),
            "units_good": ("pilot", "line-1", "sew-01", "units_good")}  # fmt: skip
    store.register([(keys["ambient_temp"], "°C"), (keys["units_good"], None)], create=True)
    ids = {metric: store.known(key).id for metric, key in keys.items()}  # type: ignore[union-attr]
    rows = [(t, ids["ambient_temp"], c) for t, c in zip(starts, hours.ambient_c, strict=True)]
    rows += [(t, ids["units_good"], u) for t, u in zip(starts, hours.units, strict=True)]
    store.write(Batch(rows=rows))
    store.close()
    return hours


def _pilot_savings(database_url: str, hours: HourlySite) -> None:
    """The pilot's hourly site energy, then its M&V on a 28-day baseline (needs the roll-ups)."""
    starts = [datetime.fromtimestamp(ms / 1000, UTC) for ms in hours.hour_start_ms]
    end = starts[-1] + timedelta(hours=1)
    config = SiteConfig(
        timezone="UTC",
        tariff=Tariff(flat_rate_per_kwh=0.164),
        pilot=Pilot(
            investment=1200.0,
            baseline_start=PILOT_START.date(),
            baseline_end=PILOT_START.date() + timedelta(days=BASELINE_DAYS - 1),
        ),
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sites SET name = 'Pilot (simulated)', sector = 'garment', "
            "pilot_investment = 1200, pilot_start = %s, pilot_end = %s WHERE site = 'pilot'",
            (PILOT_START.date() + timedelta(days=BASELINE_DAYS), end.date()),
        )
        run_id = start_run(conn, "pilot", PILOT_START, end, "test")
        upsert(
            conn,
            "energy_intervals",
            run_id,
            [("pilot", "site", "", "", "1h", t, t + timedelta(hours=1), "", kwh, 1.0, "meter", 0.0)
             for t, kwh in zip(starts, hours.energy_kwh, strict=True)],
        )  # fmt: skip
        verified = evaluate(conn, "pilot", config, end)
        assert verified is not None, "the pilot's M&V found too little data"
        upsert(conn, "mv_results", run_id, [verified])
        finish_run(conn, run_id, {}, None)


@pytest.fixture(scope="module")
def filled(database_url: str) -> Filled:
    """The module's database with both sites, their analytics and a RUL model."""
    fill_site(database_url, "tiny", seed=1, start=TINY_START, days=TINY_DAYS)
    _edges(database_url)
    pilot_hours = _pilot_readings(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        refresh_rollups(conn)
    # The smallest simulated fleet with three failures: a RUL model in seconds.
    train_rul(database_url, seed=1000, fleets=1, machines=4, days=45, say=lambda _: None)
    end = TINY_START + timedelta(days=TINY_DAYS)
    (report,) = run_once(database_url, ["tiny"], TINY_START, end, None)
    assert report.rows.get("machine_health") and report.rows.get("rul_estimates"), report.rows
    _pilot_savings(database_url, pilot_hours)
    return Filled(database_url, PILOT_START, end)

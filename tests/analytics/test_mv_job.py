"""The pilot's M&V step against a real database, on hourly data with a known answer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest

from analytics.mv_job import evaluate, periods
from analytics.site_config import Pilot, SiteConfig, Tariff
from analytics.store import start_run, upsert
from ingest.store import Store

pytestmark = pytest.mark.db

SITE = "mv-site"
START = datetime(2026, 1, 1, tzinfo=UTC)  # the site keeps UTC, to keep the sums simple
BASELINE_DAYS, REPORTING_DAYS = 56, 28


def _fill(conn: psycopg.Connection[tuple[object, ...]], database_url: str) -> None:
    """Hourly site energy = 40 + 0.5·units + 3·max(0, T − 27) kWh, 10 % less once reporting."""
    rng = np.random.default_rng(0)
    hours = np.arange((BASELINE_DAYS + REPORTING_DAYS) * 24)
    hour_of_day = hours % 24
    working = (hour_of_day >= 7) & (hour_of_day < 17) & ((hours // 24) % 7 < 6)
    units = np.where(working, rng.integers(80, 120, hours.size), 0).astype(float)
    ambient = 29 + 4 * np.sin((hour_of_day - 9) / 24 * 2 * np.pi) + rng.normal(0, 0.5, hours.size)
    kwh = 40 + 0.5 * units + 3 * np.maximum(0, ambient - 27) + rng.normal(0, 1.0, hours.size)
    kwh[hours >= BASELINE_DAYS * 24] *= 0.9
    store = Store(database_url)
    store.connect()
    store.register(
        [((SITE, "utilities", "ambient-1", "ambient_temp"), "°C"),
         ((SITE, "sewing", "m1", "units_good"), None)],
        create=True,
    )  # fmt: skip
    ambient_id = store.known((SITE, "utilities", "ambient-1", "ambient_temp")).id  # type: ignore[union-attr]
    units_id = store.known((SITE, "sewing", "m1", "units_good")).id  # type: ignore[union-attr]
    store.close()
    starts = [START + timedelta(hours=int(h)) for h in hours]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings_1h (bucket, sensor_id, n, avg, min, max, sum)"
            " VALUES (%s, %s, 1, %s, %s, %s, %s)",
            [(t, ambient_id, a, a, a, a) for t, a in zip(starts, ambient.tolist(), strict=True)]
            + [(t, units_id, u, u, u, u) for t, u in zip(starts, units.tolist(), strict=True)],
        )
    run_id = start_run(conn, SITE, START, starts[-1], "test")
    upsert(
        conn,
        "energy_intervals",
        run_id,
        [
            (SITE, "site", "", "", "1h", t, t + timedelta(hours=1), "", e, 1.0, "meter", 0.0)
            for t, e in zip(starts, kwh.tolist(), strict=True)
        ],
    )


def test_savings_of_a_known_ten_percent_cut_are_verified(
    conn: psycopg.Connection[tuple[object, ...]], database_url: str
) -> None:
    _fill(conn, database_url)
    config = SiteConfig(
        timezone="UTC",
        tariff=Tariff(flat_rate_per_kwh=0.2),
        pilot=Pilot(
            investment=1000.0,
            baseline_start=date(2026, 1, 1),
            baseline_end=date(2026, 1, 1) + timedelta(days=BASELINE_DAYS - 1),
        ),
    )
    end = START + timedelta(days=BASELINE_DAYS + REPORTING_DAYS)
    span = periods(config, end)
    assert span is not None
    assert span.reporting_start == START + timedelta(days=BASELINE_DAYS)
    row = evaluate(conn, SITE, config, end)
    assert row is not None
    (baseline_hours, r2, cv, nmbe, meets, reporting_hours, savings_pct, fsu, cost, annual,
     payback) = (row[6], row[7], row[8], row[9], row[12], row[14], row[18], row[19], row[20],
                 row[21], row[24])  # fmt: skip
    assert baseline_hours == BASELINE_DAYS * 24
    assert reporting_hours == REPORTING_DAYS * 24
    assert r2 > 0.95 and cv < 5 and abs(nmbe) < 0.5 and meets is True
    assert savings_pct == pytest.approx(10.0, abs=1.0)
    assert 0 < fsu < 10
    assert cost > 0
    assert annual == pytest.approx(cost * 365.25 / REPORTING_DAYS, rel=0.01)
    assert payback == pytest.approx(1000.0 / annual, rel=1e-6)


def test_nothing_is_verified_without_a_baseline_period(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    assert evaluate(conn, SITE, SiteConfig(), datetime(2026, 6, 1, tzinfo=UTC)) is None


def test_a_baseline_period_without_data_yet_is_not_verified_and_does_not_fail(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """A pilot configured before its meters report: no complete hour in either period."""
    config = SiteConfig(
        timezone="UTC",
        pilot=Pilot(baseline_start=date(2027, 1, 1), baseline_end=date(2027, 1, 28)),
    )
    assert evaluate(conn, "no-data-yet", config, datetime(2027, 3, 1, tzinfo=UTC)) is None

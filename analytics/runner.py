"""Which sites and periods a `tonle analytics run` covers, once or every few minutes.

A run starts at local midnight of the day before the previous successful run ended (so
partly seen days and night shifts are recomputed whole) and ends now; the first run of
a site starts at midnight of its first reading. Results replace the rows of earlier runs.

Each site's run computes the energy analytics, then predictive maintenance over the same
period under the same run id: maintenance reads the machine states the energy job has
just written (a long fault that ended is a repair, which resets a machine's history).
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from analytics.costs import local_day_start
from analytics.job import JobReport, run_energy
from analytics.maintenance_job import run_maintenance
from analytics.site_config import load_sites, site_config
from analytics.store import last_done_run_end, site_extent
from tonle.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_every(text: str) -> timedelta:
    """``15m``, ``1h``, ``30s`` or ``1d`` as a timedelta; raise ConfigError otherwise."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(f"--every {text!r}: use a number and s, m, h or d, e.g. 15m")
    return timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])


def all_sites(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Every site in the registry."""
    return [str(site) for (site,) in conn.execute("SELECT site FROM sites ORDER BY site")]


def run_once(
    database_url: str,
    sites: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    sites_file: Path | None,
    progress: object = None,
) -> list[JobReport]:
    """Run the energy and maintenance analytics for each site; return what each run did."""
    configs = load_sites(sites_file)
    say = progress if callable(progress) else (lambda message: log.info("%s", message))
    reports: list[JobReport] = []
    try:
        conn = psycopg.connect(database_url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
    with conn:
        for site in sites or all_sites(conn):
            config = site_config(configs, site)
            extent = site_extent(conn, site)
            if extent is None:
                say(f"{site}: no readings yet")
                continue
            period_end = end or datetime.now(UTC).replace(microsecond=0)
            period_end = min(period_end, extent[1] + timedelta(milliseconds=1))
            resumed = None if start else last_done_run_end(conn, site)
            since = start or resumed or extent[0]
            if since >= period_end:
                say(f"{site}: nothing new since {since.isoformat()}")
                continue
            # Resuming: a day of overlap, so night shifts and days seen in part are redone.
            overlap = timedelta(days=1 if resumed else 0)
            period_start = local_day_start(config, since - overlap)
            say(f"{site}: {period_start.isoformat()} → {period_end.isoformat()}")
            report = run_energy(conn, site, config, period_start, period_end, say)
            maintenance = run_maintenance(conn, site, period_start, period_end, report.run_id, say)
            report.rows.update(maintenance.rows)
            report.summary["maintenance"] = maintenance.summary()
            say(
                f"{site}: run {report.run_id} in {report.seconds} s — "
                + ", ".join(f"{n} {table}" for table, n in report.rows.items())
            )
            reports.append(report)
    return reports


def run_every(
    every: timedelta,
    stop: threading.Event,
    database_url: str,
    sites: list[str] | None,
    sites_file: Path | None,
    progress: object = None,
) -> int:
    """Run, then again every ``every``, picking up where the last run stopped; return runs."""
    runs = 0
    while not stop.is_set():
        began = datetime.now(UTC)
        try:
            runs += len(run_once(database_url, sites, None, None, sites_file, progress))
        except (StoreError, psycopg.Error) as exc:
            log.warning("analytics run failed (will retry): %s", exc)
        wait_s = max(0.0, (began + every - datetime.now(UTC)).total_seconds())
        stop.wait(wait_s)
    return runs

"""The pilot's measurement and verification inside `tonle analytics run`.

Hourly site energy (from the site-level ``energy_intervals`` earlier runs wrote), mean
ambient temperature and good units per hour (from the ``telemetry_1h`` roll-up) give the
frames; the hourly baseline is fitted on the pilot's baseline period and projected onto
the reporting period, which runs from the end of the baseline (or the configured
reporting start) to the end of this run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from analytics.baseline import HourlyBaseline
from analytics.baseline_frame import HourlyFrame
from analytics.costs import hourly_rates
from analytics.series import FloatArray, Int64Array
from analytics.site_config import SiteConfig
from analytics.store import Conn

MIN_BASELINE_HOURS = 28 * 24  # four weeks: every hour of the week seen four times
MIN_REPORTING_HOURS = 24
COMPLETE = 0.9  # hours with less of their samples present are left out
FALLBACK_AMBIENT_C = 28.0  # where a site has no temperature sensor: no cooling term can fit

_HOURS = """
WITH e AS (
    SELECT bucket_start AS hour, energy_kwh FROM energy_intervals
    WHERE site = %(site)s AND level = 'site' AND grain = '1h' AND completeness >= %(complete)s
      AND bucket_start >= %(start)s AND bucket_start < %(end)s
), t AS (
    SELECT ts AS hour, avg(avg) AS ambient_c FROM telemetry_1h
    WHERE site = %(site)s AND metric = 'ambient_temp' AND ts >= %(start)s AND ts < %(end)s
    GROUP BY ts
), u AS (
    SELECT ts AS hour, sum(sum) AS units FROM telemetry_1h
    WHERE site = %(site)s AND metric = 'units_good' AND ts >= %(start)s AND ts < %(end)s
    GROUP BY ts
)
SELECT (extract(epoch FROM e.hour) * 1000)::bigint, e.energy_kwh, t.ambient_c,
       coalesce(u.units, 0)
FROM e LEFT JOIN t USING (hour) LEFT JOIN u USING (hour) ORDER BY 1
"""


@dataclass(frozen=True)
class Periods:
    """The pilot's baseline and reporting periods, as instants."""

    baseline_start: datetime
    baseline_end: datetime
    reporting_start: datetime
    reporting_end: datetime


def periods(config: SiteConfig, run_end: datetime) -> Periods | None:
    """The periods from the site configuration; None if no baseline is configured."""
    pilot = config.pilot
    if pilot.baseline_start is None or pilot.baseline_end is None:
        return None
    zone = ZoneInfo(config.timezone)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone)

    baseline_end = midnight(pilot.baseline_end) + timedelta(days=1)  # the end day included
    reporting_start = midnight(pilot.reporting_start) if pilot.reporting_start else baseline_end
    return Periods(midnight(pilot.baseline_start), baseline_end, reporting_start, run_end)


def hourly_frame(conn: Conn, site: str, start: datetime, end: datetime) -> HourlyFrame | None:
    """The site's complete hours in [start, end) with temperature and production; None if none."""
    rows = conn.execute(
        _HOURS, {"site": site, "start": start, "end": end, "complete": COMPLETE}
    ).fetchall()
    if not rows:
        return None
    data = np.array([[r[0], r[1], np.nan if r[2] is None else r[2], r[3]] for r in rows])
    ambient = data[:, 2]
    known = np.isfinite(ambient)
    fill = float(ambient[known].mean()) if known.any() else FALLBACK_AMBIENT_C
    ambient = np.where(known, ambient, fill)
    return HourlyFrame.of(data[:, 0].astype(np.int64), data[:, 1], ambient, data[:, 3])


def evaluate(
    conn: Conn, site: str, config: SiteConfig, run_end: datetime
) -> tuple[Any, ...] | None:
    """Fit, project and price; the ``mv_results`` row, or None when there is too little data."""
    span = periods(config, run_end)
    if span is None or span.reporting_start >= span.reporting_end:
        return None
    baseline = hourly_frame(conn, site, span.baseline_start, span.baseline_end)
    if baseline is None or len(baseline) < MIN_BASELINE_HOURS:
        return None
    model = HourlyBaseline(timezone=config.timezone).fit(baseline)
    reporting = hourly_frame(conn, site, span.reporting_start, span.reporting_end)
    fit, held = model.in_sample_, model.held_out_
    row: dict[str, Any] = {
        "r2": fit.r_squared, "cv": fit.cv_rmse_pct, "nmbe": fit.nmbe_pct,
        "held_cv": None if held is None else held.cv_rmse_pct,
        "held_nmbe": None if held is None else held.nmbe_pct,
        "meets": bool(fit.meets_guideline14), "balance": model.balance_point_c_,
    }  # fmt: skip
    savings: dict[str, float | None] = dict.fromkeys(
        ("adjusted", "actual", "avoided", "pct", "fsu", "cost", "annual", "payback")
    )
    if reporting is not None and len(reporting) >= MIN_REPORTING_HOURS:

        def price(ts_ms: Int64Array, kwh: FloatArray) -> FloatArray:
            return kwh * hourly_rates(config, ts_ms)

        report = model.savings(reporting, price=price)
        annual = report.annual_avoided_cost
        payback = None
        if annual is not None and annual > 0 and config.pilot.investment > 0:
            payback = report.simple_payback_years(config.pilot.investment)
        savings = {
            "adjusted": report.adjusted_baseline_kwh, "actual": report.reporting_kwh,
            "avoided": report.avoided_kwh, "pct": report.savings_pct, "fsu": report.fsu_pct,
            "cost": report.avoided_cost, "annual": annual, "payback": payback,
        }  # fmt: skip
    return (
        site, "hourly", span.baseline_start, span.baseline_end, span.reporting_start,
        span.reporting_end, len(baseline), row["r2"], row["cv"], row["nmbe"], row["held_cv"],
        row["held_nmbe"], row["meets"], row["balance"], 0 if reporting is None else len(reporting),
        savings["adjusted"],
        savings["actual"], savings["avoided"], savings["pct"], savings["fsu"], savings["cost"],
        savings["annual"], config.tariff.currency, config.pilot.investment, savings["payback"],
        model.heating_balance_point_c_,
    )  # fmt: skip

"""Data completeness per series: how much of each sensor's data reached the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api import queries
from api.completeness import completeness, expected_readings
from api.deps import Conn, VisibleSite
from api.models import CompletenessPublic, SeriesCompletenessPublic
from api.problems import ProblemError, problems
from api.ranges import checked_span
from tonle.contract import ID_PATTERN

router = APIRouter(tags=["telemetry"], responses=problems(401, 403, 404, 422))

MAX_SPAN = timedelta(days=366)
DEFAULT_SPAN = timedelta(days=1)
# Up to a week the readings are counted one by one; beyond, the hourly roll-up's counts
# keep the query fast, and the interval is measured on the range's last day.
RAW_SPAN = timedelta(days=7)
INTERVAL_SAMPLE = timedelta(days=1)


@router.get("/sites/{site}/completeness")
async def get_completeness(
    conn: Conn,
    site: VisibleSite,
    machine: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    start: Annotated[datetime | None, Query(description="UTC unless an offset is given")] = None,
    end: Annotated[datetime | None, Query(description="exclusive; default now")] = None,
) -> CompletenessPublic:
    """Per sensor over [start, end) (default: the last day): readings stored and expected.

    The expected count comes from the sensor's typical interval, the median gap between
    its readings. Ranges up to 7 days count raw readings; longer ones (up to 366 days)
    count whole hours of the hourly roll-up and measure gaps to the hour.
    """
    start_utc, end_utc = checked_span(
        start, end, default=DEFAULT_SPAN, longest=MAX_SPAN, what="a completeness query"
    )
    if machine is not None and machine not in await queries.known_values(conn, site, "machine"):
        raise ProblemError(422, f"site {site!r} has no machine {machine!r}")
    source: Literal["raw", "1h"] = "raw" if end_utc - start_utc <= RAW_SPAN else "1h"
    gap_start = start_utc if source == "raw" else end_utc - INTERVAL_SAMPLE
    rows = await queries.completeness(conn, site, source, start_utc, end_utc, gap_start, machine)
    span_s = (end_utc - start_utc).total_seconds()
    series = []
    for line, machine_, metric, stored, interval_s, longest_gap_s in rows:
        expected = expected_readings(span_s, interval_s)
        series.append(
            SeriesCompletenessPublic(
                line=line,
                machine=machine_,
                metric=metric,
                stored=stored,
                interval_s=interval_s,
                expected=expected,
                completeness=completeness(stored, expected),
                longest_gap_s=longest_gap_s,
            )
        )
    return CompletenessPublic(site=site, start=start_utc, end=end_utc, source=source, series=series)

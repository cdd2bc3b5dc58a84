"""Readings of a site over a time range, raw or from the 1-minute and 1-hour roll-ups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api import queries
from api.deps import Conn, VisibleSite
from api.models import Bucket, TelemetryPublic
from api.problems import ProblemError, problems
from api.ranges import checked_span
from tonle.contract import ID_PATTERN

router = APIRouter(tags=["telemetry"], responses=problems(401, 403, 404, 422))

MAX_SPAN = {"raw": timedelta(days=31), "1m": timedelta(days=366), "1h": timedelta(days=366)}
DEFAULT_SPAN = timedelta(days=1)


def checked_range(
    start: datetime | None, end: datetime | None, bucket: Bucket
) -> tuple[datetime, datetime]:
    """[start, end) in UTC with defaults filled in; a 422 problem if inverted or too long."""
    return checked_span(
        start,
        end,
        default=DEFAULT_SPAN,
        longest=MAX_SPAN[bucket],
        what=f"a {bucket} query",
        hint="use bucket=1m or 1h, or " if bucket == "raw" else "",
    )


async def _require_known(conn: Conn, site: str, column: str, value: str | None) -> None:
    if value is None:
        return
    known = await queries.known_values(conn, site, column)
    if value not in known:
        raise ProblemError(
            422,
            f"site {site!r} has no {column} {value!r}; known: {', '.join(known) or 'none yet'}",
        )


@router.get("/sites/{site}/telemetry")
async def get_telemetry(
    conn: Conn,
    site: VisibleSite,
    machine: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    metric: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = None,
    line: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    start: Annotated[datetime | None, Query(description="UTC unless an offset is given")] = None,
    end: Annotated[datetime | None, Query(description="exclusive; default now")] = None,
    bucket: Annotated[Bucket, Query(description="raw readings or roll-up means")] = "raw",
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> TelemetryPublic:
    """Readings in [start, end) (default: the last day), oldest first, at most ``limit``.

    Raw ranges may span 31 days, roll-ups 366 days. Unknown machines or metrics, and
    inverted or too long ranges, get a 422 problem naming what to change.
    """
    start_utc, end_utc = checked_range(start, end, bucket)
    await _require_known(conn, site, "machine", machine)
    await _require_known(conn, site, "metric", metric)
    points = await queries.telemetry(
        conn, site, bucket, start_utc, end_utc, line, machine, metric, limit
    )
    return TelemetryPublic(site=site, bucket=bucket, start=start_utc, end=end_utc, points=points)

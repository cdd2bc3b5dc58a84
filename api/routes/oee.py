"""Overall equipment effectiveness per shift, by machine or line, with the six losses."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api import queries
from api.deps import Conn, VisibleSite
from api.models import OeeBy, OeePublic
from api.problems import problems
from api.ranges import checked_span

router = APIRouter(tags=["oee"], responses=problems(401, 403, 404, 422))

DEFAULT_SPAN = timedelta(days=30)
MAX_SPAN = timedelta(days=366)


@router.get("/sites/{site}/oee")
async def get_oee(
    conn: Conn,
    site: VisibleSite,
    start: Annotated[datetime | None, Query(description="UTC unless an offset is given")] = None,
    end: Annotated[datetime | None, Query(description="exclusive; default now")] = None,
    by: Annotated[OeeBy, Query(description="per machine, or per line summed")] = "machine",
) -> list[OeePublic]:
    """OEE of shifts starting in [start, end) (default: the last 30 days; at most 366)."""
    start_utc, end_utc = checked_span(
        start, end, default=DEFAULT_SPAN, longest=MAX_SPAN, what="an OEE query"
    )
    return await queries.oee(conn, site, by, start_utc, end_utc)

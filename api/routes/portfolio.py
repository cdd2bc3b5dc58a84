"""The pilot portfolio: every site the token may see, side by side."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api import queries
from api.deps import Conn, CurrentCaller
from api.models import PortfolioSitePublic
from api.problems import problems
from api.ranges import checked_span

router = APIRouter(tags=["portfolio"], responses=problems(401, 422))

DEFAULT_SPAN = timedelta(days=30)


@router.get("/portfolio")
async def get_portfolio(
    conn: Conn,
    caller: CurrentCaller,
    end: Annotated[
        datetime | None,
        Query(description="end of the 30-day period of sites without a pilot; default now"),
    ] = None,
) -> list[PortfolioSitePublic]:
    """Energy, savings, uptime, faults caught, open alerts and completeness of each site.

    A site's period is its latest savings reporting period, else the 30 days before
    ``end``. Uptime is idle plus running time over idle, running and fault time (off
    is not planned). A fault is caught when an alert of the same machine opened in the
    14 days before its fault state began. Completeness is the mean over machine-hours.
    A factory token sees only its own site.
    """
    start_utc, end_utc = checked_span(
        None, end, default=DEFAULT_SPAN, longest=DEFAULT_SPAN, what="the portfolio"
    )
    only = caller.site if caller.role == "factory" else None
    return await queries.portfolio(conn, only, start_utc, end_utc)

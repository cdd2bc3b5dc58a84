"""Energy results of a site: intervals with idle waste, peaks, outages, costs and savings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api import queries
from api.deps import Conn, VisibleSite
from api.models import (
    CostPublic,
    EnergyPublic,
    Grain,
    Level,
    OutagePublic,
    PeakPublic,
    SavingsPublic,
)
from api.problems import problems
from api.ranges import checked_span

router = APIRouter(tags=["energy"], responses=problems(401, 403, 404, 422))

MAX_SPAN = {
    "15m": timedelta(days=31),
    "1h": timedelta(days=366),
    "1d": timedelta(days=3660),
    "shift": timedelta(days=3660),
}
DEFAULT_SPAN = timedelta(days=30)
EVENTS_DEFAULT_SPAN = timedelta(days=366)
EVENTS_MAX_SPAN = timedelta(days=3660)

Start = Annotated[datetime | None, Query(description="UTC unless an offset is given")]
End = Annotated[datetime | None, Query(description="exclusive; default now")]


@router.get("/sites/{site}/energy")
async def get_energy(
    conn: Conn,
    site: VisibleSite,
    start: Start = None,
    end: End = None,
    level: Annotated[Level, Query(description="machine, line or the whole site")] = "site",
    grain: Annotated[Grain, Query(description="bucket length, or the site's shifts")] = "1h",
) -> EnergyPublic:
    """Energy per bucket starting in [start, end) (default: the last 30 days), oldest first.

    Each bucket has its kWh, the share of expected samples present and how it was
    measured; shift and 1d buckets also carry the idle kWh and cost summed to the level.
    15m ranges may span 31 days, 1h 366, 1d and shift ten years.
    """
    start_utc, end_utc = checked_span(
        start,
        end,
        default=DEFAULT_SPAN,
        longest=MAX_SPAN[grain],
        what=f"grain={grain}",
        hint="use a coarser grain, or " if grain in ("15m", "1h") else "",
    )
    intervals = await queries.energy(conn, site, level, grain, start_utc, end_utc)
    return EnergyPublic(
        site=site, level=level, grain=grain, start=start_utc, end=end_utc, intervals=intervals
    )


def _events_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    return checked_span(
        start, end, default=EVENTS_DEFAULT_SPAN, longest=EVENTS_MAX_SPAN, what="a query"
    )


@router.get("/sites/{site}/peaks")
async def get_peaks(
    conn: Conn, site: VisibleSite, start: Start = None, end: End = None
) -> list[PeakPublic]:
    """Monthly demand peaks beginning in [start, end) (default: the last 366 days)."""
    start_utc, end_utc = _events_range(start, end)
    return await queries.peaks(conn, site, start_utc, end_utc)


@router.get("/sites/{site}/outages")
async def get_outages(
    conn: Conn, site: VisibleSite, start: Start = None, end: End = None
) -> list[OutagePublic]:
    """Supply outages and voltage sags beginning in [start, end) (default: the last 366 days)."""
    start_utc, end_utc = _events_range(start, end)
    return await queries.outages(conn, site, start_utc, end_utc)


@router.get("/sites/{site}/costs")
async def get_costs(
    conn: Conn, site: VisibleSite, start: Start = None, end: End = None
) -> list[CostPublic]:
    """Daily energy, cost and CO₂ by source, for the days from start's date to before end's."""
    start_utc, end_utc = _events_range(start, end)
    return await queries.costs(conn, site, start_utc, end_utc)


@router.get("/sites/{site}/savings")
async def get_savings(conn: Conn, site: VisibleSite) -> list[SavingsPublic]:
    """The latest measured savings (baseline, actual, avoided, uncertainty, payback)."""
    return await queries.savings(conn, site)

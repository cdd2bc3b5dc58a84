"""Sites, their lines and machines, as the registry holds them."""

from __future__ import annotations

from fastapi import APIRouter

from api import queries
from api.deps import Conn, CurrentCaller, VisibleSite
from api.models import SiteDetailPublic, SitePublic
from api.problems import ProblemError, problems

router = APIRouter(prefix="/sites", tags=["sites"], responses=problems(401, 403, 404, 422))


@router.get("")
async def list_sites(conn: Conn, caller: CurrentCaller) -> list[SitePublic]:
    """The sites this token may see."""
    return await queries.sites(conn, caller.site if caller.role == "factory" else None)


@router.get("/{site}")
async def get_site(conn: Conn, site: VisibleSite) -> SiteDetailPublic:
    """A site with its lines, machines and the metrics each machine reports."""
    detail = await queries.site_detail(conn, site)
    if detail is None:  # deleted between the check and now
        raise ProblemError(404, f"no site {site!r}")
    return detail

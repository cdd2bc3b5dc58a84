"""Edge gateways of a site: online, last seen, sequence gaps, spool backlog."""

from __future__ import annotations

from fastapi import APIRouter

from api import queries
from api.deps import Conn, VisibleSite
from api.models import EdgePublic
from api.problems import problems

router = APIRouter(tags=["edges"], responses=problems(401, 403, 404, 422))


@router.get("/sites/{site}/edges")
async def get_edges(conn: Conn, site: VisibleSite) -> list[EdgePublic]:
    """Every edge that has reported for the site, with its status and message counts."""
    return await queries.edges(conn, site)

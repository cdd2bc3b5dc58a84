"""Machine health and remaining useful life, as the maintenance analytics stored them."""

from __future__ import annotations

from fastapi import APIRouter

from api import queries
from api.deps import Conn, VisibleSite
from api.models import MachineHealthPublic
from api.problems import problems

router = APIRouter(tags=["maintenance"], responses=problems(401, 403, 404, 422))


@router.get("/sites/{site}/health")
async def site_health(conn: Conn, site: VisibleSite) -> list[MachineHealthPublic]:
    """Every machine of a site with its latest health and hours-to-failure estimate."""
    return await queries.machine_health(conn, site)

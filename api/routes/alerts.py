"""Maintenance alerts of a site, and their acknowledgement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import queries
from api.deps import Conn, CurrentCaller, VisibleSite
from api.models import AckCreate, AlertPublic
from api.problems import ProblemError, problems

router = APIRouter(tags=["alerts"], responses=problems(401, 403, 404, 422))


@router.get("/sites/{site}/alerts")
async def list_alerts(
    conn: Conn,
    site: VisibleSite,
    open: Annotated[
        bool | None, Query(description="only open (true) or closed (false) alerts")
    ] = None,
) -> list[AlertPublic]:
    """A site's alerts, newest first."""
    return await queries.alerts(conn, site, open)


@router.post("/alerts/{alert_id}/ack", responses=problems(409))
async def acknowledge_alert(
    conn: Conn, caller: CurrentCaller, alert_id: int, body: AckCreate
) -> AlertPublic:
    """Record that the token's holder has seen an alert; an alert is acknowledged once."""
    found = await queries.alert(conn, alert_id)
    if found is None:
        raise ProblemError(404, f"no alert {alert_id}; GET /sites/{{site}}/alerts lists them")
    caller.require_site(found.site)
    acked = await queries.acknowledge(conn, alert_id, caller.name, body.comment)
    if acked is None:
        current = await queries.alert(conn, alert_id)
        by = current.acknowledged_by if current else "?"
        when = current.acknowledged_at.isoformat() if current and current.acknowledged_at else "?"
        raise ProblemError(409, f"alert {alert_id} was acknowledged by {by} at {when}")
    return acked

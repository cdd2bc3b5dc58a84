"""Registry writes (admin only): sites, lines, machines and sensors; deactivated, never deleted."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from psycopg.errors import UniqueViolation

from api import queries
from api.deps import Admin, AdminSite, Conn
from api.models import (
    LineCreate,
    LineRecordPublic,
    LineUpdate,
    MachineCreate,
    MachineRecordPublic,
    MachineUpdate,
    SensorCreate,
    SensorPublic,
    SensorUpdate,
    SiteCreate,
    SitePublic,
    SiteUpdate,
)
from api.problems import ProblemError, problems
from tonle.contract import ID_PATTERN, METRIC_PATTERN

router = APIRouter(tags=["registry"], responses=problems(401, 403, 404, 422))

LineId = Annotated[str, Path(pattern=ID_PATTERN, description="line id")]
MachineId = Annotated[str, Path(pattern=ID_PATTERN, description="machine id")]
MetricName = Annotated[str, Path(pattern=METRIC_PATTERN, max_length=63, description="metric")]
NOT_NULL = {"timezone", "active"}


def _changes(update: SiteUpdate | LineUpdate | MachineUpdate | SensorUpdate) -> dict[str, Any]:
    """The fields the request set; a 422 problem if none, or a null where none may be."""
    changes = update.model_dump(exclude_unset=True)
    if not changes:
        raise ProblemError(422, "nothing to change: send at least one field")
    nulls = sorted(name for name in NOT_NULL & set(changes) if changes[name] is None)
    if nulls:
        raise ProblemError(422, f"{', '.join(nulls)} may not be null")
    return changes


def _taken(what: str) -> ProblemError:
    return ProblemError(409, f"{what} exists already; PATCH it, or choose another id")


@router.post("/sites", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_site(conn: Conn, caller: Admin, body: SiteCreate) -> SitePublic:
    """Register a factory of a pilot."""
    try:
        return await queries.create_site(conn, body.model_dump())
    except UniqueViolation:
        raise _taken(f"site {body.site!r}") from None


@router.patch("/sites/{site}")
async def update_site(conn: Conn, site: AdminSite, body: SiteUpdate) -> SitePublic:
    """Change a site; ``{"active": false}`` deactivates it."""
    changes = _changes(body)
    current = await queries.sites(conn, site)
    if current:
        merged = current[0].model_dump() | changes
        start, end = merged["pilot_start"], merged["pilot_end"]
        if start and end and end < start:
            raise ProblemError(422, "pilot_end would be before pilot_start")
    updated = await queries.update_site(conn, site, changes)
    if updated is None:
        raise ProblemError(404, f"no site {site!r}")
    return updated


@router.post("/sites/{site}/lines", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def create_line(conn: Conn, site: AdminSite, body: LineCreate) -> LineRecordPublic:
    """Add a production line (or ``utilities``) to a site."""
    try:
        return await queries.create_line(conn, site, body.line, body.name)
    except UniqueViolation:
        raise _taken(f"line {body.line!r} of site {site!r}") from None


@router.patch("/sites/{site}/lines/{line}")
async def update_line(
    conn: Conn, site: AdminSite, line: LineId, body: LineUpdate
) -> LineRecordPublic:
    """Change a line; ``{"active": false}`` deactivates it."""
    updated = await queries.update_line(conn, site, line, _changes(body))
    if updated is None:
        raise ProblemError(404, f"no line {line!r} at site {site!r}")
    return updated


@router.post(
    "/sites/{site}/lines/{line}/machines",
    status_code=status.HTTP_201_CREATED,
    responses=problems(409),
)
async def create_machine(
    conn: Conn, site: AdminSite, line: LineId, body: MachineCreate
) -> MachineRecordPublic:
    """Add a machine to a line."""
    try:
        created = await queries.create_machine(conn, site, line, body.model_dump())
    except UniqueViolation:
        raise _taken(f"machine {body.machine!r} on line {line!r}") from None
    if created is None:
        raise ProblemError(404, f"no line {line!r} at site {site!r}; create it first")
    return created


@router.patch("/sites/{site}/lines/{line}/machines/{machine}")
async def update_machine(
    conn: Conn, site: AdminSite, line: LineId, machine: MachineId, body: MachineUpdate
) -> MachineRecordPublic:
    """Change a machine; ``{"active": false}`` deactivates it."""
    updated = await queries.update_machine(conn, site, line, machine, _changes(body))
    if updated is None:
        raise ProblemError(404, f"no machine {machine!r} on line {line!r} at site {site!r}")
    return updated


@router.post(
    "/sites/{site}/lines/{line}/machines/{machine}/sensors",
    status_code=status.HTTP_201_CREATED,
    responses=problems(409),
)
async def create_sensor(
    conn: Conn, site: AdminSite, line: LineId, machine: MachineId, body: SensorCreate
) -> SensorPublic:
    """Add a sensor (one metric) to a machine."""
    try:
        created = await queries.create_sensor(conn, site, line, machine, body.metric, body.unit)
    except UniqueViolation:
        raise _taken(f"sensor {body.metric!r} of machine {machine!r}") from None
    if created is None:
        raise ProblemError(404, f"no machine {machine!r} on line {line!r} at site {site!r}")
    return created


@router.patch("/sites/{site}/lines/{line}/machines/{machine}/sensors/{metric}")
async def update_sensor(
    conn: Conn,
    site: AdminSite,
    line: LineId,
    machine: MachineId,
    metric: MetricName,
    body: SensorUpdate,
) -> SensorPublic:
    """Change a sensor; ``{"active": false}`` deactivates it."""
    updated = await queries.update_sensor(conn, site, line, machine, metric, _changes(body))
    if updated is None:
        raise ProblemError(404, f"no sensor {metric!r} on machine {machine!r} at site {site!r}")
    return updated

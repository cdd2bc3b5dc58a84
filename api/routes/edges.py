"""Edge gateways of a site: status, and (admin) provisioning and revocation of their logins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from psycopg.errors import UniqueViolation

from api import queries
from api.broker_files import edge_username, mosquitto_hash
from api.deps import Admin, AdminSite, Conn, SettingsDep, VisibleSite
from api.models import (
    BrokerFilesPublic,
    EdgeCreate,
    EdgeCredentialPublic,
    EdgeProvisionedPublic,
    EdgePublic,
)
from api.problems import ProblemError, problems
from api.provisioning import edge_document, edge_yaml, new_password, render_broker_files
from tonle.contract import ID_PATTERN

router = APIRouter(tags=["edges"], responses=problems(401, 403, 404, 422))

EdgeId = Annotated[str, Path(pattern=ID_PATTERN, description="edge id")]


@router.get("/sites/{site}/edges")
async def get_edges(conn: Conn, site: VisibleSite) -> list[EdgePublic]:
    """Every edge that has reported for the site, with its status and message counts."""
    return await queries.edges(conn, site)


@router.post("/sites/{site}/edges", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def provision_edge(
    conn: Conn, site: AdminSite, settings: SettingsDep, body: EdgeCreate
) -> EdgeProvisionedPublic:
    """Make an edge's MQTT login and its ``edge.yaml``; the password is shown only here.

    The broker accepts the login once its files are regenerated (``tonle broker acl`` or
    ``GET /broker/acl``) and it has reloaded them.
    """
    username = edge_username(site, body.edge_id)
    password = new_password()
    try:
        stored = await queries.create_edge_credential(
            conn, site, body.edge_id, username, mosquitto_hash(password)
        )
    except UniqueViolation:
        raise ProblemError(
            409, f"edge {body.edge_id!r} of site {site!r} exists already; choose another id"
        ) from None
    document = edge_document(
        site, body.edge_id, body.broker_url or settings.mqtt_url, username, password
    )
    return EdgeProvisionedPublic(
        **stored.model_dump(), password=password, edge_yaml=edge_yaml(document)
    )


@router.delete("/sites/{site}/edges/{edge_id}")
async def revoke_edge(conn: Conn, site: AdminSite, edge_id: EdgeId) -> EdgeCredentialPublic:
    """Revoke an edge's login: regenerated broker files leave it out."""
    revoked = await queries.revoke_edge_credential(conn, site, edge_id)
    if revoked is None:
        raise ProblemError(404, f"no provisioned edge {edge_id!r} at site {site!r}")
    return revoked


@router.get("/broker/acl")
async def broker_files(conn: Conn, caller: Admin, settings: SettingsDep) -> BrokerFilesPublic:
    """Mosquitto's password and ACL files for the enabled edges and the ingester."""
    return render_broker_files(await queries.enabled_edges(conn), settings.broker)

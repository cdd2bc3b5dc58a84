"""Dependencies the routes share: a pooled connection, the caller's token, a site it may see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api import queries
from api.problems import ProblemError
from api.tokens import Role, hash_secret
from tonle.contract import ID_PATTERN
from tonle.settings import Settings


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the token's id, name, role and (for a factory) its site."""

    token_id: int
    name: str
    role: Role
    site: str | None

    def may_see(self, site: str) -> bool:
        """Whether this token may read (and acknowledge alerts of) ``site``."""
        return self.role != "factory" or self.site == site

    def require_site(self, site: str) -> None:
        """Raise a 403 problem unless this token may see ``site``."""
        if not self.may_see(site):
            raise ProblemError(
                403, f"this token is for site {self.site!r} only; it may not see {site!r}"
            )


async def get_settings(request: Request) -> Settings:
    """The settings the app was made with (async: no worker thread for a lookup)."""
    settings: Settings = request.app.state.settings
    return settings


async def get_pool(request: Request) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """The app's connection pool, opened in its lifespan."""
    pool: AsyncConnectionPool[AsyncConnection[Any]] = request.app.state.pool
    return pool


Pool = Annotated[AsyncConnectionPool[AsyncConnection[Any]], Depends(get_pool)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_conn(pool: Pool) -> AsyncIterator[AsyncConnection[Any]]:
    """One pooled (autocommit) connection for the request."""
    async with pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection[Any], Depends(get_conn)]

_bearer = HTTPBearer(auto_error=False, description="a token from `tonle token create`")


async def get_caller(
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The live token in ``Authorization: Bearer …``; a 401 problem if none."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(401, "send a token as `Authorization: Bearer <token>`")
    row = await queries.token_by_hash(conn, hash_secret(credentials.credentials))
    if row is None:
        raise ProblemError(401, "this token is unknown or revoked; ask for a new one")
    return Caller(token_id=row["token_id"], name=row["name"], role=row["role"], site=row["site"])


CurrentCaller = Annotated[Caller, Depends(get_caller)]


async def get_site(
    site: Annotated[str, Path(pattern=ID_PATTERN, description="site id")],
    caller: CurrentCaller,
    conn: Conn,
) -> str:
    """A site the caller may see and the registry knows (403, then 404, otherwise)."""
    caller.require_site(site)
    if not await queries.site_exists(conn, site):
        raise ProblemError(404, f"no site {site!r}; GET /sites lists the ones you may see")
    return site


VisibleSite = Annotated[str, Depends(get_site)]


async def get_admin(caller: CurrentCaller) -> Caller:
    """The caller, if its token is an admin's; a 403 problem otherwise."""
    if caller.role != "admin":
        raise ProblemError(403, f"this needs an admin token; this one is a {caller.role} token")
    return caller


Admin = Annotated[Caller, Depends(get_admin)]


async def get_admin_site(site: VisibleSite, caller: CurrentCaller) -> str:
    """A known site, for an admin: the site scope is checked first, then the role."""
    await get_admin(caller)
    return site


AdminSite = Annotated[str, Depends(get_admin_site)]

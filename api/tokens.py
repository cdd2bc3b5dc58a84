"""API tokens: made, listed and revoked by ``tonle token``; checked on every request.

A token is ``tonle_`` and 43 random URL-safe characters. Only its SHA-256 is stored, so a
stolen database holds no usable secret; the token itself is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

import psycopg

from tonle.contract import ID_PATTERN
from tonle.errors import TonleError

Role = Literal["admin", "staff", "factory"]
ROLES: tuple[Role, ...] = ("admin", "staff", "factory")
PREFIX = "tonle_"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token, without its secret."""

    token_id: int
    name: str
    role: Role
    site: str | None
    created_at: datetime
    revoked_at: datetime | None


def hash_secret(token: str) -> str:
    """The hex SHA-256 under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh random token (256 bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def _record(row: tuple[object, ...]) -> TokenRecord:
    token_id, name, role, site, created_at, revoked_at = row
    return TokenRecord(
        token_id=cast(int, token_id),
        name=cast(str, name),
        role=cast(Role, role),
        site=cast(str | None, site),
        created_at=cast(datetime, created_at),
        revoked_at=cast(datetime | None, revoked_at),
    )


_COLUMNS = "token_id, name, role, site, created_at, revoked_at"


def create_token(
    database_url: str, role: str, site: str | None, name: str | None
) -> tuple[TokenRecord, str]:
    """Store a new token; return its record and the secret (shown once, never stored).

    Raises:
        TonleError: the role is unknown, or a factory token has no valid site (or
            another role has one).
    """
    if role not in ROLES:
        raise TonleError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "factory" and site is None:
        raise TonleError("a factory token needs --site: the one site it may see")
    if role != "factory" and site is not None:
        raise TonleError(f"an {role} token sees every site; drop --site or use --role factory")
    if site is not None and not re.fullmatch(ID_PATTERN, site):
        raise TonleError(f"site {site!r} is not a valid id ({ID_PATTERN})")
    secret = new_secret()
    label = name or (f"{role}-{site}" if site else role)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            f"INSERT INTO api_tokens (name, role, site, secret_sha256) VALUES (%s, %s, %s, %s) "
            f"RETURNING {_COLUMNS}",
            (label, role, site, hash_secret(secret)),
        ).fetchone()
    assert row is not None
    return _record(row), secret


def list_tokens(database_url: str) -> list[TokenRecord]:
    """Every token, oldest first, revoked ones included."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY token_id").fetchall()
    return [_record(row) for row in rows]


def revoke_token(database_url: str, token_id: int) -> TokenRecord:
    """Revoke a token from now on (a second revoke keeps the first time).

    Raises:
        TonleError: no token has this id.
    """
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
            f"WHERE token_id = %s RETURNING {_COLUMNS}",
            (token_id,),
        ).fetchone()
    if row is None:
        raise TonleError(f"no token has id {token_id}; `tonle token list` shows them")
    return _record(row)

"""Mosquitto's password and ACL files, rendered from the registry's edges (pure functions).

The password hash is Mosquitto's own ``$7$`` format (PBKDF2-HMAC-SHA512, as
``mosquitto_passwd`` writes it), so the broker checks the passwords the API hands out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from tonle.contract import PREFIX, status_filter, status_topic, telemetry_filter

HASH_ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12
DIGEST_BYTES = 64


@dataclass(frozen=True, slots=True)
class EdgeLogin:
    """An enabled edge as the broker sees it: its site, id, user name and password hash."""

    site: str
    edge_id: str
    username: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class SimulatorLogin:
    """One login for ``tonle simulate``: it may publish as any edge of the listed sites only."""

    username: str
    password_hash: str
    sites: tuple[str, ...]


def edge_username(site: str, edge_id: str) -> str:
    """The MQTT user name of an edge; ``.`` is in no id, so it never collides."""
    return f"{site}.{edge_id}"


def mosquitto_hash(
    password: str, salt: bytes | None = None, iterations: int = HASH_ITERATIONS
) -> str:
    """A ``$7$<iterations>$<salt>$<digest>`` hash, the form ``mosquitto_passwd`` writes."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, DIGEST_BYTES)
    return (
        f"$7${iterations}${base64.b64encode(salt).decode('ascii')}"
        f"${base64.b64encode(digest).decode('ascii')}"
    )


def check_mosquitto_hash(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (ours or ``mosquitto_passwd``'s)."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt = base64.b64decode(parts[3])
    return hmac.compare_digest(mosquitto_hash(password, salt, int(parts[2])), stored)


def passwd_file(logins: Iterable[tuple[str, str]]) -> str:
    """Mosquitto's ``password_file``: one ``user:hash`` line per (user, hash)."""
    return "".join(f"{user}:{password_hash}\n" for user, password_hash in sorted(logins))


def acl_file(
    edges: Iterable[EdgeLogin], ingester: str | None, simulator: SimulatorLogin | None = None
) -> str:
    """Mosquitto's ``acl_file``: each edge writes under its site only, the ingester reads all.

    A simulator login, if given, writes the readings and edge status of its sites only.
    """
    lines = ["# Generated from the Tonle registry (tonle broker acl); edit the registry instead."]
    if ingester:
        lines += ["", f"user {ingester}", f"topic read {PREFIX}/#",
                  f"topic read $share/+/{PREFIX}/#"]  # fmt: skip
    for edge in sorted(edges, key=lambda e: e.username):
        lines += [
            "",
            f"user {edge.username}",
            f"topic write {PREFIX}/{edge.site}/+/+/telemetry",
            f"topic write {status_topic(edge.site, edge.edge_id)}",
        ]
    if simulator:
        lines += ["", f"user {simulator.username}"]
        for site in sorted(simulator.sites):
            lines += [f"topic write {telemetry_filter(site)}", f"topic write {status_filter(site)}"]
    return "\n".join(lines) + "\n"

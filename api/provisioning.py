"""Edge provisioning: a one-time password, the edge's ``edge.yaml``, the broker's files.

The YAML is built as a plain document in the edge agent's schema (``edge/edge.example.yaml``);
the API does not import the edge agent, and a test loads the result with ``edge.config``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import yaml

from api.broker_files import EdgeLogin, SimulatorLogin, acl_file, mosquitto_hash, passwd_file
from api.models import BrokerFilesPublic
from api.queries import ENABLED_EDGES
from tonle.contract import ID_PATTERN
from tonle.errors import ConfigError
from tonle.settings import BrokerAddress, parse_mqtt_url

PASSWORD_BYTES = 24


def new_password() -> str:
    """A random MQTT password (32 URL-safe characters)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def public_broker_url(address: BrokerAddress) -> str:
    """The broker's URL without any user or password in it."""
    return f"{'mqtts' if address.tls else 'mqtt'}://{address.host}:{address.port}"


def edge_document(
    site: str, edge_id: str, broker_url: str, username: str, password: str
) -> dict[str, Any]:
    """An ``edge.yaml`` document: this edge's ids and login, the gateway's own health."""
    address = parse_mqtt_url(broker_url)
    return {
        "site": site,
        "edge_id": edge_id,
        "broker": {
            "url": public_broker_url(address),
            "username": username,
            "password": password,
            "protocol": "5",
        },
        "spool": {"path": "/var/lib/tonle/edge.spool"},
        # Meter and machine sources are the factory's own: add them below this one.
        "sources": [{"type": "system", "interval_s": 60}],
    }


def edge_yaml(document: dict[str, Any], now: datetime | None = None) -> str:
    """The document as YAML text, under a comment saying what it is."""
    made = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = (
        f"# edge.yaml for edge {document['edge_id']} of site {document['site']}, made by the "
        f"Tonle API at {made}.\n"
        "# It holds the edge's MQTT password: keep it readable by the edge agent only.\n"
        "# Add the factory's sources under `sources`, then run:  tonle edge --config edge.yaml\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def render_broker_files(
    edges: Iterable[tuple[str, str, str, str]],
    ingester: BrokerAddress | None,
    simulator: BrokerAddress | None = None,
    simulator_sites: Sequence[str] = (),
) -> BrokerFilesPublic:
    """Both files from (site, edge_id, username, hash) rows and the ingester's login.

    ``simulator`` (a login with a password) is added, limited to ``simulator_sites``, for
    ``tonle simulate`` on a broker that checks logins.
    """
    logins = [EdgeLogin(*row) for row in edges]
    users = [(edge.username, edge.password_hash) for edge in logins]
    ingester_user = ingester.username if ingester else None
    if ingester and ingester.username and ingester.password:
        users.append((ingester.username, mosquitto_hash(ingester.password)))
    simulator_login = None
    if simulator and simulator.username and simulator.password and simulator_sites:
        taken = {user for user, _ in users} | {ingester_user}
        if simulator.username in taken or "." in simulator.username:
            raise ConfigError(
                f"simulator user {simulator.username!r} is an edge's or the ingester's; pick "
                "another name without a dot"
            )
        bad = [site for site in simulator_sites if not re.fullmatch(ID_PATTERN, site)]
        if bad:
            raise ConfigError(f"simulator site ids {bad} do not match {ID_PATTERN}")
        simulator_login = SimulatorLogin(
            simulator.username, mosquitto_hash(simulator.password), tuple(simulator_sites)
        )
        users.append((simulator_login.username, simulator_login.password_hash))
    return BrokerFilesPublic(
        passwd=passwd_file(users), acl=acl_file(logins, ingester_user, simulator_login)
    )


def broker_files_from_database(
    database_url: str,
    ingester: BrokerAddress | None,
    simulator: BrokerAddress | None = None,
    simulator_sites: Sequence[str] = (),
) -> BrokerFilesPublic:
    """Read the enabled edges and render the broker's files (for ``tonle broker acl``)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(ENABLED_EDGES).fetchall()
    return render_broker_files(
        [(r[0], r[1], r[2], r[3]) for r in rows], ingester, simulator, simulator_sites
    )

"""Put the folder, the data source and the dashboards into a running Grafana, idempotently.

Each item is read first and written only when it differs, so a second run changes
nothing. A dashboard differs when its ``rev:`` tag (the hash of its content, see
:mod:`dashboards.build`) or its folder differs from the deployed one's: any change in
the code gives a new revision, which replaces the deployed dashboard (Grafana keeps the
old one in its version history). The data source differs when a visible field differs
or Grafana has no password for it; Grafana never returns the password, so a changed
password alone is pushed with ``force``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

from dashboards.board import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID
from dashboards.build import FOLDER_UID, tagged_revision
from tonle.errors import TonleError

log = logging.getLogger(__name__)

Outcome = Literal["created", "updated", "unchanged"]


class DeployError(TonleError):
    """Grafana refused a request or cannot be reached."""


@dataclass(frozen=True)
class Done:
    """What deploy did to one item."""

    kind: Literal["folder", "datasource", "dashboard"]
    name: str
    outcome: Outcome


@dataclass(frozen=True)
class DatabaseAccess:
    """How Grafana reaches the database (which may differ from how Tonle does)."""

    host: str  # host:port as Grafana sees it
    database: str
    user: str
    password: str
    sslmode: str = "disable"

    @classmethod
    def from_url(cls, url: str) -> DatabaseAccess:
        """The parts of a ``postgresql://user:pass@host:port/db`` URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise DeployError(f"not a postgresql:// URL with a host: {parts.scheme}://…")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        return cls(
            host=f"{host}:{parts.port or 5432}",
            database=unquote(parts.path.lstrip("/")) or "postgres",
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )


def datasource_payload(access: DatabaseAccess) -> dict[str, Any]:
    """The data source as Grafana's HTTP API takes it (same as the provisioning file)."""
    return {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_NAME,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": access.host,
        "user": access.user,
        "database": access.database,
        "isDefault": True,
        "jsonData": {
            "database": access.database,
            "sslmode": access.sslmode,
            "postgresVersion": 1600,
            "timescaledb": True,
        },
        "secureJsonData": {"password": access.password},
    }


class _Folders(Protocol):
    def get_folder(self, uid: str) -> Any: ...
    def create_folder(self, title: str, uid: str | None = None) -> Any: ...
    def update_folder(self, uid: str, title: str | None = None, overwrite: bool = False) -> Any: ...


class _Datasources(Protocol):
    def get_datasource_by_uid(self, datasource_uid: str) -> Any: ...
    def create_datasource(self, datasource: dict[str, Any]) -> Any: ...
    def update_datasource_by_uid(self, datasource_uid: str, datasource: dict[str, Any]) -> Any: ...


class _Dashboards(Protocol):
    def get_dashboard(self, dashboard_uid: str) -> Any: ...
    def update_dashboard(self, dashboard: dict[str, Any]) -> Any: ...


class Grafana(Protocol):
    """The parts of ``grafana_client.GrafanaApi`` deploy uses."""

    folder: _Folders
    datasource: _Datasources
    dashboard: _Dashboards


@contextmanager
def connect(url: str, token: str, timeout_s: float = 10.0) -> Iterator[Grafana]:
    """A ``GrafanaApi`` for ``url`` (e.g. http://localhost:3000) with a service-account token.

    Its HTTP session (and the session's keep-alive thread) is closed on exit.
    """
    from grafana_client.api import GrafanaApi

    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    try:
        yield api
    finally:
        api.client.s.close()


def _missing(call: Any, *args: Any) -> Any | None:
    """The result of a GET, or None where Grafana answers 404."""
    from grafana_client.client import GrafanaClientError

    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _folder(api: Grafana, title: str, uid: str, force: bool) -> Done:
    found = _missing(api.folder.get_folder, uid)
    if found is None:
        api.folder.create_folder(title, uid=uid)
        return Done("folder", title, "created")
    if found.get("title") != title or force:
        api.folder.update_folder(uid, title=title, overwrite=True)
        return Done("folder", title, "updated")
    return Done("folder", title, "unchanged")


def _visible(datasource: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "type", "access", "url", "user", "database", "isDefault")
    json_data = datasource.get("jsonData") or {}
    wanted = ("database", "sslmode", "postgresVersion", "timescaledb")
    return {k: datasource.get(k) for k in keys} | {
        f"jsonData.{k}": json_data.get(k) for k in wanted
    }


def _datasource(api: Grafana, access: DatabaseAccess, force: bool) -> Done:
    payload = datasource_payload(access)
    found = _missing(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    if found is None:
        api.datasource.create_datasource(payload)
        return Done("datasource", DATASOURCE_NAME, "created")
    has_password = bool((found.get("secureJsonFields") or {}).get("password"))
    if force or not has_password or _visible(found) != _visible(payload):
        api.datasource.update_datasource_by_uid(DATASOURCE_UID, payload)
        return Done("datasource", DATASOURCE_NAME, "updated")
    return Done("datasource", DATASOURCE_NAME, "unchanged")


def _dashboard(api: Grafana, data: dict[str, Any], folder_uid: str, force: bool) -> Done:
    uid = str(data["uid"])
    found = _missing(api.dashboard.get_dashboard, uid)
    body = {
        "dashboard": {k: v for k, v in data.items() if k not in ("id", "version")},
        "folderUid": folder_uid,
        "message": f"tonle dashboards deploy rev:{tagged_revision(data)}",
    }
    if found is None:
        api.dashboard.update_dashboard(body | {"overwrite": False})
        return Done("dashboard", uid, "created")
    same_rev = tagged_revision(found.get("dashboard") or {}) == tagged_revision(data)
    same_folder = (found.get("meta") or {}).get("folderUid") == folder_uid
    if same_rev and same_folder and not force:
        return Done("dashboard", uid, "unchanged")
    api.dashboard.update_dashboard(body | {"overwrite": True})
    return Done("dashboard", uid, "updated")


def deploy(
    api: Grafana,
    dashboards: dict[str, dict[str, Any]],
    access: DatabaseAccess | None,
    *,
    folder_title: str = "Tonle",
    folder_uid: str = FOLDER_UID,
    force: bool = False,
) -> list[Done]:
    """Create or update the folder, the data source (unless ``access`` is None), the dashboards.

    Raises:
        DeployError: Grafana refused a request or could not be reached.
    """
    from grafana_client.client import GrafanaException
    from niquests.exceptions import RequestException

    done: list[Done] = []
    try:
        done.append(_folder(api, folder_title, folder_uid, force))
        if access is not None:
            done.append(_datasource(api, access, force))
        for data in dashboards.values():
            done.append(_dashboard(api, data, folder_uid, force))
            log.info("%s %s: %s", done[-1].kind, done[-1].name, done[-1].outcome)
    except GrafanaException as exc:
        raise DeployError(f"Grafana refused the request: {exc}") from exc
    except RequestException as exc:
        raise DeployError(f"cannot reach Grafana: {exc}") from exc
    return done

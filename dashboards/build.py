"""Write the dashboards and Grafana's provisioning files into a folder.

Layout (the compose stack mounts these paths)::

    provisioning/datasources/tonle.yaml   the PostgreSQL data source, secrets from $VARS
    provisioning/dashboards/tonle.yaml    a file provider reading /var/lib/grafana/dashboards/tonle
    json/<uid>.json                       one dashboard per file

Each dashboard carries a tag ``rev:<12 hex digits>``, the SHA-256 of its JSON without
that tag: `tonle dashboards deploy` compares it with the deployed one's to decide
whether to replace it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from dashboards.board import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID
from dashboards.catalog import all_boards

PACKAGE_DIR = Path(__file__).resolve().parent
FOLDER_TITLE = "Tonle"
FOLDER_UID = "tonle"
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/tonle"
REV_PREFIX = "rev:"


def revision(dashboard: dict[str, Any]) -> str:
    """The content hash of a dashboard's JSON, ignoring its own ``rev:`` tag and Grafana's ids."""
    content = {k: v for k, v in dashboard.items() if k not in ("id", "version")}
    content["tags"] = [t for t in content.get("tags", []) if not t.startswith(REV_PREFIX)]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def tagged_revision(dashboard: dict[str, Any]) -> str | None:
    """The ``rev:`` tag a dashboard carries, if any."""
    for tag in dashboard.get("tags") or []:
        if isinstance(tag, str) and tag.startswith(REV_PREFIX):
            return tag[len(REV_PREFIX) :]
    return None


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON by uid, tagged with its revision."""
    built: dict[str, dict[str, Any]] = {}
    for board in all_boards():
        data = board.to_json()
        data["tags"] = [*data.get("tags", []), REV_PREFIX + revision(data)]
        built[board.uid] = data
    return built


def datasource_provisioning() -> dict[str, Any]:
    """Grafana's data source provisioning file; Grafana expands the $VARS when it reads it."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": DATASOURCE_NAME,
                "uid": DATASOURCE_UID,
                "type": DATASOURCE_TYPE,
                "access": "proxy",
                "url": "$TONLE_GRAFANA_DB_HOST",
                "user": "$TONLE_GRAFANA_DB_USER",
                "database": "$TONLE_GRAFANA_DB_NAME",  # read by Grafana before 10.x
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    "database": "$TONLE_GRAFANA_DB_NAME",
                    "sslmode": "disable",
                    "postgresVersion": 1600,
                    "timescaledb": True,
                },
                "secureJsonData": {"password": "$TONLE_GRAFANA_DB_PASSWORD"},
            }
        ],
    }


def dashboard_provisioning() -> dict[str, Any]:
    """Grafana's dashboard provider file: the JSON folder, read-only in the UI."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "tonle",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }


def rendered(out: Path) -> dict[Path, str]:
    """Every file's path under ``out`` and its text, as :func:`write` writes them."""

    def dump_yaml(data: dict[str, Any]) -> str:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    files = {
        out / "provisioning" / "datasources" / "tonle.yaml": dump_yaml(datasource_provisioning()),
        out / "provisioning" / "dashboards" / "tonle.yaml": dump_yaml(dashboard_provisioning()),
    }
    for uid, data in dashboards().items():
        files[out / "json" / f"{uid}.json"] = (
            json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        )
    return files


def write(out: Path = PACKAGE_DIR) -> list[tuple[Path, str]]:
    """Write the files under ``out``; (path, written or unchanged) for each.

    A dashboard JSON in ``out/json`` that the code no longer builds is removed, so the
    folder holds exactly what the code describes.
    """
    files = rendered(out)
    done: list[tuple[Path, str]] = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.read_text("utf-8") == text:
            done.append((path, "unchanged"))
            continue
        path.write_text(text, "utf-8")
        done.append((path, "written"))
    for stale in sorted((out / "json").glob("*.json")):
        if stale not in files:
            stale.unlink()
            done.append((stale, "removed"))
    return done

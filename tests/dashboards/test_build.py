"""The committed files are what the code builds, and each dashboard reads back into the SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from typer.testing import CliRunner

from dashboards.board import DATASOURCE_TYPE, DATASOURCE_UID, SqlTarget
from dashboards.build import PACKAGE_DIR, dashboards, rendered, revision, tagged_revision, write
from dashboards.catalog import all_boards
from tonle.cli import app

BUILT = dashboards()
PANEL_TYPES = {"timeseries", "stat", "table", "state-timeline", "bargauge", "piechart"}


def test_the_committed_files_are_what_the_code_builds() -> None:
    expected = rendered(PACKAGE_DIR)
    for path, text in expected.items():
        assert path.exists(), f"{path} is missing: run `tonle dashboards build`"
        assert path.read_text("utf-8") == text, f"{path} differs: run `tonle dashboards build`"
    committed = set((PACKAGE_DIR / "json").glob("*.json"))
    assert committed == {p for p in expected if p.parent.name == "json"}


def test_build_writes_then_reports_unchanged_and_removes_strays(tmp_path: Path) -> None:
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "tonle-old.json").write_text("{}")
    first = write(tmp_path)
    assert {state for _, state in first} == {"written", "removed"}
    assert len([s for _, s in first if s == "written"]) == len(BUILT) + 2
    assert not (tmp_path / "json" / "tonle-old.json").exists()
    assert {state for _, state in write(tmp_path)} == {"unchanged"}


def test_provisioning_files_hold_no_secret_and_name_the_datasource() -> None:
    files = rendered(PACKAGE_DIR)
    sources = yaml.safe_load(files[PACKAGE_DIR / "provisioning" / "datasources" / "tonle.yaml"])
    (source,) = sources["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["name"] == "Tonle (TimescaleDB)"
    assert source["jsonData"] == {
        "database": "$TONLE_GRAFANA_DB_NAME",
        "sslmode": "disable",
        "postgresVersion": 1600,
        "timescaledb": True,
    }
    assert source["url"] == "$TONLE_GRAFANA_DB_HOST"
    assert source["user"] == "$TONLE_GRAFANA_DB_USER"
    assert source["secureJsonData"] == {"password": "$TONLE_GRAFANA_DB_PASSWORD"}
    providers = yaml.safe_load(files[PACKAGE_DIR / "provisioning" / "dashboards" / "tonle.yaml"])
    (provider,) = providers["providers"]
    assert provider["folder"] == "Tonle" and provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/tonle"
    assert provider["allowUiUpdates"] is False


@pytest.mark.parametrize("uid", sorted(BUILT))
def test_dashboard_round_trips_through_the_sdk_model(uid: str) -> None:
    data = json.loads((PACKAGE_DIR / "json" / f"{uid}.json").read_text("utf-8"))
    parsed = model.Dashboard.from_json(data)
    again: dict[str, Any] = json.loads(json.dumps(parsed, cls=JSONEncoder))
    assert again == data
    assert parsed.uid == uid and uid.startswith("tonle-")
    assert tagged_revision(data) == revision(data)
    panels = [p for p in parsed.panels or [] if isinstance(p, model.Panel)]
    assert panels
    variables = {v.name for v in (parsed.templating.list_val or [])}
    for panel in panels:
        assert panel.type_val in PANEL_TYPES, panel.title
        assert panel.datasource is not None and panel.datasource.uid == DATASOURCE_UID
        assert panel.datasource.type_val == DATASOURCE_TYPE
        assert panel.title and panel.description
        assert panel.targets and all(isinstance(t, SqlTarget) for t in panel.targets)
        for target in panel.targets:
            assert isinstance(target, SqlTarget) and target.raw_sql
            used = {name for name in ("site", "line", "machine") if f"${name}" in target.raw_sql}
            assert used <= variables, f"{uid}/{panel.title} uses undefined {used - variables}"
    ids = [p.id_val for p in parsed.panels or []]
    assert len(ids) == len(set(ids))


def test_panel_queries_in_the_files_match_the_code() -> None:
    for board in all_boards():
        data = BUILT[board.uid]
        in_file = {p["title"]: p["targets"][0]["rawSql"] for p in data["panels"]}
        assert in_file == {p.panel: p.query.sql.strip() for p in board.queries}


def test_revision_ignores_grafana_ids_and_follows_content() -> None:
    data = BUILT["tonle-overview"]
    same = {**data, "id": 42, "version": 7}
    assert revision(same) == revision(data)
    changed = {**data, "title": "Another title"}
    assert revision(changed) != revision(data)


def test_the_build_command_writes_into_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboards", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("written") == len(BUILT) + 2
    assert (tmp_path / "json" / "tonle-portfolio.json").read_text("utf-8") == (
        PACKAGE_DIR / "json" / "tonle-portfolio.json"
    ).read_text("utf-8")

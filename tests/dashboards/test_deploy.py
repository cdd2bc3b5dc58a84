"""`tonle dashboards deploy` against a fake Grafana: create, then nothing, then replace."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboards.build import dashboards, revision
from dashboards.deploy import DatabaseAccess, DeployError, Done, connect, deploy
from tests.dashboards.fake_grafana import fake_grafana
from tonle.cli import app

TOKEN = "glsa_test_token"  # noqa: S105 - the fake Grafana's token
ACCESS = DatabaseAccess("timescaledb:5432", "tonle", "grafana", "s3cret")


def _outcomes(done: list[Done]) -> dict[str, str]:
    return {f"{d.kind}:{d.name}": d.outcome for d in done}


def _bumped(built: dict[str, dict[str, Any]], uid: str) -> dict[str, dict[str, Any]]:
    """The dashboards with one panel's title changed, re-tagged as the build tags it."""
    changed = copy.deepcopy(built)
    board = changed[uid]
    board["panels"][0]["title"] += " (new)"
    board["tags"] = [t for t in board["tags"] if not t.startswith("rev:")]
    board["tags"].append("rev:" + revision(board))
    return changed


def test_first_run_creates_second_changes_nothing_a_change_replaces() -> None:
    built = dashboards()
    with fake_grafana(TOKEN) as (url, state), connect(url, TOKEN) as api:
        first = _outcomes(deploy(api, built, ACCESS))
        assert set(first.values()) == {"created"}
        assert len(first) == 2 + len(built)
        assert state.folders["tonle"]["title"] == "Tonle"
        stored = state.datasources["tonle-timescaledb"]
        assert stored["url"] == "timescaledb:5432" and stored["jsonData"]["timescaledb"] is True
        assert stored["secureJsonData"] == {"password": "s3cret"}
        assert set(state.dashboards) == set(built)
        writes = len(state.writes())

        second = _outcomes(deploy(api, built, ACCESS))
        assert set(second.values()) == {"unchanged"}
        assert len(state.writes()) == writes  # nothing written

        changed = _bumped(built, "tonle-energy")
        third = _outcomes(deploy(api, changed, ACCESS))
        assert third.pop("dashboard:tonle-energy") == "updated"
        assert set(third.values()) == {"unchanged"}
        energy = state.dashboards["tonle-energy"]["dashboard"]
        assert energy["version"] == 2
        assert energy["panels"][0]["title"].endswith("(new)")
        assert state.dashboards["tonle-overview"]["dashboard"]["version"] == 1


def test_a_changed_database_or_folder_title_is_updated() -> None:
    built = dashboards()
    with fake_grafana(TOKEN) as (url, state), connect(url, TOKEN) as api:
        deploy(api, built, ACCESS)
        moved = DatabaseAccess("db.internal:6432", "tonle", "grafana", "s3cret")
        done = _outcomes(deploy(api, built, moved, folder_title="Tonle pilots"))
        assert done["datasource:Tonle (TimescaleDB)"] == "updated"
        assert done["folder:Tonle pilots"] == "updated"
        assert state.datasources["tonle-timescaledb"]["url"] == "db.internal:6432"
        assert {v for k, v in done.items() if k.startswith("dashboard:")} == {"unchanged"}
        forced = _outcomes(deploy(api, built, None, folder_title="Tonle pilots", force=True))
        assert set(forced.values()) == {"updated"} and len(forced) == 1 + len(built)


def test_a_wrong_token_is_a_deploy_error() -> None:
    with (
        fake_grafana(TOKEN) as (url, _),
        connect(url, "wrong") as api,
        pytest.raises(DeployError, match="refused"),
    ):
        deploy(api, dashboards(), ACCESS)


def test_database_access_from_a_url() -> None:
    access = DatabaseAccess.from_url("postgresql://tonle:p%40ss@db:6543/factory")
    assert access == DatabaseAccess("db:6543", "factory", "tonle", "p@ss")
    assert DatabaseAccess.from_url("postgresql://u@h/d").host == "h:5432"
    with pytest.raises(DeployError):
        DatabaseAccess.from_url("mysql://h/d")


def test_the_command_prints_what_it_did_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONLE_DATABASE_URL", "postgresql://tonle:pw@127.0.0.1:5432/tonle")
    runner = CliRunner()
    with fake_grafana(TOKEN) as (url, state):
        args = ["dashboards", "deploy", "--url", url, "--token", TOKEN,
                "--db-host", "timescaledb:5432"]  # fmt: skip
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        assert "created    dashboard  tonle-overview" in first.output
        again = runner.invoke(app, args)
        assert again.exit_code == 0, again.output
        assert again.output.count("unchanged") == 2 + len(dashboards())
        assert state.datasources["tonle-timescaledb"]["user"] == "tonle"
        assert state.datasources["tonle-timescaledb"]["url"] == "timescaledb:5432"

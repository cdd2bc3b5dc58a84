"""Registry writes: admin creates, changes and deactivates; others get 403; bad input 4xx."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Seeded, bearer

pytestmark = pytest.mark.db

PROBLEM = "application/problem+json"
SITE = {
    "site": "gamma",
    "name": "Gamma Garments",
    "timezone": "Asia/Phnom_Penh",
    "sector": "garments",
    "tariff": "EDC medium voltage",
    "pilot_investment": 12000.0,
    "pilot_start": "2026-09-01",
    "pilot_end": "2027-02-28",
}


def _problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    detail: str = response.json()["detail"]
    return detail


def _admin(seeded: Seeded) -> dict[str, str]:
    return bearer(seeded.tokens["admin"])


def test_site_line_machine_sensor_created_changed_and_deactivated(
    client: TestClient, seeded: Seeded
) -> None:
    admin = _admin(seeded)
    created = client.post("/sites", json=SITE, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json() == {**SITE, "active": True}

    line = client.post("/sites/gamma/lines", json={"line": "sew", "name": "Sewing"}, headers=admin)
    assert line.status_code == 201
    assert line.json() == {"site": "gamma", "line": "sew", "name": "Sewing", "active": True}

    machine = client.post(
        "/sites/gamma/lines/sew/machines",
        json={"machine": "m1", "kind": "sewing", "rated_power_w": 550, "ideal_cycle_s": 18},
        headers=admin,
    )
    assert machine.status_code == 201
    assert machine.json() == {
        "site": "gamma", "line": "sew", "machine": "m1", "name": None, "kind": "sewing",
        "rated_power_w": 550.0, "ideal_cycle_s": 18.0, "active": True,
    }  # fmt: skip

    sensor = client.post(
        "/sites/gamma/lines/sew/machines/m1/sensors",
        json={"metric": "active_power", "unit": "W"},
        headers=admin,
    )
    assert sensor.status_code == 201
    assert sensor.json()["unit"] == "W"

    changed = client.patch(
        "/sites/gamma", json={"tariff": "EDC low voltage", "pilot_investment": 9000}, headers=admin
    )
    assert changed.json()["tariff"] == "EDC low voltage"
    assert changed.json()["pilot_investment"] == 9000.0
    assert changed.json()["name"] == "Gamma Garments"  # untouched fields stay

    machine_changed = client.patch(
        "/sites/gamma/lines/sew/machines/m1", json={"rated_power_w": 600, "name": None},
        headers=admin,
    )  # fmt: skip
    assert machine_changed.json()["rated_power_w"] == 600.0

    for path in ("/sites/gamma/lines/sew/machines/m1/sensors/active_power",
                 "/sites/gamma/lines/sew/machines/m1", "/sites/gamma/lines/sew",
                 "/sites/gamma"):  # fmt: skip
        response = client.patch(path, json={"active": False}, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False

    # Deactivated, not deleted: the site and its tree are still there.
    detail = client.get("/sites/gamma", headers=admin).json()
    assert detail["active"] is False
    assert detail["lines"][0]["machines"][0]["metrics"] == ["active_power"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/sites", {"site": "alpha"}),
        ("/sites/alpha/lines", {"line": "sew"}),
        ("/sites/alpha/lines/sew/machines", {"machine": "m1"}),
        ("/sites/alpha/lines/sew/machines/m1/sensors", {"metric": "motor_temp"}),
    ],
)
def test_duplicates_are_409(
    client: TestClient, seeded: Seeded, path: str, body: dict[str, str]
) -> None:
    assert "exists already" in _problem(client.post(path, json=body, headers=_admin(seeded)), 409)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/sites", {"site": "Bad Id"}, "body.site"),
        ("POST", "/sites", {"site": "-x"}, "body.site"),
        ("POST", "/sites", {"site": "ok", "timezone": "Mars/Olympus"}, "body.timezone"),
        (
            "POST",
            "/sites",
            {"site": "ok", "pilot_start": "2027-01-02", "pilot_end": "2027-01-01"},
            "body",
        ),
        ("POST", "/sites", {"site": "ok", "colour": "red"}, "body.colour"),
        ("POST", "/sites/alpha/lines", {"line": "Sew"}, "body.line"),
        (
            "POST",
            "/sites/alpha/lines/sew/machines",
            {"machine": "m_9", "rated_power_w": -1},
            "body.rated_power_w",
        ),
        ("POST", "/sites/alpha/lines/sew/machines/m1/sensors", {"metric": "Power"}, "body.metric"),
        ("PATCH", "/sites/alpha/lines/BAD", {"name": "x"}, "path.line"),
    ],
)
def test_bad_ids_and_fields_are_422(
    client: TestClient, seeded: Seeded, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.request(method, path, json=body, headers=_admin(seeded))
    _problem(response, 422)
    assert field in [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/sites/alpha", {}, "nothing to change"),
        ("/sites/alpha", {"timezone": None}, "timezone may not be null"),
        ("/sites/alpha", {"pilot_start": "2027-01-02", "pilot_end": "2027-01-01"}, "pilot_end"),
    ],
)
def test_updates_that_make_no_sense_are_422(
    client: TestClient, seeded: Seeded, path: str, body: dict[str, Any], says: str
) -> None:
    assert says in _problem(client.patch(path, json=body, headers=_admin(seeded)), 422)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/sites/alpha/lines/nope", {"name": "x"}),
        ("PATCH", "/sites/alpha/lines/sew/machines/nope", {"name": "x"}),
        ("PATCH", "/sites/alpha/lines/sew/machines/m1/sensors/nope", {"unit": "W"}),
        ("POST", "/sites/alpha/lines/nope/machines", {"machine": "mx"}),
        ("POST", "/sites/alpha/lines/sew/machines/nope/sensors", {"metric": "energy"}),
        ("PATCH", "/sites/nope", {"name": "x"}),
    ],
)
def test_unknown_parents_and_rows_are_404(
    client: TestClient, seeded: Seeded, method: str, path: str, body: dict[str, str]
) -> None:
    _problem(client.request(method, path, json=body, headers=_admin(seeded)), 404)


WRITES = [
    ("POST", "/sites", {"site": "delta"}),
    ("PATCH", "/sites/alpha", {"name": "mine now"}),
    ("POST", "/sites/alpha/lines", {"line": "new"}),
    ("PATCH", "/sites/alpha/lines/sew", {"active": False}),
    ("POST", "/sites/alpha/lines/sew/machines", {"machine": "m9"}),
    ("PATCH", "/sites/alpha/lines/sew/machines/m1", {"active": False}),
    ("POST", "/sites/alpha/lines/sew/machines/m1/sensors", {"metric": "energy"}),
    ("PATCH", "/sites/alpha/lines/sew/machines/m1/sensors/active_power", {"active": False}),
    ("POST", "/sites/alpha/edges", {"edge_id": "gw-9"}),
    ("DELETE", "/sites/alpha/edges/gw-9", None),
    ("GET", "/broker/acl", None),
]


@pytest.mark.parametrize("role", ["staff", "factory"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_only_admin_writes(
    client: TestClient,
    seeded: Seeded,
    role: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    """Staff and alpha's own factory token are refused, even on alpha."""
    response = client.request(method, path, json=body, headers=bearer(seeded.tokens[role]))
    assert "needs an admin token" in _problem(response, 403)
    detail = client.get("/sites/alpha", headers=_admin(seeded)).json()
    assert detail["name"] == "Alpha" and detail["active"] is True
    assert [line["line"] for line in detail["lines"]] == ["sew", "utilities"]

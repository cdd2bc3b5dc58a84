"""Every route against a real database: happy paths, problem documents, token scope."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import T0, Seeded, bearer
from tonle.settings import Settings

pytestmark = pytest.mark.db

PROBLEM = "application/problem+json"


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return dict(body)


def test_healthz_answers_without_a_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database_and_broker(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["database"]["ok"] and body["broker"]["ok"]


def test_readyz_is_a_503_problem_when_the_broker_is_down(database_url: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(database_url=database_url, mqtt_url=f"mqtt://127.0.0.1:{port}")
    with TestClient(create_app(settings)) as down:
        body = _problem(down.get("/readyz"), 503)
    assert body["database"] == {"ok": True, "detail": "SELECT 1 answered"}
    assert body["broker"]["ok"] is False
    assert f"127.0.0.1:{port}" in str(body["detail"])


@pytest.mark.parametrize(
    ("role", "expected"), [("admin", ["alpha", "beta"]), ("factory", ["alpha"])]
)
def test_sites_lists_what_the_token_may_see(
    client: TestClient, seeded: Seeded, role: str, expected: list[str]
) -> None:
    response = client.get("/sites", headers=bearer(seeded.tokens[role]))
    assert [site["site"] for site in response.json()] == expected


def test_site_detail_has_lines_machines_and_metrics(client: TestClient, seeded: Seeded) -> None:
    body = client.get("/sites/alpha", headers=bearer(seeded.tokens["staff"])).json()
    assert body["site"] == "alpha" and body["name"] == "Alpha" and body["timezone"] == "UTC"
    assert [line["line"] for line in body["lines"]] == ["sew", "utilities"]
    sew = body["lines"][0]["machines"]
    assert [m["machine"] for m in sew] == ["m1", "m2"]
    assert sew[0]["metrics"] == ["active_power", "motor_temp"]
    assert sew[0]["kind"] == "sewing"


def _telemetry(client: TestClient, token: str, **params: object) -> Any:
    return client.get("/sites/alpha/telemetry", params=params, headers=bearer(token))


def test_raw_telemetry_of_one_series(client: TestClient, seeded: Seeded) -> None:
    response = _telemetry(
        client, seeded.tokens["factory"], machine="m1", metric="active_power",
        start=T0.isoformat(), end=(T0 + timedelta(hours=1)).isoformat(),
    )  # fmt: skip
    body = response.json()
    assert body["bucket"] == "raw"
    assert [p["value"] for p in body["points"]] == [float(i) for i in range(60)]
    assert {p["unit"] for p in body["points"]} == {"W"}
    assert body["points"][0]["n"] is None


def test_minute_and_hour_rollups(client: TestClient, seeded: Seeded) -> None:
    token = seeded.tokens["admin"]
    window = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=3)).isoformat()}
    minutes = _telemetry(client, token, machine="m2", metric="motor_temp", bucket="1m", **window)
    points = minutes.json()["points"]
    assert len(points) == 180 and points[5]["value"] == 5.0 and points[5]["n"] == 1
    hours = _telemetry(client, token, machine="m2", metric="motor_temp", bucket="1h", **window)
    points = hours.json()["points"]
    assert [(p["value"], p["min"], p["max"], p["n"]) for p in points] == [
        (29.5, 0.0, 59.0, 60),
        (89.5, 60.0, 119.0, 60),
        (149.5, 120.0, 179.0, 60),
    ]
    days = _telemetry(client, token, machine="m2", metric="motor_temp", bucket="1d", **window)
    points = days.json()["points"]
    assert [(p["ts"], p["value"], p["min"], p["max"], p["n"]) for p in points] == [
        ("2026-11-02T00:00:00Z", 89.5, 0.0, 179.0, 180),
    ]


def test_telemetry_limit_and_line_filter(client: TestClient, seeded: Seeded) -> None:
    response = _telemetry(
        client, seeded.tokens["admin"], line="utilities", start=T0.isoformat(),
        end=(T0 + timedelta(hours=3)).isoformat(), limit=7,
    )  # fmt: skip
    points = response.json()["points"]
    assert len(points) == 7 and {p["machine"] for p in points} == {"main"}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"start": "2026-11-02T02:00:00Z", "end": "2026-11-02T01:00:00Z"}, "must be before end"),
        ({"start": "2026-09-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "at most 31 days"),
        (
            {"start": "2025-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "bucket": "1h"},
            "at most 366 days",
        ),
        (
            {"start": "2020-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "bucket": "1d"},
            "at most 1830 days",
        ),
        ({"metric": "bogus_metric"}, "no metric 'bogus_metric'; known: active_power, motor_temp"),
        ({"machine": "nope"}, "no machine 'nope'; known: c1"),
        ({"bucket": "1w"}, "query.bucket"),
        ({"start": "yesterday"}, "query.start"),
        ({"machine": "Bad Id"}, "query.machine"),
    ],
)
def test_bad_telemetry_queries_are_problems(
    client: TestClient, seeded: Seeded, params: dict[str, str], says: str
) -> None:
    response = client.get(
        "/sites/beta/telemetry", params=params, headers=bearer(seeded.tokens["admin"])
    )
    assert says in str(_problem(response, 422)["detail"])


def test_csv_export_streams_the_same_rows(client: TestClient, seeded: Seeded) -> None:
    params = {
        "machine": "m1",
        "start": T0.isoformat(),
        "end": (T0 + timedelta(hours=3)).isoformat(),
    }
    response = client.get(
        "/sites/alpha/telemetry.csv", params=params, headers=bearer(seeded.tokens["factory"])
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "ts,line,machine,metric,value" and len(lines) == 1 + 2 * 180
    assert lines[1:3] == [
        "2026-11-02T00:00:00+00:00,sew,m1,active_power,0.0",
        "2026-11-02T00:00:00+00:00,sew,m1,motor_temp,0.0",
    ]
    hours = client.get(
        "/sites/alpha/telemetry.csv", params={**params, "bucket": "1h"},
        headers=bearer(seeded.tokens["factory"]),
    )  # fmt: skip
    assert hours.text.splitlines()[1] == "2026-11-02T00:00:00+00:00,sew,m1,active_power,29.5"
    too_long = client.get(
        "/sites/alpha/telemetry.csv",
        params={"start": "2026-09-01T00:00:00Z", "end": params["end"]},
        headers=bearer(seeded.tokens["factory"]),
    )
    assert "at most 31 days" in str(_problem(too_long, 422)["detail"])


def test_completeness_from_readings(client: TestClient, seeded: Seeded) -> None:
    params = {
        "machine": "m1",
        "start": T0.isoformat(),
        "end": (T0 + timedelta(hours=3)).isoformat(),
    }
    body = client.get(
        "/sites/alpha/completeness", params=params, headers=bearer(seeded.tokens["factory"])
    ).json()
    assert body["source"] == "raw"
    assert body["series"] == [
        {"line": "sew", "machine": "m1", "metric": metric, "stored": 180, "interval_s": 60.0,
         "expected": 180, "completeness": 1.0, "longest_gap_s": 60.0}
        for metric in ("active_power", "motor_temp")
    ]  # fmt: skip


def test_completeness_of_a_long_range_from_the_hourly_rollup(
    client: TestClient, seeded: Seeded
) -> None:
    start, end = T0 - timedelta(days=10), T0 + timedelta(hours=3)
    params = {"machine": "m2", "start": start.isoformat(), "end": end.isoformat()}
    body = client.get(
        "/sites/alpha/completeness", params=params, headers=bearer(seeded.tokens["admin"])
    ).json()
    assert body["source"] == "1h"
    expected = round((end - start).total_seconds() / 60)
    assert [(s["metric"], s["stored"], s["interval_s"], s["expected"], s["longest_gap_s"])
            for s in body["series"]] == [
        (metric, 180, 60.0, expected, 10 * 86400.0) for metric in ("active_power", "motor_temp")
    ]  # fmt: skip
    assert body["series"][0]["completeness"] == 180 / expected


def test_alerts_with_and_without_the_open_filter(client: TestClient, seeded: Seeded) -> None:
    token = bearer(seeded.tokens["staff"])
    every = client.get("/sites/alpha/alerts", headers=token).json()
    assert len(every) == 4
    opened = client.get("/sites/alpha/alerts", params={"open": "true"}, headers=token).json()
    assert sorted(a["machine"] for a in opened) == ["m1", "m2", "main"]
    closed = client.get("/sites/alpha/alerts", params={"open": "false"}, headers=token).json()
    assert [(a["machine"], a["severity"]) for a in closed] == [("m1", "critical")]
    assert opened[0]["reasons"][0]["feature"] == "motor_temp"


def test_acknowledge_once_then_409(client: TestClient, seeded: Seeded) -> None:
    alert_id = seeded.alerts["alpha/m2"]
    url = f"/alerts/{alert_id}/ack"
    first = client.post(
        url, json={"comment": "belt changed"}, headers=bearer(seeded.tokens["factory"])
    )
    body = first.json()
    assert first.status_code == 200, first.text
    assert body["acknowledged_by"] == "fay" and body["ack_comment"] == "belt changed"
    assert body["acknowledged_at"] is not None
    again = client.post(url, json={"comment": "again"}, headers=bearer(seeded.tokens["staff"]))
    assert "was acknowledged by fay" in str(_problem(again, 409)["detail"])
    stored = client.get("/sites/alpha/alerts", headers=bearer(seeded.tokens["admin"])).json()
    assert [a["ack_comment"] for a in stored if a["alert_id"] == alert_id] == ["belt changed"]


def test_machine_health_latest_rows(client: TestClient, seeded: Seeded) -> None:
    body = client.get("/sites/alpha/health", headers=bearer(seeded.tokens["admin"])).json()
    assert [(m["line"], m["machine"]) for m in body] == [
        ("sew", "m1"), ("sew", "m2"), ("utilities", "main"),
    ]  # fmt: skip
    m1, m2 = body[0], body[1]
    assert m1["health"]["health"] == 40.0 and m1["health"]["ts"].startswith("2026-11-02T02:00")
    assert m1["rul"] == {
        "ts": "2026-11-02T02:00:00Z", "rul_h": 100.0, "low_h": 50.0, "high_h": 200.0,
        "capped": False,
    }  # fmt: skip
    assert m2["rul"] is None


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/sites/gamma", 404),
        ("GET", "/sites/gamma/telemetry", 404),
        ("GET", "/sites/Not-An-Id", 422),
        ("POST", "/alerts/999999/ack", 404),
        ("POST", "/alerts/abc/ack", 422),
        ("DELETE", "/sites", 405),
    ],
)
def test_wrong_ids_and_routes_are_problems(
    client: TestClient, seeded: Seeded, method: str, path: str, status: int
) -> None:
    response = client.request(
        method, path, json={"comment": ""}, headers=bearer(seeded.tokens["admin"])
    )
    _problem(response, status)


@pytest.mark.parametrize("header", [None, "Bearer tonle_not-a-token", "Basic abc"])
def test_missing_or_unknown_tokens_are_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/sites", headers=headers)
    _problem(response, 401)


# Every route that reads or changes a site's data, asked by alpha's factory token about beta.
SCOPED = [
    ("GET", "/sites/{site}", None),
    ("GET", "/sites/{site}/telemetry", None),
    ("GET", "/sites/{site}/completeness", None),
    ("GET", "/sites/{site}/telemetry.csv", None),
    ("GET", "/sites/{site}/alerts", None),
    ("GET", "/sites/{site}/health", None),
    ("GET", "/sites/{site}/energy", None),
    ("GET", "/sites/{site}/peaks", None),
    ("GET", "/sites/{site}/outages", None),
    ("GET", "/sites/{site}/costs", None),
    ("GET", "/sites/{site}/savings", None),
    ("GET", "/sites/{site}/oee", None),
    ("GET", "/sites/{site}/edges", None),
    ("POST", "/alerts/{alert_id}/ack", {"comment": "not mine"}),
    ("PATCH", "/sites/{site}", {"name": "mine now"}),
    ("POST", "/sites/{site}/lines", {"line": "new"}),
    ("PATCH", "/sites/{site}/lines/{line}", {"active": False}),
    ("POST", "/sites/{site}/lines/{line}/machines", {"machine": "m9"}),
    ("PATCH", "/sites/{site}/lines/{line}/machines/{machine}", {"active": False}),
    ("POST", "/sites/{site}/lines/{line}/machines/{machine}/sensors", {"metric": "energy"}),
    ("PATCH", "/sites/{site}/lines/{line}/machines/{machine}/sensors/{metric}", {"unit": "kW"}),
    ("POST", "/sites/{site}/edges", {"edge_id": "gw-9"}),
    ("DELETE", "/sites/{site}/edges/{edge_id}", None),
]


@pytest.mark.parametrize(("method", "template", "body"), SCOPED)
def test_a_factory_token_never_reaches_another_site(
    client: TestClient,
    seeded: Seeded,
    method: str,
    template: str,
    body: dict[str, str] | None,
) -> None:
    path = template.format(
        site="beta", alert_id=seeded.alerts["beta/c1"], line="cut", machine="c1",
        metric="active_power", edge_id="gw-1",
    )  # fmt: skip
    response = client.request(method, path, json=body, headers=bearer(seeded.tokens["factory"]))
    assert "site 'alpha' only" in str(_problem(response, 403)["detail"])
    beta = client.get("/sites/beta/alerts", headers=bearer(seeded.tokens["admin"])).json()
    assert [a["acknowledged_at"] for a in beta] == [None]
    detail = client.get("/sites/beta", headers=bearer(seeded.tokens["admin"])).json()
    assert (detail["name"], detail["active"]) == ("Beta", True)
    assert [(line["line"], [m["machine"] for m in line["machines"]]) for line in
            detail["lines"]] == [("cut", ["c1"])]  # fmt: skip


def test_the_scope_test_covers_every_route_with_site_data(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    # /sites and /portfolio list only what the token may see (tested on their own).
    public = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/sites"), ("GET", "/portfolio")}
    # Admin-only routes with no site in the path (403 for others: test_registry).
    public |= {("POST", "/sites"), ("GET", "/broker/acl")}
    assert routes - public == {(method, path) for method, path, _ in SCOPED}


def test_openapi_documents_problems(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ack = schema["paths"]["/alerts/{alert_id}/ack"]["post"]["responses"]
    assert "application/problem+json" in ack["409"]["content"]
    assert "ProblemPublic" in schema["components"]["schemas"]

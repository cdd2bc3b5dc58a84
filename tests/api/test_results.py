"""Energy, OEE, edge and portfolio routes on rows stored as the analytics write them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.queries import status_fields
from tests.api.conftest import T0, Seeded, bearer

pytestmark = pytest.mark.db

PROBLEM = "application/problem+json"
DAY = {"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat()}


def _get(client: TestClient, seeded: Seeded, path: str, role: str = "staff", **params: Any) -> Any:
    response = client.get(path, params=params, headers=bearer(seeded.tokens[role]))
    assert response.status_code == 200, response.text
    return response.json()


def _problem_detail(response: Any, status: int = 422) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return str(response.json()["detail"])


def _energy(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (i["line"], i["machine"], i["energy_kwh"], i["completeness"], i["method"],
         i["idle_kwh"], i["idle_cost"], i["currency"])
        for i in body["intervals"]
    ]  # fmt: skip


def test_machine_energy_carries_each_machines_idle_waste(
    client: TestClient, seeded: Seeded
) -> None:
    body = _get(client, seeded, "/sites/alpha/energy", "factory", level="machine", grain="1d",
                **DAY)  # fmt: skip
    assert (body["site"], body["level"], body["grain"]) == ("alpha", "machine", "1d")
    assert _energy(body) == [
        ("sew", "m1", 12.0, 1.0, "integrated", 2.0, 0.25, "USD"),
        ("sew", "m2", 8.0, 0.5, "integrated", 1.0, 0.5, "USD"),
    ]
    assert body["intervals"][0]["bucket_start"] == "2026-11-02T00:00:00Z"
    assert body["intervals"][0]["bucket_end"] == "2026-11-03T00:00:00Z"


@pytest.mark.parametrize(
    ("level", "grain", "expected"),
    [
        ("line", "1d", [("sew", "", 20.0, 0.75, "sum", 3.0, 0.75, "USD")]),
        ("site", "1d", [("", "", 30.0, 1.0, "meter", 3.0, 0.75, "USD")]),
        ("site", "1h", [("", "", 1.5, 1.0, "meter", None, None, None),
                        ("", "", 2.5, 1.0, "meter", None, None, None)]),
    ],
)  # fmt: skip
def test_line_and_site_energy_sum_idle_waste_to_their_level(
    client: TestClient, seeded: Seeded, level: str, grain: str, expected: list[tuple[Any, ...]]
) -> None:
    body = _get(client, seeded, "/sites/alpha/energy", level=level, grain=grain, **DAY)
    assert _energy(body) == expected


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/sites/alpha/energy", {"start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
         "must be before end"),
        ("/sites/alpha/energy", {"grain": "15m", "start": "2026-01-01T00:00:00Z",
                                 "end": "2026-11-01T00:00:00Z"},
         "grain=15m covers at most 31 days; use a coarser grain"),
        ("/sites/alpha/energy", {"level": "floor"}, "query.level"),
        ("/sites/alpha/costs", {"start": "2026-11-02T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
         "must be before end"),
        ("/sites/alpha/peaks", {"start": "2010-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
         "at most 3660 days"),
        ("/sites/alpha/outages", {"end": "tomorrow"}, "query.end"),
        ("/sites/alpha/oee", {"by": "shift"}, "query.by"),
        ("/sites/alpha/oee", {"start": "2025-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
         "an OEE query covers at most 366 days"),
        ("/portfolio", {"end": "soon"}, "query.end"),
        ("/portfolio", {"end": "0001-01-02T00:00:00Z"}, "between the years 1 and 9999"),
        ("/sites/alpha/energy", {"end": "0001-01-02T00:00:00Z"}, "between the years 1 and 9999"),
    ],
)  # fmt: skip
def test_bad_result_queries_are_problems(
    client: TestClient, seeded: Seeded, path: str, params: dict[str, str], says: str
) -> None:
    response = client.get(path, params=params, headers=bearer(seeded.tokens["admin"]))
    assert says in _problem_detail(response)


def test_peaks_outages_and_costs(client: TestClient, seeded: Seeded) -> None:
    window = {"start": "2026-10-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}
    peaks = _get(client, seeded, "/sites/alpha/peaks", **window)
    assert peaks == [{
        "month": "2026-11-01", "window_min": 15, "peak_start": "2026-11-02T01:00:00Z",
        "peak_kw": 42.0, "average_kw": 21.0, "load_factor": 0.5, "demand_charge": 100.0,
        "currency": "USD", "contributors": [{"line": "sew", "machine": "m1", "kw": 30.0}],
    }]  # fmt: skip
    outages = _get(client, seeded, "/sites/alpha/outages", **window)
    assert [(o["kind"], o["duration_s"], o["min_voltage"], o["on_generator_s"], o["units_lost"])
            for o in outages] == [("outage", 900.0, 0.0, 600.0, 12.0), ("sag", 1.0, 180.0, 0.0,
                                                                          None)]  # fmt: skip
    costs = _get(client, seeded, "/sites/alpha/costs", **DAY)
    assert costs == [
        {"day": "2026-11-02", "source": "generator", "energy_kwh": 10.0, "cost": 4.0,
         "currency": "USD", "co2_kg": 7.0},
        {"day": "2026-11-02", "source": "grid", "energy_kwh": 20.0, "cost": 3.0,
         "currency": "USD", "co2_kg": 10.0},
    ]  # fmt: skip
    assert _get(client, seeded, "/sites/beta/costs", **DAY) == []


def test_savings_is_the_latest_result(client: TestClient, seeded: Seeded) -> None:
    (latest,) = _get(client, seeded, "/sites/alpha/savings", "factory")
    assert latest["baseline_start"] == "2025-11-01T00:00:00Z"
    assert latest["reporting_end"] == "2026-12-01T00:00:00Z"
    assert {k: latest[k] for k in ("adjusted_baseline_kwh", "reporting_kwh", "avoided_kwh",
                                   "savings_pct", "fsu_pct", "avoided_cost", "investment",
                                   "payback_years", "meets_guideline14")} == {
        "adjusted_baseline_kwh": 1000.0, "reporting_kwh": 900.0, "avoided_kwh": 100.0,
        "savings_pct": 10.0, "fsu_pct": 20.0, "avoided_cost": 50.0, "investment": 1200.0,
        "payback_years": 2.0, "meets_guideline14": True,
    }  # fmt: skip
    assert _get(client, seeded, "/sites/beta/savings") == []


def test_oee_by_machine_and_by_line(client: TestClient, seeded: Seeded) -> None:
    machines = _get(client, seeded, "/sites/alpha/oee", by="machine", **DAY)
    assert [(m["machine"], m["machines"], m["availability"], m["quality"], m["oee"])
            for m in machines] == [("m1", 1, 0.75, 0.95, 0.59375),
                                   ("m2", 1, 1.0, 1.0, 24000 / 28800)]  # fmt: skip
    (line,) = _get(client, seeded, "/sites/alpha/oee", by="line", **DAY)
    assert (line["line"], line["machine"], line["machines"], line["label"]) == ("sew", None, 2, "A")
    assert (line["planned_s"], line["operating_s"], line["availability"]) == (57600, 50400, 0.875)
    assert line["performance"] == pytest.approx(42000 / 50400)
    assert line["quality"] == pytest.approx(2150 / 2200)
    assert line["oee"] == pytest.approx(41100 / 57600)
    losses = ("breakdown_s", "setup_s", "minor_stop_s", "reduced_speed_s",
              "startup_reject_units", "defect_units")  # fmt: skip
    assert [line[k] for k in losses] == [3600.0, 1800.0, 600.0, 4800.0, 20.0, 30.0]
    assert _get(client, seeded, "/sites/alpha/oee", start="2026-12-01T00:00:00Z",
                end="2026-12-02T00:00:00Z") == []  # fmt: skip


def test_edges_status_gaps_and_backlog(client: TestClient, seeded: Seeded) -> None:
    assert _get(client, seeded, "/sites/alpha/edges", "factory") == [
        {"edge_id": "gw-1", "online": True, "status": "online",
         "status_at": "2026-11-02T03:00:00Z", "last_seen": "2026-11-02T04:00:00Z",
         "messages": 3, "buffered_messages": 1, "gaps": 1, "missing_messages": 2,
         "spool_backlog": None},
        {"edge_id": "gw-2", "online": False, "status": '{"status": "offline", "pending": 17}',
         "status_at": "2026-11-02T01:00:00Z", "last_seen": "2026-11-02T01:00:00Z",
         "messages": 0, "buffered_messages": 0, "gaps": 0, "missing_messages": 0,
         "spool_backlog": 17},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, (False, None)),
        ("online", (True, None)),
        ("offline", (False, None)),
        ('{"status": "online", "pending": 3}', (True, 3)),
        ('{"status": "online", "pending": true}', (True, None)),
        ("[1]", (False, None)),
        ("{broken", (False, None)),
    ],
)
def test_status_fields(status: str | None, expected: tuple[bool, int | None]) -> None:
    assert status_fields(status) == expected


ALPHA = {
    "site": "alpha", "name": "Alpha", "period": "pilot",
    "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z",
    "energy_kwh": 4.0, "completeness": 0.75, "savings_pct": 10.0, "avoided_cost": 50.0,
    "currency": "USD", "uptime": 0.5, "faults": 2, "faults_caught": 1, "open_alerts": 3,
}  # fmt: skip
BETA = {
    "site": "beta", "name": "Beta", "period": "last 30 days",
    "period_start": "2026-10-04T00:00:00Z", "period_end": "2026-11-03T00:00:00Z",
    "energy_kwh": 5.0, "completeness": 0.25, "savings_pct": None, "avoided_cost": None,
    "currency": None, "uptime": None, "faults": 0, "faults_caught": 0, "open_alerts": 1,
}  # fmt: skip


@pytest.mark.parametrize(("role", "expected"), [("staff", [ALPHA, BETA]), ("factory", [ALPHA])])
def test_portfolio_sets_the_sites_side_by_side(
    client: TestClient, seeded: Seeded, role: str, expected: list[dict[str, Any]]
) -> None:
    body = _get(client, seeded, "/portfolio", role, end=(T0 + timedelta(days=1)).isoformat())
    assert body == expected

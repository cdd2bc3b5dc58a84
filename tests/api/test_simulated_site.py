"""The telemetry, energy and completeness routes on a day of a simulated site.

The simulator fills the database, the roll-ups are refreshed and the analytics run,
as in production; each route's figures are then checked against the tables they read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from analytics.runner import run_once
from api.app import create_app
from api.tokens import create_token
from tests.analytics.conftest import fill_site
from tests.api.conftest import bearer, refresh_rollups
from tonle.settings import Settings

pytestmark = pytest.mark.db

START = datetime(2026, 11, 16, tzinfo=UTC)  # a UTC midnight: the day is one 1d bucket
END = START + timedelta(days=1)
DAY = {"start": START.isoformat(), "end": END.isoformat()}


@pytest.fixture(scope="module")
def token(database_url: str) -> str:
    """An admin token on a database holding one simulated, analysed day of ``tiny``."""
    fill_site(database_url, "tiny", seed=11, start=START, days=1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        refresh_rollups(conn)
    assert len(run_once(database_url, ["tiny"], START, END, None)) == 1  # one run, ends at the data
    return create_token(database_url, "admin", None, "ada")[1]


@pytest.fixture(scope="module")
def client(database_url: str, broker_port: int, token: str) -> Iterator[TestClient]:
    """The app on the simulated site's database."""
    settings = Settings(database_url=database_url, mqtt_url=f"mqtt://127.0.0.1:{broker_port}")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _scalar(database_url: str, query: str, *args: object) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def _series(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT DISTINCT machine, metric FROM telemetry WHERE site = 'tiny' ORDER BY 1, 2"
        ).fetchall()
    return [(str(machine), str(metric)) for machine, metric in rows]


def test_every_bucket_accounts_for_every_reading(
    client: TestClient, token: str, database_url: str
) -> None:
    stored = _scalar(
        database_url, "SELECT count(*) FROM telemetry WHERE site = 'tiny' AND ts >= %s AND ts < %s",
        START, END,
    )  # fmt: skip
    assert stored > 0
    raw = 0
    for machine, metric in _series(database_url):  # per series: each stays under the limit
        params = {**DAY, "machine": machine, "metric": metric, "limit": 100_000}
        response = client.get("/sites/tiny/telemetry", params=params, headers=bearer(token))
        raw += len(response.json()["points"])
    assert raw == stored
    for bucket in ("1m", "1h", "1d"):
        params = {**DAY, "bucket": bucket, "limit": 100_000}
        response = client.get("/sites/tiny/telemetry", params=params, headers=bearer(token))
        points = response.json()["points"]
        assert sum(p["n"] for p in points) == stored, bucket
    days = client.get(
        "/sites/tiny/telemetry", params={**DAY, "bucket": "1d"}, headers=bearer(token)
    ).json()["points"]
    assert {p["ts"] for p in days} == {"2026-11-16T00:00:00Z"}
    assert len(days) == len(_series(database_url))


def test_the_csv_export_has_every_raw_reading(
    client: TestClient, token: str, database_url: str
) -> None:
    stored = _scalar(
        database_url, "SELECT count(*) FROM telemetry WHERE site = 'tiny' AND ts >= %s AND ts < %s",
        START, END,
    )  # fmt: skip
    response = client.get("/sites/tiny/telemetry.csv", params=DAY, headers=bearer(token))
    lines = response.text.splitlines()
    assert lines[0] == "ts,line,machine,metric,value"
    assert len(lines) - 1 == stored


@pytest.mark.parametrize(("level", "grain"), [("site", "1h"), ("machine", "1h"), ("line", "1d")])
def test_energy_matches_the_stored_intervals(
    client: TestClient, token: str, database_url: str, level: str, grain: str
) -> None:
    query = (
        "SELECT count(*), coalesce(sum(energy_kwh), 0) FROM energy_intervals WHERE site = 'tiny' "
        "AND level = %s AND grain = %s AND bucket_start >= %s AND bucket_start < %s"
    )
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, (level, grain, START, END)).fetchone()
    assert row is not None and row[0] > 0
    params = {**DAY, "level": level, "grain": grain}
    intervals = client.get("/sites/tiny/energy", params=params, headers=bearer(token)).json()[
        "intervals"
    ]
    assert len(intervals) == row[0]
    assert sum(i["energy_kwh"] for i in intervals) == pytest.approx(row[1])


def test_every_series_is_complete(client: TestClient, token: str, database_url: str) -> None:
    body = client.get("/sites/tiny/completeness", params=DAY, headers=bearer(token)).json()
    series = {(s["machine"], s["metric"]): s for s in body["series"]}
    assert sorted(series) == _series(database_url)
    # The simulator drops nothing: every series has every reading its interval calls for.
    assert {k: s["completeness"] for k, s in series.items()} == dict.fromkeys(series, 1.0)
    assert {s["longest_gap_s"] for s in series.values()} == {
        s["interval_s"] for s in series.values()
    }


def test_every_read_route_answers_on_a_simulated_analysed_site(
    client: TestClient, token: str, database_url: str
) -> None:
    """Each GET route of the schema, on what the simulator and the analytics wrote."""
    paths = client.get("/openapi.json").json()["paths"]
    reads = sorted(p for p, ops in paths.items() if "get" in ops and p.startswith("/sites/{site}"))
    reads.append("/portfolio")
    assert "/sites/{site}/oee" in reads and "/portfolio" in reads
    for template in reads:
        path = template.format(site="tiny")
        response = client.get(path, params=DAY, headers=bearer(token))
        assert response.status_code == 200, (path, response.text[:300])
    # Results the analytics produced are served as stored (costs are per local day: the
    # simulated UTC day spans two of them, so ask for the days around it).
    around = {"start": (START - timedelta(days=1)).isoformat(),
              "end": (END + timedelta(days=1)).isoformat()}  # fmt: skip
    costs = client.get("/sites/tiny/costs", params=around, headers=bearer(token)).json()
    stored = _scalar(database_url, "SELECT count(*) FROM energy_costs WHERE site = 'tiny'")
    assert len(costs) == stored > 0
    portfolio = client.get("/portfolio", params={"end": END.isoformat()}, headers=bearer(token))
    assert [row["site"] for row in portfolio.json()] == ["tiny"]

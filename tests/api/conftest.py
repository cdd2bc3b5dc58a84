"""A small registry, readings, alerts and health rows, and one token of each role."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.tokens import create_token
from tonle.db.maintenance import refresh_all_rollups
from tonle.settings import Settings

T0 = datetime(2026, 11, 2, tzinfo=UTC)
READINGS_PER_SENSOR = 180  # one a minute for three hours
SITES = {
    "alpha": {"sew": ["m1", "m2"], "utilities": ["main"]},
    "beta": {"cut": ["c1"]},
}
METRICS = {"active_power": "W", "motor_temp": "°C"}
COPY_READINGS = "COPY readings (ts, sensor_id, value) FROM STDIN"


@dataclass(frozen=True)
class Seeded:
    """What the fixture stored: alert ids by site and machine, tokens by role."""

    alerts: dict[str, int]
    tokens: dict[str, str]


def _seed_registry(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for site, lines in SITES.items():
        site_id = conn.execute(
            "INSERT INTO sites (site, name) VALUES (%s, %s) RETURNING id", (site, site.title())
        ).fetchone()
        assert site_id is not None
        for line, machines in lines.items():
            line_id = conn.execute(
                "INSERT INTO lines (site_id, line) VALUES (%s, %s) RETURNING id",
                (site_id[0], line),
            ).fetchone()
            assert line_id is not None
            for machine in machines:
                machine_id = conn.execute(
                    "INSERT INTO machines (line_id, machine, kind) VALUES (%s, %s, 'sewing') "
                    "RETURNING id",
                    (line_id[0], machine),
                ).fetchone()
                assert machine_id is not None
                for metric, unit in METRICS.items():
                    sensor = conn.execute(
                        "INSERT INTO sensors (machine_id, metric, unit) VALUES (%s, %s, %s) "
                        "RETURNING id",
                        (machine_id[0], metric, unit),
                    ).fetchone()
                    assert sensor is not None
                    with conn.cursor().copy(
                        "COPY readings (ts, sensor_id, value) FROM STDIN"
                    ) as cp:
                        for i in range(READINGS_PER_SENSOR):
                            cp.write_row((T0 + timedelta(minutes=i), sensor[0], float(i)))


def _refresh_rollups(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    row = conn.execute("SELECT to_regclass('rollup_dirty') IS NOT NULL").fetchone()
    if row is not None and row[0]:
        conn.execute(
            "INSERT INTO rollup_dirty (hour) SELECT DISTINCT date_trunc('hour', ts) FROM readings "
            "ON CONFLICT DO NOTHING"
        )
        refresh_all_rollups(conn)
    else:  # TimescaleDB continuous aggregates
        conn.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, NULL)")
        conn.execute("CALL refresh_continuous_aggregate('readings_1h', NULL, NULL)")


def _seed_maintenance(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    alerts: dict[str, int] = {}
    for site, lines in SITES.items():
        run = conn.execute(
            "INSERT INTO analytics_runs (site, period_start, period_end, model_version) "
            "VALUES (%s, %s, %s, 'test') RETURNING id",
            (site, T0, T0 + timedelta(days=1)),
        ).fetchone()
        assert run is not None
        for line, machines in lines.items():
            for machine in machines:
                model = conn.execute(
                    "INSERT INTO maintenance_models (site, line, machine, model_version, status, "
                    "reason, segment_start, trained_from, trained_to, valid_from, artifact, "
                    "sha256, run_id) VALUES (%s, %s, %s, 'health-1', 'active', 'test', %s, %s, "
                    "%s, %s, '\\x00', 'x', %s) RETURNING model_id",
                    (site, line, machine, T0, T0, T0, T0, run[0]),
                ).fetchone()
                assert model is not None
                for hour, health in ((1, 90.0), (2, 40.0)):
                    conn.execute(
                        "INSERT INTO machine_health (site, line, machine, ts, health, score, "
                        "samples, z, change, model_id, run_id) "
                        "VALUES (%s, %s, %s, %s, %s, 1.5, 60, '{}', '{}', %s, %s)",
                        (site, line, machine, T0 + timedelta(hours=hour), health, model[0],
                         run[0]),
                    )  # fmt: skip
                alert = conn.execute(
                    "INSERT INTO maintenance_alerts (site, line, machine, opened_at, closed_at, "
                    "severity, min_health, peak_at, peak_score, reasons, model_id, run_id) "
                    "VALUES (%s, %s, %s, %s, NULL, 'warning', 40, %s, 3.2, %s, %s, %s) "
                    "RETURNING alert_id",
                    (site, line, machine, T0 + timedelta(hours=2), T0 + timedelta(hours=2),
                     json.dumps([{"feature": "motor_temp", "z": 3.2, "change": 4.0,
                                  "text": "motor 4 °C warmer"}]), model[0], run[0]),
                )  # fmt: skip
                row = alert.fetchone()
                assert row is not None
                alerts[f"{site}/{machine}"] = int(row[0])
    # One closed alert on alpha/m1, so the open filter has something to leave out.
    conn.execute(
        "INSERT INTO maintenance_alerts (site, line, machine, opened_at, closed_at, severity, "
        "min_health, peak_at, peak_score, reasons, model_id, run_id) "
        "SELECT site, line, machine, opened_at - interval '1 day', opened_at - interval '20 h', "
        "'critical', 10, opened_at - interval '1 day', 5, '[]', model_id, run_id "
        "FROM maintenance_alerts WHERE alert_id = %s",
        (alerts["alpha/m1"],),
    )
    rul_model = conn.execute(
        "INSERT INTO maintenance_models (site, line, machine, kind, model_version, status, "
        "reason, segment_start, trained_from, trained_to, valid_from, artifact, sha256, run_id) "
        "SELECT '*', '*', '*', 'rul', 'rul-1', 'active', 'test', %s, %s, %s, %s, '\\x00', 'x', "
        "min(id) FROM analytics_runs RETURNING model_id",
        (T0, T0, T0, T0),
    ).fetchone()
    assert rul_model is not None
    conn.execute(
        "INSERT INTO rul_estimates (site, line, machine, ts, rul_h, low_h, high_h, capped, "
        "model_id, health_model_id, run_id) "
        "SELECT site, line, machine, ts, 100, 50, 200, false, %s, model_id, run_id "
        "FROM machine_health WHERE site = 'alpha' AND machine = 'm1'",
        (rul_model[0],),
    )
    return alerts


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Seeded:
    """The module's database, filled once; tests that acknowledge use their own alerts."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _seed_registry(conn)
        _refresh_rollups(conn)
        alerts = _seed_maintenance(conn)
    tokens = {
        "admin": create_token(database_url, "admin", None, "ada")[1],
        "staff": create_token(database_url, "staff", None, "sam")[1],
        "factory": create_token(database_url, "factory", "alpha", "fay")[1],
    }
    return Seeded(alerts=alerts, tokens=tokens)


@pytest.fixture(scope="module")
def broker_port() -> Iterator[int]:
    """A listening TCP socket standing in for the broker (/readyz only connects)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.fixture(scope="module")
def client(database_url: str, broker_port: int, seeded: Seeded) -> Iterator[TestClient]:
    """The app on the module's database, started (lifespan) for the whole module."""
    settings = Settings(database_url=database_url, mqtt_url=f"mqtt://127.0.0.1:{broker_port}")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}

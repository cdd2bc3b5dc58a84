"""A small registry, readings, alerts, health and energy results, and a token of each role."""

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


def refresh_rollups(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Bring the 1-minute and 1-hour roll-ups up to date with every stored reading."""
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


def _run(conn: psycopg.Connection[tuple[object, ...]], site: str) -> int:
    row = conn.execute(
        "INSERT INTO analytics_runs (site, period_start, period_end, model_version) "
        "VALUES (%s, %s, %s, 'test') RETURNING id",
        (site, T0, T0 + timedelta(days=1)),
    ).fetchone()
    assert row is not None
    return int(row[0])


ENERGY = [  # level, line, machine, grain, hours after T0, kWh, completeness, method
    ("machine", "sew", "m1", "1d", 0, 12.0, 1.0, "integrated"),
    ("machine", "sew", "m2", "1d", 0, 8.0, 0.5, "integrated"),
    ("line", "sew", "", "1d", 0, 20.0, 0.75, "sum"),
    ("site", "", "", "1d", 0, 30.0, 1.0, "meter"),
    ("site", "", "", "1h", 0, 1.5, 1.0, "meter"),
    ("site", "", "", "1h", 1, 2.5, 1.0, "meter"),
    ("machine", "sew", "m1", "1h", 0, 1.0, 1.0, "integrated"),
    ("machine", "sew", "m2", "1h", 0, 0.5, 0.5, "integrated"),
]
STATES = [  # machine, start and end hours after T0, state (0 off, 1 idle, 2 running, 3 fault)
    ("m1", 0, 2, 2),
    ("m1", 2, 3, 3),
    ("m1", 3, 4, 1),
    ("m2", 0, 1, 0),
    ("m2", 1, 3, 3),
]
_OEE = (
    "INSERT INTO oee_shifts (site, line, machine, bucket_start, bucket_end, label, planned_s, "
    "operating_s, total_units, good_units, ideal_cycle_s, availability, performance, quality, "
    "oee, breakdown_s, setup_s, minor_stop_s, reduced_speed_s, startup_reject_units, "
    "defect_units, run_id) VALUES ('alpha', 'sew', %s, %s, %s, 'A', 28800, %s, %s, %s, %s, %s, "
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _seed_results(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Energy, OEE, state, savings and edge rows as the analytics and ingest write them."""
    run = _run(conn, "alpha")
    for level, line, machine, grain, hour, kwh, completeness, method in ENERGY:
        start = T0 + timedelta(hours=hour)
        conn.execute(
            "INSERT INTO energy_intervals (site, level, line, machine, grain, bucket_start, "
            "bucket_end, energy_kwh, completeness, method, run_id) "
            "VALUES ('alpha', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (level, line, machine, grain, start,
             start + (timedelta(days=1) if grain == "1d" else timedelta(hours=1)),
             kwh, completeness, method, run),
        )  # fmt: skip
    for machine, idle_kwh, idle_cost in (("m1", 2.0, 0.25), ("m2", 1.0, 0.5)):
        conn.execute(
            "INSERT INTO idle_waste (site, line, machine, grain, bucket_start, bucket_end, "
            "idle_kwh, idle_cost, currency, run_id) "
            "VALUES ('alpha', 'sew', %s, '1d', %s, %s, %s, %s, 'USD', %s)",
            (machine, T0, T0 + timedelta(days=1), idle_kwh, idle_cost, run),
        )
    conn.execute(
        "INSERT INTO demand_peaks (site, month, window_min, peak_start, peak_kw, average_kw, "
        "load_factor, demand_charge, currency, contributors, run_id) "
        "VALUES ('alpha', '2026-11-01', 15, %s, 42, 21, 0.5, 100, 'USD', %s, %s)",
        (T0 + timedelta(hours=1), json.dumps([{"line": "sew", "machine": "m1", "kw": 30.0}]),
         run),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO power_events (site, kind, start_ts, end_ts, min_voltage, on_generator_s, "
        "units_lost, run_id) VALUES ('alpha', 'outage', %s, %s, 0, 600, 12, %s), "
        "('alpha', 'sag', %s, %s, 180, 0, NULL, %s)",
        (T0 + timedelta(minutes=30), T0 + timedelta(minutes=45), run,
         T0 + timedelta(hours=2), T0 + timedelta(hours=2, seconds=1), run),
    )  # fmt: skip
    conn.execute(
        "INSERT INTO energy_costs (site, day, source, energy_kwh, cost, currency, co2_kg, run_id) "
        "VALUES ('alpha', '2026-11-02', 'grid', 20, 3, 'USD', 10, %(run)s), "
        "('alpha', '2026-11-02', 'generator', 10, 4, 'USD', 7, %(run)s)",
        {"run": run},
    )
    # Two savings results: the one whose reporting period ends later is the latest.
    for baseline_start, reporting_end, savings_pct in (
        (datetime(2025, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), 5.0),
        (datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), 10.0),
    ):
        conn.execute(
            "INSERT INTO mv_results (site, granularity, baseline_start, baseline_end, "
            "reporting_start, reporting_end, baseline_hours, r2, cv_rmse_pct, nmbe_pct, "
            "meets_guideline14, reporting_hours, adjusted_baseline_kwh, reporting_kwh, "
            "avoided_kwh, savings_pct, fsu_pct, avoided_cost, annual_avoided_cost, currency, "
            "investment, payback_years, run_id) VALUES ('alpha', 'hourly', %s, %s, %s, %s, "
            "8760, 0.9, 12.5, 0.25, true, 720, 1000, 900, 100, %s, 20, 50, 600, 'USD', 1200, "
            "2, %s)",
            (baseline_start, reporting_end - timedelta(days=30), reporting_end - timedelta(days=30),
             reporting_end, savings_pct, run),
        )  # fmt: skip
    for machine, operating_s, total, good, cycle_s, losses in (
        ("m1", 21600, 1000, 950, 18, (3600, 1800, 600, 0, 20, 30)),
        ("m2", 28800, 1200, 1200, 20, (0, 0, 0, 4800, 0, 0)),
    ):
        conn.execute(
            _OEE,
            (machine, T0, T0 + timedelta(hours=8), operating_s, total, good, cycle_s,
             operating_s / 28800, cycle_s * total / operating_s, good / total,
             cycle_s * good / 28800, *losses, run),
        )  # fmt: skip
    for machine, start_h, end_h, state in STATES:
        conn.execute(
            "INSERT INTO machine_states (site, line, machine, start_ts, end_ts, state, source, "
            "run_id) VALUES ('alpha', 'sew', %s, %s, %s, %s, 'inferred', %s)",
            (machine, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h), state, run),
        )
    conn.execute(
        "INSERT INTO edges (site, edge_id, status, status_at) VALUES "
        "('alpha', 'gw-1', 'online', %s), ('alpha', 'gw-2', %s, %s)",
        (T0 + timedelta(hours=3), json.dumps({"status": "offline", "pending": 17}),
         T0 + timedelta(hours=1)),
    )  # fmt: skip
    for seq, hours, buffered in ((1, 1, False), (2, 2, False), (5, 4, True)):
        conn.execute(
            "INSERT INTO edge_messages (site, edge_id, seq, received_at, buffered, readings) "
            "VALUES ('alpha', 'gw-1', %s, %s, %s, 50)",
            (seq, T0 + timedelta(hours=hours), buffered),
        )
    beta = _run(conn, "beta")
    for level, machine, completeness in (("site", "", 1.0), ("machine", "c1", 0.25)):
        conn.execute(
            "INSERT INTO energy_intervals (site, level, line, machine, grain, bucket_start, "
            "bucket_end, energy_kwh, completeness, method, run_id) "
            "VALUES ('beta', %s, %s, %s, '1h', %s, %s, 5, %s, 'meter', %s)",
            (level, "cut" if machine else "", machine, T0, T0 + timedelta(hours=1),
             completeness, beta),
        )  # fmt: skip


@pytest.fixture(scope="module")
def seeded(database_url: str) -> Seeded:
    """The module's database, filled once; tests that acknowledge use their own alerts."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        _seed_registry(conn)
        refresh_rollups(conn)
        alerts = _seed_maintenance(conn)
        _seed_results(conn)
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

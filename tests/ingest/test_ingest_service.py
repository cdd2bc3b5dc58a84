"""The ingester against a real broker and a real PostgreSQL: exact counts, dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest

from tests.conftest import SHARED
from tests.mqtt_helpers import make_settings, payload, publish_all, running_ingester, wait_until

pytestmark = [pytest.mark.db, pytest.mark.mqtt]

CONTRACT = SHARED / "contract"


def _count(conn: psycopg.Connection[tuple[object, ...]], query: str, *params: object) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(str(row[0]))


def _site_readings(conn: psycopg.Connection[tuple[object, ...]], site: str) -> int:
    return _count(conn, "SELECT count(*) FROM telemetry WHERE site = %s", site)


def test_contract_examples_are_stored_or_dead_lettered_exactly(
    database_url: str, mqtt_url: str, conn: psycopg.Connection[tuple[object, ...]], site_id: str
) -> None:
    valid = sorted((CONTRACT / "valid").glob("*.json"))
    invalid = sorted((CONTRACT / "invalid").iterdir())
    expected_readings = sum(
        len({(r["ts"], r["metric"]) for r in json.loads(p.read_bytes())["readings"]}) for p in valid
    )
    dead_before = _count(conn, "SELECT count(*) FROM dead_letters")
    with running_ingester(make_settings(database_url, mqtt_url)):
        publish_all(
            mqtt_url,
            [
                (f"tonle/v1/{site_id}/line-{i}/m1/telemetry", p.read_bytes())
                for i, p in enumerate(valid)
            ]
            + [(f"tonle/v1/{site_id}/bad/m1/telemetry", p.read_bytes()) for p in invalid],
        )
        wait_until(lambda: _site_readings(conn, site_id) == expected_readings)
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM dead_letters") - dead_before == len(invalid)
        )
    assert _site_readings(conn, site_id) == expected_readings == 485
    rows = conn.execute(
        "SELECT payload, reason FROM dead_letters WHERE topic = %s ORDER BY id",
        (f"tonle/v1/{site_id}/bad/m1/telemetry",),
    ).fetchall()
    reasons = {bytes(p): r for p, r in rows}  # type: ignore[arg-type]
    assert len(reasons) == len(invalid)
    for path in invalid:
        assert path.read_bytes() in reasons, f"{path.name} was not dead-lettered with its bytes"
    by_name = {p.name: reasons[p.read_bytes()] for p in invalid}
    assert "no UTC offset" in by_name["naive_timestamp.json"]
    assert "not UTF-8" in by_name["not_utf8.json"]
    assert "not JSON" in by_name["not_json.json"]
    assert "version" in by_name["unsupported_version.json"]
    assert by_name["value_nan.json"].startswith("payload is not JSON: NaN")
    assert "readings.0.value" in by_name["value_boolean.json"]
    assert "edge" in by_name["bad_edge_id.json"]
    assert "seq" in by_name["negative_seq.json"]
    # Timestamps are stored in UTC, as the contract fixes them.
    stored = {
        (str(line), str(metric)): ts
        for line, metric, ts in conn.execute(
            "SELECT line, metric, ts FROM telemetry"
            " WHERE site = %s AND line IN ('line-1', 'line-3')",
            (site_id,),
        )
    }
    names = [p.name for p in valid]
    assert names[1] == "epoch_ms.json" and names[3] == "local_offset.json"
    assert stored[("line-1", "active_power")] == datetime(2026, 11, 28, 3, 0, 0, 120000, tzinfo=UTC)
    assert stored[("line-3", "voltage")] == datetime(2026, 11, 28, 3, 0, 0, 250000, tzinfo=UTC)


def test_duplicates_are_stored_once_and_seq_gaps_counted(
    database_url: str, mqtt_url: str, conn: psycopg.Connection[tuple[object, ...]], site_id: str
) -> None:
    topic = f"tonle/v1/{site_id}/sewing-1/m07/telemetry"
    readings = [
        {
            "ts": f"2026-11-28T03:00:{s:02d}Z",
            "metric": "active_power",
            "value": 100.0 + s,
            "unit": "W",
        }
        for s in range(50)
    ]
    messages = [
        (topic, payload("edge-a", seq, readings[seq * 10 : seq * 10 + 10])) for seq in range(5)
    ]
    # seq 0..4 once, seq 2 and 3 again (a redelivery), then seq 8: 5, 6, 7 missing.
    messages += [messages[2], messages[3]]
    messages.append((topic, payload("edge-a", 8, [readings[0]])))
    with running_ingester(make_settings(database_url, mqtt_url)) as ingester:
        publish_all(mqtt_url, messages)
        # Other tests' retained status messages reach this ingester too: count only ours.
        wait_until(lambda: ingester.stats.readings_duplicate == 21)
        wait_until(lambda: _site_readings(conn, site_id) == 50)
    assert _site_readings(conn, site_id) == 50
    assert ingester.stats.readings_duplicate == 21
    health = conn.execute(
        "SELECT messages, gaps, missing_messages, last_seq FROM edge_health WHERE site = %s",
        (site_id,),
    ).fetchone()
    assert health == (6, 1, 3, 8)
    gap = conn.execute(
        "SELECT first_missing, last_missing FROM edge_seq_gaps WHERE site = %s", (site_id,)
    ).fetchone()
    assert gap == (5, 7)


def test_edge_status_is_recorded_from_the_status_topic(
    database_url: str, mqtt_url: str, conn: psycopg.Connection[tuple[object, ...]], site_id: str
) -> None:
    with running_ingester(make_settings(database_url, mqtt_url)):
        publish_all(mqtt_url, [(f"tonle/v1/{site_id}/_edge/gw-1/status", "online")])
        wait_until(
            lambda: (
                conn.execute("SELECT status FROM edges WHERE site = %s", (site_id,)).fetchone()
                == ("online",)
            )
        )
        publish_all(
            mqtt_url,
            [
                (f"tonle/v1/{site_id}/_edge/gw-1/status", "offline"),
                (f"tonle/v1/{site_id}/_edge/gw-2/status", "sleeping"),
            ],
        )
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT status FROM edges WHERE site = %s AND edge_id = 'gw-1'", (site_id,)
                ).fetchone()
                == ("offline",)
            )
        )
        wait_until(
            lambda: (
                _count(
                    conn,
                    "SELECT count(*) FROM dead_letters WHERE topic LIKE %s",
                    f"%{site_id}/_edge/gw-2%",
                )
                == 1
            )
        )


def test_strict_mode_and_unit_disagreement_go_to_dead_letters(
    database_url: str, mqtt_url: str, conn: psycopg.Connection[tuple[object, ...]], site_id: str
) -> None:
    topic = f"tonle/v1/{site_id}/cutting/c1/telemetry"
    first = payload(
        "edge-b",
        0,
        [{"ts": "2026-11-28T03:00:00Z", "metric": "active_power", "value": 5, "unit": "W"}],
    )
    in_kw = payload(
        "edge-b",
        1,
        [{"ts": "2026-11-28T03:00:01Z", "metric": "active_power", "value": 5, "unit": "kW"}],
    )
    future = payload(
        "edge-b", 2, [{"ts": "2099-01-01T00:00:00Z", "metric": "active_power", "value": 5}]
    )
    epoch = payload("edge-b", 3, [{"ts": 0, "metric": "active_power", "value": 5}])
    with running_ingester(make_settings(database_url, mqtt_url)):
        publish_all(mqtt_url, [(topic, first), (topic, in_kw), (topic, future), (topic, epoch)])
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM dead_letters WHERE topic = %s", topic) == 3
        )
    reasons = [
        r
        for (r,) in conn.execute(
            "SELECT reason FROM dead_letters WHERE topic = %s ORDER BY id", (topic,)
        )
    ]
    assert "registered in 'W'" in str(reasons[0])
    assert "ahead of the ingester's clock" in str(reasons[1])
    assert "gateway clock not set" in str(reasons[2])
    assert _site_readings(conn, site_id) == 1

    strict_topic = f"tonle/v1/{site_id}/cutting/c2/telemetry"
    with running_ingester(make_settings(database_url, mqtt_url, strict=True)):
        publish_all(
            mqtt_url, [(strict_topic, first), (topic, first.replace("03:00:00", "03:00:09"))]
        )
        wait_until(
            lambda: (
                _count(conn, "SELECT count(*) FROM dead_letters WHERE topic = %s", strict_topic)
                == 1
            )
        )
        wait_until(lambda: _site_readings(conn, site_id) == 2)
    (reason,) = conn.execute(
        "SELECT reason FROM dead_letters WHERE topic = %s", (strict_topic,)
    ).fetchone() or ("",)
    assert "unknown sensor" in str(reason) and "strict" in str(reason)
    assert _count(conn, "SELECT count(*) FROM machines WHERE machine = 'c2'") == 0


def test_rollups_follow_the_readings(
    database_url: str, mqtt_url: str, conn: psycopg.Connection[tuple[object, ...]], site_id: str
) -> None:
    topic = f"tonle/v1/{site_id}/utilities/main-meter/telemetry"
    readings = [
        {
            "ts": f"2026-11-28T04:{m:02d}:{s:02d}Z",
            "metric": "voltage",
            "value": float(220 + m),
            "unit": "V",
        }
        for m in range(3)
        for s in (0, 30)
    ]
    with running_ingester(make_settings(database_url, mqtt_url)) as ingester:
        publish_all(mqtt_url, [(topic, payload("edge-c", 0, readings))])
        wait_until(lambda: _site_readings(conn, site_id) == 6)
        ingester.refresh_soon()
        wait_until(
            lambda: _count(conn, "SELECT count(*) FROM telemetry_1m WHERE site = %s", site_id) == 3
        )
    rows = conn.execute(
        "SELECT n, avg FROM telemetry_1m WHERE site = %s ORDER BY ts", (site_id,)
    ).fetchall()
    assert rows == [(2, 220.0), (2, 221.0), (2, 222.0)]
    hour = conn.execute(
        "SELECT n, min, max FROM telemetry_1h WHERE site = %s", (site_id,)
    ).fetchone()
    assert hour == (6, 220.0, 222.0)

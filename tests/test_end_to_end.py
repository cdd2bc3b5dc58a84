"""Simulator → edge agent → Mosquitto → ingester → PostgreSQL, counted exactly."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from edge.agent import EdgeAgent
from simulators.run import build_source
from simulators.session import run_simulation, simulation_config
from tests.mqtt_helpers import make_settings, running_ingester, wait_until
from tonle.local_services import LocalBroker

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]

DAY = datetime(2026, 11, 23, tzinfo=UTC)
OUTAGE_START = datetime(2026, 11, 24, 6, tzinfo=UTC)


def _series_counts(
    url: str, site: str, since: datetime, until: datetime
) -> dict[tuple[str, str, str], int]:
    """Readings stored per series of ``site`` in [since, until)."""
    with psycopg.connect(url) as conn:
        return {
            (str(line), str(machine), str(metric)): int(str(n))
            for line, machine, metric, n in conn.execute(
                "SELECT line, machine, metric, count(*) FROM telemetry"
                " WHERE site = %s AND ts >= %s AND ts < %s GROUP BY 1, 2, 3",
                (site, since, until),
            )
        }


def test_a_backfilled_day_is_stored_exactly(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    with running_ingester(make_settings(database_url, mqtt_url)):
        result = run_simulation(
            mqtt_url=mqtt_url,
            layout="tiny",
            seed=11,
            days=1.0,
            start=DAY,
            truth_dir=tmp_path / "truth",
            edge_id="e2e-edge",
            spool_path=tmp_path / "edge.spool",
            stop=threading.Event(),
            console=Console(quiet=True),
        )
        assert result.acknowledged_readings == result.samples == 77_760

        def stored() -> dict[tuple[str, str, str], int]:
            return _series_counts(database_url, result.site, DAY, DAY + timedelta(days=1))

        wait_until(lambda: sum(stored().values()) >= result.samples)
    expected = {key: n for key, n in result.truth.emitted.items() if n}
    assert stored() == expected
    with psycopg.connect(database_url) as conn:
        health = conn.execute(
            "SELECT messages, gaps, buffered_messages FROM edge_health"
            " WHERE site = %s AND edge_id = 'e2e-edge'",
            (result.site,),
        ).fetchone()
        dead = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE topic LIKE %s", (f"tonle/v1/{result.site}/%",)
        ).fetchone()
    assert health == (result.messages, 0, 0)
    assert dead == (0,)
    assert (tmp_path / "truth" / "emitted.csv").exists()


def test_broker_outage_is_bridged_by_the_spool(
    database_url: str, private_broker: LocalBroker, tmp_path: Path
) -> None:
    settings = make_settings(database_url, private_broker.url)
    source, truth = build_source(
        layout="tiny",
        seed=5,
        start=OUTAGE_START,
        days=None,
        realtime=True,
        truth_dir=None,
        speed=600.0,  # ten simulated minutes per second
    )
    config = simulation_config(source.site, "outage-edge", private_broker.url, tmp_path / "s.spool")
    with running_ingester(settings) as ingester:
        agent = EdgeAgent(config, sources=[source]).start()
        try:
            wait_until(lambda: agent.stats.acked > 5)
            private_broker.stop()
            sampled_at_stop = agent.stats.readings_sampled
            time.sleep(3)  # the edge keeps sampling into its spool
            assert agent.stats.readings_sampled > sampled_at_stop
            assert agent.stats.pending > 0
            private_broker.start()
            wait_until(lambda: ingester.client.subscribed.is_set(), timeout_s=30)
            time.sleep(1)
        finally:
            agent.stop(timeout_s=30)
        assert agent.stats.pending == 0
        assert agent.stats.buffered_published > 0

        def stored() -> dict[tuple[str, str, str], int]:
            return _series_counts(
                database_url, source.site, OUTAGE_START, OUTAGE_START + timedelta(days=1)
            )

        wait_until(lambda: sum(stored().values()) >= truth.total_emitted, timeout_s=30)
    expected = {key: n for key, n in truth.emitted.items() if n}
    assert stored() == expected
    with psycopg.connect(database_url) as conn:
        gaps, buffered = conn.execute(
            "SELECT gaps, buffered_messages FROM edge_health"
            " WHERE site = %s AND edge_id = 'outage-edge'",
            (source.site,),
        ).fetchone() or (None, None)
    assert gaps == 0
    assert buffered > 0  # the replays were stored as such


def test_the_pure_python_broker_fallback_carries_a_backfill_over_mqtt_311(
    database_url: str, tmp_path: Path
) -> None:
    """Where Mosquitto is not installed the demo uses amqtt: MQTT 3.1.1, no shared subscription."""
    start = datetime(2026, 11, 26, tzinfo=UTC)  # a day no other test here writes
    broker = LocalBroker(prefer="amqtt").start()
    try:
        assert (broker.kind, broker.mqtt5) == ("amqtt", False)
        settings = make_settings(database_url, broker.url, protocol="3.1.1")
        with running_ingester(settings):
            result = run_simulation(
                mqtt_url=broker.url,
                layout="tiny",
                seed=2,
                days=0.05,
                start=start,
                truth_dir=None,
                edge_id="amqtt-edge",
                spool_path=tmp_path / "edge.spool",
                stop=threading.Event(),
                console=Console(quiet=True),
                protocol="3.1.1",
            )
            assert result.acknowledged_readings == result.samples > 0

            def stored() -> dict[tuple[str, str, str], int]:
                return _series_counts(database_url, result.site, start, start + timedelta(days=1))

            wait_until(lambda: sum(stored().values()) >= result.samples)
        assert stored() == {key: n for key, n in result.truth.emitted.items() if n}
    finally:
        broker.close()

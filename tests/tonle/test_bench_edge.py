"""The edge benchmark on a short window (the full run is ``tonle bench edge``)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from tonle.cli import app
from tonle.cli.bench_edge import EdgeBenchSettings, bench_layout, run_edge_bench
from tonle.local_services import LocalBroker

pytestmark = pytest.mark.mqtt


def test_the_layout_produces_the_rate_asked_for() -> None:
    layout, machines, interval_s = bench_layout(100.0)
    assert (machines, interval_s) == (25, 1.0)
    assert len(layout["lines"][0]["machines"]) == 25
    _, machines, interval_s = bench_layout(30.0)
    assert machines == 8
    assert math.isclose(machines * 4 / interval_s, 30.0)


def test_a_short_run_measures_the_edge_and_its_spool(private_broker: LocalBroker) -> None:
    messages: list[str] = []
    settings = EdgeBenchSettings(warmup_s=4.0, window_s=6.0, spool_s=1.0, backlog_readings=2_000)
    figures = run_edge_bench(private_broker.url, settings, messages.append)
    json.dumps(figures)
    # Paced by the wall clock: 100 readings/s, give or take a second's batches.
    assert 70 <= figures["live_readings_per_s"] <= 130
    assert 1 <= figures["live_readings_per_message"] <= 50
    assert 0 < figures["edge_cpu_pct_mean"] < 100
    assert 10 < figures["edge_rss_mb_mean"] <= figures["edge_rss_mb_max"] < 1000
    per_message = figures["spool_write_readings_per_message"]
    assert figures["spool_write_readings_per_s"] == pytest.approx(
        figures["spool_write_messages_per_s"] * per_message, rel=0.01
    )
    backlog = math.ceil(2_000 / per_message) * per_message
    assert figures["replay_readings"] == figures["replay_received_readings"] == backlog
    assert figures["replay_readings_per_s"] > 0


def test_the_command_prints_a_table_then_one_json_line() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "edge", "--warmup-s", "3", "--window-s", "5", "--spool-s", "1",
         "--backlog", "500"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tonle bench edge" in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replay_received_readings"] == figures["replay_readings"]
    assert figures["edge_rss_mb_max"] > 0

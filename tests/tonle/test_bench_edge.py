"""The edge benchmark on a short window (the full run is ``tonle bench edge``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tonle.cli import app
from tonle.cli.bench_edge import (
    EdgeBenchError,
    EdgeBenchSettings,
    Subscriber,
    bench_layout,
    measure_modbus,
    poll_figures,
    run_edge_bench,
)
from tonle.local_services import LocalBroker

pytestmark = pytest.mark.mqtt


def test_the_layout_produces_the_rate_asked_for() -> None:
    layout, machines, interval_s = bench_layout(100.0)
    assert (machines, interval_s) == (25, 1.0)
    assert len(layout["lines"][0]["machines"]) == 25
    _, machines, interval_s = bench_layout(30.0)
    assert machines == 8
    assert math.isclose(machines * 4 / interval_s, 30.0)


def _window(polls: list[int], requests: int) -> dict[str, Any]:
    """The figures of a 6 s window of 3 meters × 18 metrics polled every 0.5 s (12 rounds)."""
    return poll_figures(
        polls, requests, meters=3, metrics=18, planned_requests=1, interval_s=0.5, window_s=6.0
    )


def test_a_window_of_complete_polls_gives_their_rates() -> None:
    figures = _window([18] * 36, 36)
    assert figures == {
        "modbus_polls_per_s": 6.0,
        "modbus_readings_per_s": 108.0,
        "modbus_expected_readings_per_s": 108.0,
        "modbus_requests_per_poll": 1.0,
        "modbus_window_s": 6.0,
    }
    # A round more or less is where the window's edges fell, not a loss.
    assert _window([18] * 39, 38)["modbus_readings_per_s"] == 117.0
    assert _window([18] * 33, 34)["modbus_polls_per_s"] == 5.5


@pytest.mark.parametrize(
    ("polls", "requests", "why"),
    [
        ([18] * 35 + [17], 36, "1 incomplete"),  # one reading of one poll lost
        ([18] * 32, 32, "give or take 54"),  # more than a round of polls lost
        ([18] * 36, 40, "40 requests for 36 polls"),  # a meter read twice per poll
    ],
)
def test_a_window_with_losses_or_extra_requests_fails(
    polls: list[int], requests: int, why: str
) -> None:
    with pytest.raises(EdgeBenchError, match=why):
        _window(polls, requests)


def test_a_short_run_measures_the_edge_and_its_spool(private_broker: LocalBroker) -> None:
    messages: list[str] = []
    settings = EdgeBenchSettings(
        warmup_s=2.0,
        window_s=5.0,
        spool_s=1.0,
        backlog_readings=2_000,
        modbus_meters=3,
        modbus_interval_s=0.5,
    )
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
    # Modbus: 3 meters × 18 metrics every 0.5 s, one request per poll, nothing lost.
    assert (figures["modbus_meters"], figures["modbus_metrics_per_meter"]) == (3, 18)
    assert figures["modbus_expected_readings_per_s"] == 108.0
    window_s = figures["modbus_window_s"]
    assert figures["modbus_readings_per_s"] == pytest.approx(108.0, abs=54 / window_s + 0.1)
    assert figures["modbus_readings_per_s"] == pytest.approx(
        figures["modbus_polls_per_s"] * 18, abs=0.2
    )
    assert figures["modbus_requests_per_poll"] == pytest.approx(1.0, abs=3 / 25)
    assert 1 <= figures["modbus_readings_per_message"] <= 50
    assert 0 < figures["modbus_cpu_pct_mean"] < 100
    assert 10 < figures["modbus_rss_mb_mean"] <= figures["modbus_rss_mb_max"] < 1000
    assert any("3 simulated sdm630 meters" in m for m in messages)


def test_readings_lost_on_the_way_fail_the_modbus_run(
    private_broker: LocalBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = 0
    deliver = Subscriber._on_message

    def lose_every_third(self: Subscriber, client: Any, userdata: Any, message: Any) -> None:
        nonlocal seen
        seen += 1
        if seen % 3:
            deliver(self, client, userdata, message)

    monkeypatch.setattr(Subscriber, "_on_message", lose_every_third)
    settings = EdgeBenchSettings(warmup_s=1.5, window_s=2.5, modbus_meters=2, modbus_interval_s=0.5)
    with pytest.raises(EdgeBenchError, match=r"incomplete|give or take"):
        measure_modbus(private_broker.url, settings, tmp_path, lambda _: None)


def test_the_command_prints_a_table_then_one_json_line() -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "edge", "--warmup-s", "2", "--window-s", "5", "--spool-s", "1",
         "--backlog", "500", "--modbus-meters", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "tonle bench edge" in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replay_received_readings"] == figures["replay_readings"]
    assert figures["edge_rss_mb_max"] > 0
    assert not [key for key in figures if key.startswith("modbus_")]  # 0 meters: skipped

"""The agent's wiring without a broker: sources from the configuration, the pause rule."""

from __future__ import annotations

import queue
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.agent import build_sources
from edge.batching import Batch
from edge.gateway_health import GatewayHealthSource
from edge.mqtt import LinkOptions, MqttLink
from edge.publisher import Publisher
from edge.spool import Spool
from tests.edge.conftest import make_config
from tonle.errors import ConfigError


def test_a_simulator_source_is_built_by_the_simulators_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    made = object()

    def build_source(**kwargs: Any) -> tuple[object, object]:
        calls.append(kwargs)
        return made, "truth"

    stand_in = types.ModuleType("simulators.run")
    stand_in.build_source = build_source  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "simulators.run", stand_in)
    config = make_config(
        tmp_path,
        "mqtt://localhost",
        "site-a",
        sources=[
            {
                "type": "simulator",
                "layout": "footwear",
                "seed": 7,
                "realtime": False,
                "start": "2026-11-01T00:00:00+07:00",
                "days": 2,
                "truth_dir": "truth",
            },
            {"type": "system", "interval_s": 5},
        ],
    )
    (simulator, simulator_realtime), (system, system_realtime) = build_sources(config)
    assert (simulator, simulator_realtime) == (made, False)
    assert calls == [
        {
            "layout": "footwear",
            "seed": 7,
            "start": datetime(2026, 10, 31, 17, 0, tzinfo=UTC),
            "days": 2.0,
            "realtime": False,
            "truth_dir": Path.cwd() / "truth",
        }
    ]
    assert isinstance(system, GatewayHealthSource) and system_realtime
    assert (system.line, system.machine, system.interval_s) == ("gateway", "edge-01", 5)
    assert system.spool_dir == tmp_path


def test_without_the_simulators_package_a_simulator_source_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "simulators.run", None)  # makes the import fail
    config = make_config(tmp_path, "mqtt://localhost", "site-a", sources=[{"type": "simulator"}])
    with pytest.raises(ConfigError, match="needs the simulators package"):
        build_sources(config)


def test_sources_pause_past_the_high_water_mark(tmp_path: Path) -> None:
    config = make_config(tmp_path, "mqtt://localhost", "site-a")
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    with Spool(tmp_path / "s", max_bytes=10**6) as spool:
        link = MqttLink(LinkOptions.from_config(config), events)  # never started
        publisher = Publisher(spool, link, events, "edge-01", high_water_messages=3)
        batch = Batch("tonle/v1/site-a/l/m/telemetry", "[]", 0)
        publisher.spool_append([batch] * 3)
        assert not publisher.over_high_water(realtime=True)
        assert not publisher.over_high_water(realtime=False)
        publisher.spool_append([batch])
        # Broker away: real-time sources keep sampling into the spool, backfills wait.
        assert not publisher.over_high_water(realtime=True)
        assert publisher.over_high_water(realtime=False)
        publisher.connected = True
        assert publisher.over_high_water(realtime=True)
        assert publisher.over_high_water(realtime=False)

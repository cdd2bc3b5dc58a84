"""The gateway health source, on a fake /sys and /proc."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from edge.gateway_health import GatewayHealthSource, parse_mem_available_mb, parse_thermal_c

MEMINFO = "MemTotal:        3884100 kB\nMemFree:          120000 kB\nMemAvailable:    2048000 kB\n"


def fake_system(tmp_path: Path) -> tuple[Path, Path]:
    thermal = tmp_path / "thermal"
    (thermal / "thermal_zone0").mkdir(parents=True)
    (thermal / "thermal_zone0" / "temp").write_text("48312\n")
    (thermal / "thermal_zone1").mkdir()
    (thermal / "thermal_zone1" / "temp").write_text("99000\n")
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    return thermal, meminfo


def test_parsers() -> None:
    assert parse_thermal_c("48312\n") == 48.312
    assert parse_mem_available_mb(MEMINFO) == 2000.0
    assert parse_mem_available_mb("MemTotal: 1 kB\n") is None


def test_one_round_of_figures(tmp_path: Path) -> None:
    thermal, meminfo = fake_system(tmp_path)
    source = GatewayHealthSource("gateway", "edge-01", 60, tmp_path, thermal, meminfo)
    now = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    samples = {s.metric: s for s in source.read(now)}
    assert set(samples) == {"cpu_temp", "load_1m", "spool_free_mb", "mem_free_mb"}
    assert (samples["cpu_temp"].value, samples["cpu_temp"].unit) == (48.312, "°C")
    assert (samples["mem_free_mb"].value, samples["mem_free_mb"].unit) == (2000.0, "MB")
    assert samples["spool_free_mb"].value > 0
    assert {(s.line, s.machine, s.ts) for s in samples.values()} == {("gateway", "edge-01", now)}


def test_figures_the_system_lacks_are_left_out(tmp_path: Path) -> None:
    source = GatewayHealthSource(
        "gateway", "edge-01", 60, tmp_path / "gone", tmp_path / "no-thermal", tmp_path / "no-mem"
    )
    assert {s.metric for s in source.read(datetime.now(UTC))} == {"load_1m"}


def test_samples_stop_when_asked(tmp_path: Path) -> None:
    thermal, meminfo = fake_system(tmp_path)
    source = GatewayHealthSource("gateway", "edge-01", 0.01, tmp_path, thermal, meminfo)
    stop = threading.Event()
    taken = []
    for sample in source.samples(stop):
        taken.append(sample)
        if len(taken) == 8:
            stop.set()
    assert len(taken) == 8
    assert len({s.ts for s in taken}) == 2

"""Field devices → edge agent (Modbus, OPC UA) → Mosquitto → ingester → PostgreSQL, exactly.

A simulated SDM630 on Modbus TCP holds known values; a simulated machine on OPC UA is
written values at known server timestamps. The edge reads both the way it reads real
devices, and the database must hold exactly those values (and, for OPC UA, exactly
those timestamps). ``tonle simulate --serve-devices`` is then run as a process and
its written configuration read by an edge, as a newcomer would do it on a laptop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edge.agent import EdgeAgent
from edge.config import load_config, parse_config
from simulators.devices.modbus_server import ModbusDeviceServer
from simulators.devices.opcua_server import OpcUaDeviceServer
from simulators.layout import CONDITION_METRICS, PRODUCTION_METRICS
from tests.mqtt_helpers import make_settings, running_ingester, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]

ROOT = Path(__file__).resolve().parents[1]
# Each value is exact in float32 (the meter's registers) and after the map's scale.
METER = {
    "voltage": 231.5,
    "current": 12.25,
    "active_power": 8450.0,
    "power_factor": 0.875,
    "frequency": 50.0,
    "energy": 1_234_500.0,  # Wh: 1234.5 kWh in the meter's register
}


def _rows(url: str, site: str, machine: str) -> list[tuple[str, datetime, float]]:
    with psycopg.connect(url) as conn:
        return [
            (str(metric), ts, float(value))
            for metric, ts, value in conn.execute(
                "SELECT metric, ts, value FROM telemetry WHERE site = %s AND machine = %s"
                " ORDER BY metric, ts",
                (site, machine),
            )
        ]


def _edge_config(site: str, mqtt_url: str, tmp_path: Path, sources: list[Any]) -> Any:
    return parse_config(
        {
            "site": site,
            "edge_id": "edge-dev",
            "broker": {"url": mqtt_url},
            "batch": {"max_delay_s": 0.1},
            "spool": {"path": str(tmp_path / "edge.spool"), "synchronous": "normal"},
            "sources": sources,
        }
    )


@pytest.fixture
def devices() -> Iterator[tuple[ModbusDeviceServer, OpcUaDeviceServer]]:
    meter = ModbusDeviceServer([(1, "sdm630")])
    machine = OpcUaDeviceServer(
        [("press", "p1", "motor_temp", "°C"), ("press", "p1", "units_good", None)]
    )
    meter.start()
    try:
        machine.start()
        try:
            yield meter, machine
        finally:
            machine.stop()
    finally:
        meter.stop()


def test_device_values_reach_the_database_exactly(
    devices: tuple[ModbusDeviceServer, OpcUaDeviceServer],
    database_url: str,
    mqtt_url: str,
    site_id: str,
    tmp_path: Path,
) -> None:
    meter, machine = devices
    for metric, value in METER.items():
        meter.set_value(1, metric, value)
    config = _edge_config(
        site_id,
        mqtt_url,
        tmp_path,
        [
            {
                "type": "modbus",
                "host": "127.0.0.1",
                "port": meter.port,
                "interval_s": 0.5,
                "devices": [
                    {
                        "unit_id": 1,
                        "map": "sdm630",
                        "line": "utilities",
                        "machine": "main-meter",
                        "metrics": list(METER),
                    }
                ],
            },
            {
                "type": "opcua",
                "url": machine.url,
                "publishing_interval_ms": 50,
                "nodes": [
                    {
                        "node_id": machine.node_id("press", "p1", metric),
                        "line": "press",
                        "machine": "p1",
                        "metric": metric,
                    }
                    for metric in ("motor_temp", "units_good")
                ],
            },
        ],
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    written = [  # a counter may repeat its value: each write is a reading of its own
        ("units_good", start + timedelta(seconds=i), value)
        for i, value in enumerate([3.0, 3.0, 4.0, 2.0])
    ] + [("motor_temp", start + timedelta(seconds=i), 41.0 + i / 4) for i in range(4)]
    agent = EdgeAgent(config)
    with running_ingester(make_settings(database_url, mqtt_url)):
        agent.start()
        try:
            wait_until(
                lambda: (
                    ("device_online", 1.0)
                    in {(m, v) for m, _, v in _rows(database_url, site_id, "p1")}
                )
            )
            for metric, ts, value in written:
                machine.update("press", "p1", metric, value, ts)
                time.sleep(0.06)  # one publishing interval apart, as a machine's updates come
            wait_until(
                lambda: (
                    {(m, ts, v) for m, ts, v in _rows(database_url, site_id, "p1")} >= set(written)
                ),
                timeout_s=20,
            )
            wait_until(
                lambda: {m for m, _, _ in _rows(database_url, site_id, "main-meter")} >= set(METER),
            )
        finally:
            agent.stop(timeout_s=10)
    meter_rows = _rows(database_url, site_id, "main-meter")
    for metric, value in METER.items():
        values = {v for m, _, v in meter_rows if m == metric}
        assert values == {value}, metric
    assert {(m, v) for m, _, v in meter_rows if m == "device_online"} == {("device_online", 1.0)}
    machine_rows = [(m, ts, v) for m, ts, v in _rows(database_url, site_id, "p1")]
    after = [(m, ts, v) for m, ts, v in machine_rows if ts >= start and m != "device_online"]
    assert sorted(after) == sorted(written)


def test_serve_devices_is_read_by_an_edge(database_url: str, mqtt_url: str, tmp_path: Path) -> None:
    workdir = tmp_path / "devices"
    env = {**os.environ, "TONLE_MQTT_URL": mqtt_url, "TONLE_DATABASE_URL": database_url}
    command = [
        sys.executable,
        "-m",
        "tonle",
        "simulate",
        "--layout",
        "tiny",
        "--serve-devices",
        "--devices-dir",
        str(workdir),
        "--modbus-port",
        "0",
        "--opcua-port",
        "0",
    ]
    log_path = tmp_path / "serve.log"  # a file, not a pipe nobody reads while it runs
    log_file = log_path.open("w")
    farm = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: (workdir / "edge.yaml").exists() or farm.poll() is not None, 60)
        assert farm.poll() is None, log_path.read_text()
        config = load_config(workdir / "edge.yaml")
        assert [s.type for s in config.sources] == ["modbus", "opcua"]
        agent = EdgeAgent(config)
        with running_ingester(make_settings(database_url, mqtt_url)):
            agent.start()
            try:
                expected = _served_series(config)

                def stored() -> set[tuple[str, str, str]]:
                    with psycopg.connect(database_url) as conn:
                        return {
                            (str(line), str(machine), str(metric))
                            for line, machine, metric in conn.execute(
                                "SELECT DISTINCT line, machine, metric FROM telemetry"
                                " WHERE site = %s AND metric <> 'device_online'",
                                (config.site,),
                            )
                        }

                wait_until(lambda: stored() >= expected, timeout_s=60)
            finally:
                agent.stop(timeout_s=10)
    finally:
        farm.send_signal(signal.SIGINT)
        farm.wait(timeout=30)
        log_file.close()
    out = log_path.read_text()
    assert farm.returncode == 0, out
    assert "read them with:  tonle edge --config" in out


def _served_series(config: Any) -> set[tuple[str, str, str]]:
    """The series the configuration reads that hold a value from the first tick on.

    Every meter register, and the OPC UA variables of each machine's main channel;
    condition and production figures come minutes apart, too late for a quick test.
    """
    later = CONDITION_METRICS | PRODUCTION_METRICS
    series: set[tuple[str, str, str]] = set()
    for source in config.sources:
        if source.type == "modbus":
            for device in source.devices:
                series |= {(device.line, device.machine, m) for m in device.metrics or []}
        else:
            series |= {(n.line, n.machine, n.metric) for n in source.nodes if n.metric not in later}
    return series


def test_edge_check_shows_what_a_meter_says_and_names_a_silent_one(tmp_path: Path) -> None:
    with ModbusDeviceServer([(1, "sdm630")]) as meter:
        meter.set_value(1, "voltage", 231.5)
        meter.set_value(1, "energy", 1_234_500.0)
        device = "{{unit_id: {unit}, map: sdm630, line: utilities, machine: {machine},"
        device += " metrics: [voltage, energy]}}"
        config = tmp_path / "edge.yaml"
        config.write_text(
            "site: s1\nedge_id: e1\nsources:\n  - type: modbus\n    host: 127.0.0.1\n"
            f"    port: {meter.port}\n    timeout_s: 0.3\n    retries: 0\n    interval_s: 0.5\n"
            f"    devices:\n      - {device.format(unit=1, machine='main-meter')}\n"
            f"      - {device.format(unit=7, machine='sub-meter')}\n",
            encoding="utf-8",
        )
        result = subprocess.run(
            [sys.executable, "-m", "tonle", "edge", "--config", str(config), "--check", "-s", "2"],
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    out = result.stdout + result.stderr  # the table and the verdict go to the console
    assert result.returncode == 1, out
    rows = {tuple(line.split("│")[1:6]) for line in out.splitlines() if "│" in line}
    rows = {tuple(cell.strip() for cell in row) for row in rows}
    assert ("utilities", "main-meter", "voltage", "231.5", "V") in rows
    assert ("utilities", "main-meter", "energy", "1.2345e+06", "Wh") in rows
    assert ("utilities", "main-meter", "device_online", "online", "") in rows
    assert ("utilities", "sub-meter", "device_online", "OFFLINE", "") in rows
    assert "utilities/sub-meter does not answer" in out
    assert "main-meter does not answer" not in out

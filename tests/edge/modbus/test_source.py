"""The Modbus source against simulated meters on loopback, over TCP and a serial line."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from edge.config import ModbusSourceConfig
from edge.modbus.codec import DataType, Order, register_count
from edge.modbus.source import ONLINE_METRIC, ModbusSource
from edge.sources import Sample
from simulators.devices.modbus_server import ModbusDeviceServer
from tests.edge.modbus.ptylink import PtyLink
from tonle.errors import ConfigError

ORDERS: tuple[Order, ...] = get_args(Order)
# A value of each type that uses all of its bytes, exactly representable as a float.
VALUES: dict[str, float] = {
    "int16": -12_345,
    "uint16": 54_321,
    "int32": -123_456_789,
    "uint32": 3_000_000_000,
    "int64": -9_007_199_254_740_991,
    "uint64": 9_007_199_254_740_991,
    "float32": 230.5,
    "float64": -0.1,
}
LINE, MACHINE = "utilities", "meter-1"


def _metric(data_type: str, byte_order: str, word_order: str) -> str:
    return f"{data_type}_{byte_order}_{word_order}"


@pytest.fixture
def every_type_map(tmp_path: Path) -> str:
    """A map with every type in every byte and word order: integers as holding
    registers from 100, floats as input registers from 200, each run contiguous."""
    registers: dict[str, dict[str, Any]] = {}
    next_address = {3: 100, 4: 200}
    for data_type in get_args(DataType):
        code = 4 if data_type.startswith("float") else 3
        for byte_order in ORDERS:
            for word_order in ORDERS:
                registers[_metric(data_type, byte_order, word_order)] = {
                    "address": next_address[code],
                    "function_code": code,
                    "data_type": data_type,
                    "byte_order": byte_order,
                    "word_order": word_order,
                    "unit": None,
                }
                next_address[code] += register_count(data_type)
    path = tmp_path / "every-type.yaml"
    document = {"name": "every-type", "document": "test", "registers": registers}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return str(path)


def _source(port: int, devices: list[dict[str, Any]], **link: Any) -> ModbusSource:
    document: dict[str, Any] = {
        "type": "modbus",
        "host": "127.0.0.1",
        "port": port,
        "timeout_s": 0.2,
        "retries": 0,
        "interval_s": 0.1,
        "devices": devices,
        **link,
    }
    return ModbusSource(ModbusSourceConfig.model_validate(document))


def _device(
    unit_id: int, map_reference: str, machine: str = MACHINE, **more: Any
) -> dict[str, Any]:
    return {"unit_id": unit_id, "map": map_reference, "line": LINE, "machine": machine, **more}


def _take(source: ModbusSource, done: Callable[[list[Sample]], bool]) -> list[Sample]:
    """Run the source in this thread until ``done(samples)``; then stop it and drain it."""
    stop = threading.Event()
    samples: list[Sample] = []
    deadline = time.monotonic() + 10
    for sample in source.samples(stop):
        samples.append(sample)
        if not stop.is_set() and (done(samples) or time.monotonic() > deadline):
            stop.set()
    assert done(samples), "the source stopped before the condition was met"
    return samples


def _values(samples: list[Sample], machine: str = MACHINE) -> dict[str, float]:
    return {s.metric: s.value for s in samples if s.machine == machine}


class _Running:
    """The source in a thread of its own, as the agent runs it."""

    def __init__(self, source: ModbusSource) -> None:
        self.source = source
        self.stop = threading.Event()
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="modbus-source-test")

    def _run(self) -> None:
        for sample in self.source.samples(self.stop):
            with self._lock:
                self._samples.append(sample)

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def wait_for(self, predicate: Callable[[list[Sample]], bool], timeout_s: float = 5) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self.samples()):
            assert self._thread.is_alive(), "the source ended"
            assert time.monotonic() < deadline, f"not met within {timeout_s} s: {self.samples()}"
            time.sleep(0.01)

    def finish(self) -> float:
        """Stop the source; how long it took to return."""
        started = time.monotonic()
        self.stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive()
        return time.monotonic() - started

    def __enter__(self) -> _Running:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


@pytest.fixture
def served(every_type_map: str) -> Iterator[ModbusDeviceServer]:
    """Meter 1 with every type and order, meter 2 an SDM630, over Modbus TCP."""
    with ModbusDeviceServer([(1, every_type_map), (2, "sdm630")]) as server:
        yield server


# ------------------------------------------------------------------ decoding


def test_every_type_and_order_decodes_to_the_value_the_server_holds(
    served: ModbusDeviceServer, every_type_map: str
) -> None:
    metrics = [_metric(t, b, w) for t in get_args(DataType) for b in ORDERS for w in ORDERS]
    served.update(1, {m: VALUES[m.split("_")[0]] for m in metrics})
    source = _source(served.port, [_device(1, every_type_map)])

    samples = _take(source, lambda got: set(metrics) <= {s.metric for s in got})

    assert samples[0].metric == ONLINE_METRIC and samples[0].value == 1.0
    assert samples[0].unit is None
    values = _values(samples)
    for metric in metrics:
        assert values[metric] == VALUES[metric.split("_")[0]], metric
        assert values[metric] == served.held(1, metric)
    ts = {s.ts for s in samples}
    assert len(ts) == 1  # one poll, one timestamp
    # On the wire, independently of the codec both ends share: 230.5 as float32.
    client = ModbusTcpClient("127.0.0.1", port=served.port, timeout=1, retries=0)
    try:
        words = client.read_input_registers(200, count=8, device_id=1).registers
    finally:
        client.close()  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
    assert words == [0x4366, 0x8000, 0x8000, 0x4366, 0x6643, 0x0080, 0x0080, 0x6643]
    (stamp,) = ts
    assert stamp.utcoffset() is not None and stamp.microsecond % 1000 == 0


def test_a_shipped_map_scales_into_contract_units(served: ModbusDeviceServer) -> None:
    served.update(2, {"voltage": 231.5, "active_power": 4200.0, "energy": 1_234_567.0})
    source = _source(served.port, [_device(2, "sdm630", metrics=["voltage", "energy"])])

    samples = _take(source, lambda got: {"voltage", "energy"} <= {s.metric for s in got})

    values = _values(samples)
    assert set(values) == {ONLINE_METRIC, "voltage", "energy"}
    assert values["voltage"] == 231.5
    # The meter counts kWh in a float32: 1234.567 kWh is held as 1234.5670166015625.
    assert values["energy"] == served.held(2, "energy") == 1234.5670166015625 * 1000
    units = {s.metric: s.unit for s in samples}
    assert units == {ONLINE_METRIC: None, "voltage": "V", "energy": "Wh"}


def test_reads_are_grouped_into_the_planned_requests(
    served: ModbusDeviceServer, every_type_map: str
) -> None:
    source = _source(
        served.port, [_device(1, every_type_map), _device(2, "sdm630", machine="meter-2")]
    )
    per_poll = 32 + 18  # values of meter 1 and meter 2

    _take(source, lambda got: sum(s.metric != ONLINE_METRIC for s in got) == 3 * per_poll)

    assert source.stats.polls == 6
    # Meter 1: its integers in one holding-register read, its floats in one input read.
    assert served.requests(1, 3) == 3
    assert served.requests(1, 4) == 3
    # Meter 2, an SDM630: all 18 values in one read of 74 registers.
    assert served.requests(2) == 3
    assert source.stats.requests == served.requests() == 9


def test_a_reader_never_sees_half_an_update(served: ModbusDeviceServer) -> None:
    source = _source(served.port, [_device(2, "sdm630", interval_s=0.02)], interval_s=0.02)
    writing = threading.Event()
    writing.set()

    def write() -> None:
        x = 0.0
        while writing.is_set():
            x += 1.0
            served.update(2, {"voltage": x, "current": x})

    writer = threading.Thread(target=write, name="meter-writer")
    writer.start()
    try:
        samples = _take(source, lambda got: sum(s.metric == "current" for s in got) == 20)
    finally:
        writing.clear()
        writer.join(5)
    voltages = [s.value for s in samples if s.metric == "voltage"]
    currents = [s.value for s in samples if s.metric == "current"]
    assert voltages == currents
    assert len(set(voltages)) > 1


# -------------------------------------------------------------------- outages


def test_a_meter_that_stops_answering_is_reported_once_and_recovers(
    served: ModbusDeviceServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.modbus.source")
    served.update(2, {"voltage": 230.0, "energy": 1000.0})
    sampling = {"voltage": {"deadband": 1000.0, "heartbeat_s": 3600}}
    source = _source(served.port, [_device(2, "sdm630", sampling=sampling)], timeout_s=0.1)

    with _Running(source) as running:
        running.wait_for(lambda got: any(s.metric == "energy" for s in got))
        served.stop_answering(2)
        running.wait_for(lambda got: any(s.metric == ONLINE_METRIC and s.value == 0 for s in got))
        failures = source.stats.failures
        running.wait_for(lambda got: source.stats.failures >= failures + 3)
        silent = running.samples()
        served.update(2, {"energy": 2000.0})
        served.resume(2)
        running.wait_for(lambda got: any(s.metric == "energy" and s.value == 2000 for s in got))
    samples = running.samples()

    offline = next(i for i, s in enumerate(silent) if s.metric == ONLINE_METRIC and s.value == 0)
    assert silent[offline + 1 :] == []  # nothing while the meter is silent, no repeats
    status = [s.value for s in samples if s.metric == ONLINE_METRIC]
    assert status[:3] == [1.0, 0.0, 1.0]
    after = samples[offline + 1 :]
    assert after[0].metric == ONLINE_METRIC and after[0].value == 1.0
    fresh = _values(after[1:19])  # the first poll after recovery
    assert fresh["energy"] == 2000.0
    # The deadband was forgotten: the unchanged voltage goes out again after the outage.
    assert fresh["voltage"] == 230.0
    assert sum(s.metric == "voltage" for s in samples[:offline]) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "does not answer" in w]) == 1
    assert len([w for w in warnings if "answers again" in w]) == 1
    assert any("ended:" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


def test_an_unreachable_meter_is_a_status_not_a_crash() -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = _source(port, [_device(2, "sdm630")])

    with _Running(source) as running:
        running.wait_for(lambda got: source.stats.failures >= 3)
    samples = running.samples()

    assert [(s.metric, s.value) for s in samples] == [(ONLINE_METRIC, 0.0)]


def test_the_source_returns_within_a_second_of_stop(served: ModbusDeviceServer) -> None:
    served.stop_answering(2)
    # Each request waits up to 0.3 s, retried once: a poll is blocked 0.6 s at most.
    source = _source(served.port, [_device(2, "sdm630")], timeout_s=0.3, retries=1)
    running = _Running(source).__enter__()
    running.wait_for(lambda got: len(got) == 1)  # the first poll failed
    time.sleep(0.1)  # into the second poll's request
    assert running.finish() < 1.0

    served.resume(2)
    idle = _Running(_source(served.port, [_device(2, "sdm630")], interval_s=30)).__enter__()
    idle.wait_for(lambda got: any(s.metric == "energy" for s in got))
    assert idle.finish() < 0.5


# ------------------------------------------------------------------- sampling


def test_deadband_and_heartbeat(served: ModbusDeviceServer) -> None:
    served.update(2, {"voltage": 230.0})
    sampling = {"voltage": {"deadband": 1.0, "heartbeat_s": 0.45}}
    source = _source(served.port, [_device(2, "sdm630", sampling=sampling)])
    stop = threading.Event()
    voltages: list[Sample] = []
    polls = 0
    for sample in source.samples(stop):
        if sample.metric == "voltage":
            voltages.append(sample)
        if sample.metric == "energy":  # the last value of each poll
            polls += 1
            if polls == 1:
                served.set_value(2, "voltage", 230.5)  # within the deadband
            elif polls == 3:
                served.set_value(2, "voltage", 232.0)  # beyond it
            elif polls == 10:
                stop.set()

    assert [s.value for s in voltages] == [230.0, 232.0, 232.0]
    heartbeat = (voltages[2].ts - voltages[1].ts).total_seconds()
    assert 0.45 <= heartbeat < 0.8
    assert source.stats.suppressed == 7  # polls 2, 3 and 5..9 minus the heartbeat


def test_the_link_ticks_at_the_common_divisor_of_the_intervals() -> None:
    source = _source(
        1502,
        [_device(1, "sdm630", interval_s=0.2), _device(2, "sdm120", machine="m2", interval_s=0.3)],
    )
    assert source.tick_s == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="has no metric pressure"):
        _source(1502, [_device(1, "sdm630", metrics=["voltage", "pressure"])])


# ------------------------------------------------------------ other framings


def test_rtu_over_a_serial_line() -> None:
    with (
        PtyLink() as link,
        ModbusDeviceServer(
            [(1, "sdm630"), (7, "sdm120")], serial_port=link.b, baudrate=38_400
        ) as server,
    ):
        server.update(1, {"voltage": 229.5, "energy": 5_000_000.0})
        server.update(7, {"voltage": 231.0, "power_factor": -0.5})
        source = _source(
            502,  # unused by an RTU link
            [
                _device(1, "sdm630", metrics=["voltage", "energy"]),
                _device(7, "sdm120", machine="meter-7", metrics=["voltage", "power_factor"]),
            ],
            transport="rtu",
            host=None,
            serial_port=link.a,
            baudrate=38_400,
        )
        samples = _take(source, lambda got: sum(s.metric != ONLINE_METRIC for s in got) == 4)

    assert _values(samples) == {ONLINE_METRIC: 1.0, "voltage": 229.5, "energy": 5_000_000.0}
    assert _values(samples, "meter-7") == {
        ONLINE_METRIC: 1.0,
        "voltage": 231.0,
        "power_factor": -0.5,
    }


def test_rtu_frames_over_tcp() -> None:
    with ModbusDeviceServer([(3, "schneider-pm5100")], framing="rtu") as server:
        server.update(3, {"active_power": 12_500.0, "power_factor": 0.92, "energy": 123_456_789})
        source = _source(server.port, [_device(3, "schneider-pm5100")], transport="rtu-over-tcp")
        samples = _take(source, lambda got: any(s.metric == "energy" for s in got))

    values = _values(samples)
    assert values["active_power"] == 12_500.0
    assert values["power_factor"] == server.held(3, "power_factor") == pytest.approx(0.92)
    assert values["energy"] == 123_456_789.0
    assert server.requests(3, 3) == 8  # the map's plan: eight reads


def test_the_server_refuses_what_a_meter_cannot_hold(served: ModbusDeviceServer) -> None:
    with pytest.raises(ValueError, match="outside int16"):
        served.set_value(1, "int16_big_big", 40_000)
    with pytest.raises(ValueError, match="does not fit float32"):
        served.set_value(2, "voltage", 1e39)
    with pytest.raises(KeyError, match="pressure"):
        served.set_value(2, "pressure", 1.0)
    assert served.held(1, "int16_big_big") == 0.0  # nothing was stored


def test_a_lost_connection_is_reopened() -> None:
    first = ModbusDeviceServer([(2, "sdm630")]).start()
    port = first.port
    source = _source(port, [_device(2, "sdm630", metrics=["energy"])])
    try:
        with _Running(source) as running:
            first.set_value(2, "energy", 1000.0)
            running.wait_for(lambda got: any(s.metric == "energy" for s in got))
            first.stop()  # the gateway restarts: its connections drop
            running.wait_for(
                lambda got: any(s.value == 0 for s in got if s.metric == ONLINE_METRIC)
            )
            with ModbusDeviceServer([(2, "sdm630")], port=port) as second:
                second.set_value(2, "energy", 2000.0)
                running.wait_for(lambda got: any(s.value == 2000 for s in got))
    finally:
        first.stop()
    assert [s.value for s in running.samples() if s.metric == ONLINE_METRIC] == [1.0, 0.0, 1.0]
    assert source.stats.reconnects == 1

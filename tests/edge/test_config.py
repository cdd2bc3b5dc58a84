"""The edge configuration: the shipped example loads; mistakes name the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import (
    ModbusSourceConfig,
    OpcUaSourceConfig,
    SimulatorSourceConfig,
    SystemSourceConfig,
    load_config,
)
from edge.discipline import rule_for
from tonle.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "edge" / "edge.example.yaml"
DEVICES_EXAMPLE = EXAMPLE.with_name("edge.devices.example.yaml")

METER = "{unit_id: 1, map: sdm630, line: utilities, machine: main-meter}"
NODE = "{node_id: 'ns=2;s=Press1.Power', line: press, machine: p1, metric: active_power}"

MINIMAL = """\
site: site-a
edge_id: edge-01
sources:
  - type: system
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_loads_with_its_documented_values() -> None:
    config = load_config(EXAMPLE)
    assert (config.site, config.edge_id) == ("example-garment", "edge-01")
    assert config.broker.address().port == 1883
    assert (config.batch.max_readings, config.batch.max_delay_s) == (50, 1.0)
    assert config.spool.path == Path("/var/lib/tonle/edge.spool")
    assert (config.spool.max_mb, config.spool.synchronous) == (256, "full")
    assert config.publish.max_inflight == 1000
    simulator, system = config.sources
    assert isinstance(simulator, SimulatorSourceConfig)
    assert (simulator.layout, simulator.seed, simulator.realtime) == ("garment", 1, True)
    assert isinstance(system, SystemSourceConfig)
    assert (system.interval_s, system.line) == (60, "gateway")
    assert config.client_id() == "tonle-edge-example-garment-edge-01"


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\nignored\n")
    path = write(
        tmp_path,
        MINIMAL
        + "spool: {path: data/edge.spool}\n"
        + "broker: {url: 'mqtt://edge:fromurl@broker.local', password_file: secret}\n",
    )
    config = load_config(path)
    assert config.spool.path == tmp_path / "data" / "edge.spool"
    address = config.broker.address()
    assert (address.host, address.port, address.username) == ("broker.local", 1883, "edge")
    assert address.password == "s3cret"  # noqa: S105 - the test's own throwaway secret
    assert "s3cret" not in repr(config) and "s3cret" not in str(address)


def test_credentials_in_the_url_are_used_unless_fields_override_them(tmp_path: Path) -> None:
    url_only = load_config(write(tmp_path, MINIMAL + "broker: {url: 'mqtts://u:p%40ss@h:8884'}\n"))
    address = url_only.broker.address()
    assert (address.username, address.password, address.tls, address.port) == (
        "u",
        "p@ss",
        True,
        8884,
    )
    fields = load_config(
        write(tmp_path, MINIMAL + "broker: {url: 'mqtt://u:p@h', username: v, password: q}\n")
    )
    assert (fields.broker.address().username, fields.broker.address().password) == ("v", "q")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL.replace("edge-01", "Edge 01"), "edge_id: String should match pattern"),
        (MINIMAL + "brokr: {url: 'mqtt://x'}\n", "brokr: Extra inputs are not permitted"),
        (MINIMAL.replace("site: site-a\n", ""), "site: Field required"),
        (MINIMAL.replace("type: system", "type: camera"), "sources.0: Input tag 'camera'"),
        (MINIMAL + "    interval_s: 0\n", "sources.0.system.interval_s: Input should be greater"),
        (MINIMAL + "batch: {max_readings: 20000}\n", "batch.max_readings: Input should be less"),
        (MINIMAL + "spool: {synchronous: off}\n", "spool.synchronous: Input should be 'full'"),
        (MINIMAL + "broker: {url: 'http://x'}\n", "broker.url: MQTT URL 'http://x' must start"),
        (
            MINIMAL + "broker: {url: 'mqtt://x', password: a, password_file: edge.yaml}\n",
            "broker: set password or password_file, not both",
        ),
        (MINIMAL + "broker: {tls: {insecure: true}}\n", "broker: tls is set but url starts"),
        (
            MINIMAL + "broker: {url: 'mqtts://x', tls: {ca_file: nowhere.pem}}\n",
            "broker.tls.ca_file: file ",
        ),
        (
            MINIMAL.replace("type: system", "type: simulator\n    start: 2026-11-01T00:00:00"),
            "sources.0.simulator: start needs a UTC offset",
        ),
        (MINIMAL.replace("sources:\n  - type: system\n", "sources: []\n"), "sources: List should"),
        (
            MINIMAL.replace("type: system", "type: modbus\n    transport: rtu\n    devices: []"),
            "sources.0.modbus.devices: List should have at least 1 item",
        ),
        (
            MINIMAL.replace(
                "type: system", f"type: modbus\n    transport: rtu\n    devices: [{METER}]"
            ),
            "sources.0.modbus: transport rtu needs serial_port",
        ),
        (
            MINIMAL.replace("type: system", f"type: modbus\n    devices: [{METER}]"),
            "sources.0.modbus: transport tcp needs host",
        ),
        (
            MINIMAL.replace(
                "type: system",
                "type: modbus\n    host: gw\n    devices: [{unit_id: 1, map: 'x y',"
                " line: l, machine: m}]",
            ),
            "sources.0.modbus.devices.0.map: map 'x y' is neither",
        ),
        (
            MINIMAL.replace("type: system", f"type: modbus\n    host: gw\n    devices: [{METER}]")
            + "    sampling: {}\n",
            "sources.0.modbus.sampling: Extra inputs are not permitted",
        ),
        (
            MINIMAL.replace(
                "type: system",
                "type: modbus\n    host: gw\n    devices: [{unit_id: 1, map: sdm630, line: l,"
                " machine: m, sampling: {Power: {deadband: 1}}}]",
            ),
            "sampling key 'Power' is neither a metric name nor '*'",
        ),
        (
            MINIMAL.replace(
                "type: system", f"type: opcua\n    url: 'opc.tcp://plc'\n    nodes: [{NODE}]"
            )
            + "    security_policy: Basic256Sha256\n    security_mode: SignAndEncrypt\n",
            "a security policy needs certificate_file and private_key_file",
        ),
        (
            MINIMAL.replace(
                "type: system", f"type: opcua\n    url: 'opc.tcp://plc'\n    nodes: [{NODE}]"
            )
            + "    security_policy: Basic256Sha256\n",
            "security_policy and security_mode are both None or both set",
        ),
        (
            MINIMAL.replace(
                "type: system", f"type: opcua\n    url: 'opc.tcp://plc'\n    nodes: [{NODE}]"
            )
            + "    password: x\n",
            "a password needs a username",
        ),
        (
            MINIMAL.replace(
                "type: system",
                f"type: opcua\n    url: 'opc.tcp://plc'\n    nodes: [{NODE}, {NODE}]",
            ),
            "two nodes publish the same line/machine/metric",
        ),
        (
            MINIMAL.replace(
                "type: system", f"type: opcua\n    url: 'http://plc'\n    nodes: [{NODE}]"
            ),
            "sources.0.opcua.url: String should match pattern",
        ),
    ],
)
def test_a_mistake_names_the_file_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid edge configuration")
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("site: [unclosed\n", "not valid YAML at line 2, column 1"),
        ("- a\n- b\n", "expected a mapping of settings"),
        ("", "expected a mapping of settings"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path))


def test_the_devices_example_loads_with_its_documented_values() -> None:
    config = load_config(DEVICES_EXAMPLE)
    rtu, gateway, plc = config.sources
    assert isinstance(rtu, ModbusSourceConfig) and isinstance(gateway, ModbusSourceConfig)
    assert (rtu.transport, rtu.serial_port, rtu.baudrate, rtu.parity) == (
        "rtu",
        "/dev/ttyUSB0",
        9600,
        "N",
    )
    assert rtu.source_name() == "modbus-/dev/ttyUSB0"
    meter = rtu.devices[0]
    assert (meter.unit_id, meter.map, meter.line, meter.machine) == (
        1,
        "sdm630",
        "utilities",
        "main-meter",
    )
    assert rule_for(meter.sampling, "active_power").deadband == 50
    assert rule_for(meter.sampling, "energy").deadband is None
    assert rule_for(meter.sampling, "voltage").deadband == 1.0
    assert gateway.transport == "tcp" and gateway.source_name() == "modbus-192.168.1.50:502"
    assert isinstance(plc, OpcUaSourceConfig)
    assert plc.source_name() == "opcua-192.168.1.60:4840"
    assert [n.metric for n in plc.nodes] == ["machine_state", "units_good", "motor_temp"]


def test_a_map_file_is_found_beside_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "mine.yaml").write_text("{}\n")
    device = "{unit_id: 3, map: maps/mine.yaml, line: l, machine: m}"
    path = write(
        tmp_path,
        MINIMAL.replace("type: system", f"type: modbus\n    host: gw\n    devices: [{device}]"),
    )
    (source,) = load_config(path).sources
    assert isinstance(source, ModbusSourceConfig)
    assert source.devices[0].map == str(tmp_path / "maps" / "mine.yaml")
    missing = write(
        tmp_path,
        MINIMAL.replace(
            "type: system",
            "type: modbus\n    host: gw\n"
            "    devices: [{unit_id: 3, map: maps/other.yaml, line: l, machine: m}]",
        ),
    )
    with pytest.raises(ConfigError, match=r"devices.0.map: file .*other.yaml does not exist"):
        load_config(missing)


def test_an_opcua_password_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    path = write(
        tmp_path,
        MINIMAL.replace(
            "type: system", f"type: opcua\n    url: 'opc.tcp://plc'\n    nodes: [{NODE}]"
        )
        + "    username: edge\n    password_file: pw\n",
    )
    (source,) = load_config(path).sources
    assert isinstance(source, OpcUaSourceConfig)
    assert source.secret() == "s3cret"
    assert source.source_name() == "opcua-plc"


def test_a_missing_file_says_where_to_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file; start from edge/edge.example.yaml"):
        load_config(tmp_path / "nope.yaml")

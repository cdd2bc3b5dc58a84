"""Register maps: the shipped ones load and agree with the contract; bad files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.modbus.codec import ReadRequest, encode
from edge.modbus.maps import SHIPPED_DIR, RegisterMap, load_map
from tonle.contract import METRIC_UNITS
from tonle.errors import ConfigError

SHIPPED = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))
# What every meter map offers, in the contract's units.
ELECTRICAL = ("active_power", "energy", "voltage", "current", "power_factor", "frequency")
UNITS = {metric: METRIC_UNITS[metric] for metric in ELECTRICAL}


def test_the_three_maps_are_shipped() -> None:
    assert SHIPPED == ["schneider-pm5100", "sdm120", "sdm630"]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_map_loads_and_cites_its_document(name: str) -> None:
    register_map = load_map(name)
    assert register_map.name == name
    header = []
    for line in (SHIPPED_DIR / f"{name}.yaml").read_text("utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert "Follows:" in text
    assert "0-based" in text
    assert register_map.document


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_map_has_the_contract_metrics_in_the_contract_units(name: str) -> None:
    register_map = load_map(name)
    assert set(UNITS) <= set(register_map.registers)
    for metric, register in register_map.registers.items():
        base = metric.removesuffix("_l1").removesuffix("_l2").removesuffix("_l3")
        assert base in UNITS, f"{name}: {metric} is not a contract metric"
        assert register.unit == UNITS[base], f"{name}: {metric} in {register.unit}"


@pytest.mark.parametrize("name", SHIPPED)
def test_no_two_registers_of_a_shipped_map_overlap(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for register in load_map(name).registers.values():
        cells = {(register.function_code, register.address + i) for i in range(register.count)}
        assert not cells & taken, f"{name}: {register.metric} overlaps"
        taken |= cells


def test_the_sdm630_is_read_in_one_request_of_74_registers() -> None:
    # Every mapped SDM630 value lies within 0x00..0x4A, within the 80 registers the
    # meter answers at once.
    sdm630 = load_map("sdm630")
    assert sdm630.plan() == [ReadRequest(4, 0, 74)]
    assert sdm630.plan(["voltage", "energy"]) == [ReadRequest(4, 0x2A, 0x4A - 0x2A)]


def test_the_pm5100_is_read_without_spanning_unlisted_registers() -> None:
    assert load_map("schneider-pm5100").plan() == [
        ReadRequest(3, 2999, 6),  # currents A, B, C
        ReadRequest(3, 3009, 2),  # current avg
        ReadRequest(3, 3027, 6),  # voltages A-N, B-N, C-N
        ReadRequest(3, 3035, 2),  # voltage L-N avg
        ReadRequest(3, 3053, 8),  # active power A, B, C, total
        ReadRequest(3, 3083, 2),  # power factor total
        ReadRequest(3, 3109, 2),  # frequency
        ReadRequest(3, 3203, 4),  # active energy delivered, INT64
    ]


def test_scales_and_transforms_give_contract_units() -> None:
    sdm630 = load_map("sdm630").registers
    assert sdm630["energy"].decode(encode(1234.5, "float32")) == 1_234_500.0  # kWh → Wh
    pm = load_map("schneider-pm5100").registers
    assert pm["active_power"].decode(encode(1.5, "float32")) == 1500.0  # kW → W
    assert pm["energy"].decode(encode(987_654_321, "int64")) == 987_654_321.0
    # Quadrant 4 (leading, importing): the register holds 2 - PF.
    assert pm["power_factor"].decode(encode(1.25, "float32")) == pytest.approx(0.75)
    assert pm["power_factor"].encode(-0.5) == encode(-0.5, "float32")


def test_select_names_an_unknown_metric() -> None:
    with pytest.raises(ConfigError, match="has no metric pressure"):
        load_map("sdm120").select(["voltage", "pressure"])


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "meter.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


GOOD = """
name: test-meter
document: a test
defaults: {function_code: 3, data_type: uint16}
registers:
  voltage: {address: 10, scale: 0.1, unit: V}
  energy: {address: 11, data_type: uint32, unit: Wh}
"""


def test_a_map_file_by_path_with_defaults(tmp_path: Path) -> None:
    register_map = load_map(_write(tmp_path, GOOD))
    assert isinstance(register_map, RegisterMap)
    assert register_map.registers["voltage"].data_type == "uint16"
    assert register_map.registers["energy"].count == 2
    assert register_map.plan() == [ReadRequest(3, 10, 3)]
    assert register_map.registers["voltage"].decode([2305]) == pytest.approx(230.5)
    assert register_map.registers["voltage"].encode(230.5) == [2305]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("address: 11", "address: 10"), "overlaps voltage"),
        (GOOD.replace("unit: Wh", "unit: kWh"), "contract's unit is 'Wh'"),
        (GOOD.replace("data_type: uint16", "data_type: int128"), "data_type"),
        (GOOD.replace("address: 11", "address: 65535"), "past address 65535"),
        (GOOD.replace("scale: 0.1", "scale: 0"), "non-zero"),
        (GOOD + "  colour: {address: 20, unit: null}\n  bogus: 3\n", "must be a mapping"),
        (GOOD.replace("document: a test", ""), "document"),
        ("registers: [1, 2", "not valid YAML at line"),
    ],
)
def test_a_bad_map_is_a_config_error_that_says_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_map(_write(tmp_path, text))


def test_unknown_names_and_missing_files() -> None:
    with pytest.raises(ConfigError, match="no shipped register map 'sdm999'; shipped: "):
        load_map("sdm999")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_map("/nonexistent/meter.yaml")

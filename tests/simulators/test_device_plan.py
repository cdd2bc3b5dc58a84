"""Which simulated device serves each series: a meter register or an OPC UA variable."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from edge.modbus.maps import load_map
from simulators.devices.modbus_server import ModbusDeviceServer
from simulators.devices.serve import (
    MAIN_METER_MAP,
    SINGLE_PHASE_MAP,
    THREE_PHASE_MAP,
    plan_devices,
)
from simulators.layout import Meter, load_layout
from simulators.machines import UNITS
from simulators.run import build_source

START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday morning: machines run


@pytest.mark.parametrize("layout_name", ["tiny", "garment", "food", "fleet"])
def test_every_series_is_served_once_in_its_contract_unit(layout_name: str) -> None:
    layout = load_layout(layout_name)
    plan = plan_devices(layout)
    reported = {
        (line, machine.id, metric)
        for line, machine in layout.machines()
        for metric in machine.reported_metrics()
    }
    metered = [(m.line, m.machine, metric) for m in plan.meters for metric in m.metrics]
    nodes = [(n.line, n.machine, n.metric) for n in plan.nodes]
    assert len(metered) + len(nodes) == len(reported) == plan.series
    assert set(metered) | set(nodes) == reported
    assert not set(metered) & set(nodes)
    assert [m.unit_id for m in plan.meters] == list(range(1, len(plan.meters) + 1))
    for meter in plan.meters:
        registers = load_map(meter.map_name).registers
        for metric in meter.metrics:
            assert registers[metric].unit == UNITS[metric]
            assert plan.on_meter[(meter.line, meter.machine, metric)] == meter.unit_id
    for node in plan.nodes:
        assert node.unit == UNITS.get(node.metric)


def test_each_machine_gets_the_meter_a_pilot_would_fit() -> None:
    layout = load_layout("garment")
    plan = plan_devices(layout)
    fitted = {(m.line, m.machine): m.map_name for m in plan.meters}
    for line, machine in layout.machines():
        if (line, machine.id) not in fitted:
            continue
        if isinstance(machine, Meter):
            assert fitted[(line, machine.id)] == MAIN_METER_MAP
        elif machine.phases == 3:
            assert fitted[(line, machine.id)] == THREE_PHASE_MAP
        else:
            assert fitted[(line, machine.id)] == SINGLE_PHASE_MAP
    assert set(fitted.values()) == {MAIN_METER_MAP, THREE_PHASE_MAP, SINGLE_PHASE_MAP}


@pytest.mark.parametrize("layout_name", ["garment", "food"])
def test_every_simulated_value_fits_its_meter_register(layout_name: str) -> None:
    layout = load_layout(layout_name)
    plan = plan_devices(layout)
    meters = ModbusDeviceServer([(m.unit_id, m.map_name) for m in plan.meters])  # not started
    registers = {m.unit_id: load_map(m.map_name).registers for m in plan.meters}
    source, _truth = build_source(
        layout=layout_name, seed=3, start=START, days=2 / 24, realtime=False, truth_dir=None
    )
    checked = 0
    for sample in source.samples(threading.Event()):
        unit_id = plan.on_meter.get((sample.line, sample.machine, sample.metric))
        if unit_id is None:
            continue
        meters.set_value(unit_id, sample.metric, sample.value)  # raises if it does not fit
        held = meters.held(unit_id, sample.metric)
        register = registers[unit_id][sample.metric]
        # An integer register holds whole steps of its scale; a float32 about 7 digits.
        step = register.scale / 2 if register.data_type.startswith(("int", "uint")) else 0
        assert held == pytest.approx(sample.value, rel=1e-6, abs=step + 1e-9), sample
        checked += 1
    assert checked > 1000

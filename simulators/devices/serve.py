"""A simulated factory's field devices: meters on Modbus TCP, machines on OPC UA.

``tonle simulate --serve-devices`` runs here. The simulator runs in real time, and
instead of publishing its samples it writes them into device servers the way the
factory's hardware would hold them: each machine's electrical figures in the
registers of an energy meter (the main incomer as a Schneider PM5100, three-phase
machines behind an Eastron SDM630, single-phase ones behind an SDM120, all units of
one Modbus TCP gateway), everything else (state, counters, temperatures, vibration)
as variables of an OPC UA server. An edge configuration that reads them is written
beside, so ``tonle edge --config <workdir>/edge.yaml`` completes a pilot's
installation on one laptop: devices → edge → broker → ingest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from rich.console import Console

from edge.modbus.maps import RegisterMap, load_map
from simulators.devices.modbus_server import ModbusDeviceServer
from simulators.devices.opcua_server import OpcUaDeviceServer
from simulators.layout import Layout, MachineBase, Meter, load_layout
from simulators.machines import UNITS
from simulators.run import build_source
from tonle.errors import ConfigError

log = logging.getLogger(__name__)

MAIN_METER_MAP = "schneider-pm5100"
THREE_PHASE_MAP = "sdm630"
SINGLE_PHASE_MAP = "sdm120"
MAX_UNIT_ID = 247  # the highest unit id a Modbus serial line addresses


@dataclass(frozen=True)
class MeterPlan:
    """One simulated meter: a unit of the Modbus gateway measuring one machine."""

    unit_id: int
    map_name: str
    line: str
    machine: str
    metrics: tuple[str, ...]
    interval_s: float


@dataclass(frozen=True)
class NodePlan:
    """One OPC UA variable: a metric of a machine that no meter measures."""

    line: str
    machine: str
    metric: str
    unit: str | None


@dataclass(frozen=True)
class DevicePlan:
    """Where each of a layout's series is served."""

    site: str
    meters: tuple[MeterPlan, ...]
    nodes: tuple[NodePlan, ...]
    on_meter: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @property
    def series(self) -> int:
        """How many series the devices serve."""
        return sum(len(m.metrics) for m in self.meters) + len(self.nodes)


def map_units(register_map: RegisterMap) -> dict[str, str | None]:
    """The metrics a register map offers, with the unit of each after scaling."""
    return {metric: register.unit for metric, register in register_map.registers.items()}


def meter_map_for(machine: MachineBase) -> str:
    """The meter a pilot would fit on ``machine``."""
    if isinstance(machine, Meter):
        return MAIN_METER_MAP
    return THREE_PHASE_MAP if machine.phases == 3 else SINGLE_PHASE_MAP


def plan_devices(layout: Layout) -> DevicePlan:
    """Put every reported series of ``layout`` on a meter register or an OPC UA node.

    A metric goes to the machine's meter when the meter's map offers it in the
    contract's unit; the rest go to OPC UA.
    """
    maps: dict[str, dict[str, str | None]] = {}
    meters: list[MeterPlan] = []
    nodes: list[NodePlan] = []
    on_meter: dict[tuple[str, str, str], int] = {}
    for line, machine in layout.machines():
        map_name = meter_map_for(machine)
        if map_name not in maps:
            maps[map_name] = map_units(load_map(map_name))
        offered = maps[map_name]
        reported = machine.reported_metrics()
        metered = tuple(m for m in reported if m in offered and offered[m] == UNITS.get(m))
        if metered:
            unit_id = len(meters) + 1
            if unit_id > MAX_UNIT_ID:
                raise ConfigError(
                    f"layout {layout.site} has more than {MAX_UNIT_ID} metered machines;"
                    " one simulated Modbus gateway addresses at most that many"
                )
            meters.append(
                MeterPlan(unit_id, map_name, line, machine.id, metered, machine.interval_s)
            )
            on_meter.update({(line, machine.id, m): unit_id for m in metered})
        nodes.extend(
            NodePlan(line, machine.id, m, UNITS.get(m)) for m in reported if m not in metered
        )
    return DevicePlan(layout.site, tuple(meters), tuple(nodes), on_meter)


def edge_document(
    plan: DevicePlan,
    *,
    edge_id: str,
    mqtt_url: str,
    modbus_host: str,
    modbus_port: int,
    opcua: OpcUaDeviceServer,
    spool_path: Path,
) -> dict[str, Any]:
    """An edge configuration (as a YAML-ready dict) that reads the simulated devices."""
    sources: list[dict[str, Any]] = []
    if plan.meters:
        sources.append(
            {
                "type": "modbus",
                "name": "simulated-meters",
                "transport": "tcp",
                "host": modbus_host,
                "port": modbus_port,
                "interval_s": min(m.interval_s for m in plan.meters),
                "devices": [
                    {
                        "unit_id": m.unit_id,
                        "map": m.map_name,
                        "line": m.line,
                        "machine": m.machine,
                        "metrics": list(m.metrics),
                        "interval_s": m.interval_s,
                    }
                    for m in plan.meters
                ],
            }
        )
    if plan.nodes:
        sources.append(
            {
                "type": "opcua",
                "name": "simulated-machines",
                "url": opcua.url,
                "nodes": [
                    {
                        "node_id": opcua.node_id(n.line, n.machine, n.metric),
                        "line": n.line,
                        "machine": n.machine,
                        "metric": n.metric,
                        **({"unit": n.unit} if n.unit is not None else {}),
                    }
                    for n in plan.nodes
                ],
            }
        )
    return {
        "site": plan.site,
        "edge_id": edge_id,
        "broker": {"url": mqtt_url},
        "spool": {"path": str(spool_path.resolve())},
        "sources": sources,
    }


class DeviceFarm:
    """The servers of a simulated factory, fed by its simulator in real time.

    Args:
        layout: a packaged layout name or a layout YAML path.
        seed: the simulator's seed.
        host: the address both servers listen on.
        modbus_port: the Modbus TCP port; 0 picks a free one.
        opcua_port: the OPC UA port; 0 picks a free one.
    """

    def __init__(
        self,
        layout: str,
        seed: int = 1,
        host: str = "127.0.0.1",
        modbus_port: int = 0,
        opcua_port: int = 0,
    ) -> None:
        self.layout_name = layout
        self.plan = plan_devices(load_layout(layout))
        self.host = host
        self.samples_served = 0  # written by the feeding thread only
        self.failure: BaseException | None = None
        self._seed = seed
        self.modbus = ModbusDeviceServer(
            [(m.unit_id, m.map_name) for m in self.plan.meters], host=host, port=modbus_port
        )
        self.opcua = OpcUaDeviceServer(
            [(n.line, n.machine, n.metric, n.unit) for n in self.plan.nodes],
            host=host,
            port=opcua_port,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="device-farm", daemon=True)
        self._filled = threading.Event()

    def wait_filled(self, timeout_s: float) -> bool:
        """Wait until every meter register has held a simulated value (True), or time out.

        An edge that polls before then would read the registers' initial zeros.
        """
        return self._filled.wait(timeout_s)

    def start(self) -> DeviceFarm:
        """Start both servers, then the simulator that feeds them."""
        self.modbus.start()
        try:
            self.opcua.start()
        except BaseException:
            self.modbus.stop()
            raise
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the simulator, then the servers."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(10)
        self.opcua.stop()
        self.modbus.stop()

    def __enter__(self) -> DeviceFarm:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def edge_config(self, *, edge_id: str, mqtt_url: str, spool_path: Path) -> dict[str, Any]:
        """An edge configuration reading these servers."""
        return edge_document(
            self.plan,
            edge_id=edge_id,
            mqtt_url=mqtt_url,
            modbus_host=self.host,
            modbus_port=self.modbus.port,
            opcua=self.opcua,
            spool_path=spool_path,
        )

    def write_edge_config(
        self, path: Path, *, edge_id: str, mqtt_url: str, spool_path: Path
    ) -> Path:
        """Write :meth:`edge_config` as YAML to ``path``."""
        document = self.edge_config(edge_id=edge_id, mqtt_url=mqtt_url, spool_path=spool_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# The simulated devices of layout {self.layout_name}: "
            f"Modbus TCP on {self.host}:{self.modbus.port}, OPC UA at {self.opcua.url}.\n"
            f"# Written by `tonle simulate --serve-devices`; run: tonle edge --config {path}\n"
        )
        path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def _samples(self) -> Iterator[Any]:
        source, _truth = build_source(
            layout=self.layout_name,
            seed=self._seed,
            start=None,
            days=None,
            realtime=True,
            truth_dir=None,
        )
        return source.samples(self._stop)

    def _feed(self) -> None:
        on_meter = self.plan.on_meter
        unset = set(on_meter)
        if not unset:
            self._filled.set()
        try:
            for sample in self._samples():
                key = (sample.line, sample.machine, sample.metric)
                unit_id = on_meter.get(key)
                if unit_id is not None:
                    self.modbus.set_value(unit_id, sample.metric, sample.value)
                    if unset:
                        unset.discard(key)
                        if not unset:
                            self._filled.set()
                else:
                    self.opcua.update(
                        sample.line, sample.machine, sample.metric, sample.value, sample.ts
                    )
                self.samples_served += 1
        except Exception as exc:
            self.failure = exc
            log.exception("the simulated devices stopped being fed")


def serve_devices(
    *,
    layout: str,
    seed: int,
    edge_id: str,
    mqtt_url: str,
    workdir: Path,
    host: str,
    modbus_port: int,
    opcua_port: int,
    stop: threading.Event,
    console: Console,
) -> Path:
    """Serve a layout's devices until ``stop``; return the edge configuration written.

    Raises:
        tonle.errors.ConfigError: the layout is wrong, or a port is taken.
    """
    farm = DeviceFarm(layout, seed=seed, host=host, modbus_port=modbus_port, opcua_port=opcua_port)
    plan = farm.plan
    try:
        farm.start()
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host} ({exc.strerror or exc}); choose other ports with"
            " --modbus-port and --opcua-port"
        ) from None
    try:
        longest_s = max((m.interval_s for m in plan.meters), default=0.0)
        with console.status("waiting for the first simulated values"):
            farm.wait_filled(longest_s + 5.0)
        config_path = farm.write_edge_config(
            workdir / "edge.yaml",
            edge_id=edge_id,
            mqtt_url=mqtt_url,
            spool_path=workdir / "edge.spool",
        )
        console.print(
            f"{plan.site}: {len(plan.meters)} meters on Modbus TCP {host}:{farm.modbus.port}"
            f" (units 1-{len(plan.meters)}), {len(plan.nodes)} variables on OPC UA"
            f" {farm.opcua.url}",
            soft_wrap=True,
        )
        console.print(f"edge configuration: {config_path}", soft_wrap=True)
        console.print(f"read them with:  tonle edge --config {config_path}", soft_wrap=True)
        console.print("Ctrl-C to stop")
        while not stop.wait(1.0):
            if farm.failure is not None:
                raise farm.failure
        return config_path
    finally:
        farm.stop()
        console.print(f"served {farm.samples_served} simulated readings")

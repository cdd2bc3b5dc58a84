"""The Modbus source: polls the meters of one link with their register maps.

One link is one client (a TCP connection to a meter or gateway, or one serial port),
and its meters are polled one after another, as an RS-485 bus requires. Each meter
has its own interval; the link ticks on a jitter-free grid (:class:`Ticker`) at the
greatest common divisor of the intervals and polls each meter on its own multiple.

A poll reads a meter's planned requests; only when all of them succeed are its values
yielded, all with one timestamp. A failed poll yields nothing but, on a change of
state, the meter's ``device_online`` reading; the deadband of the meter's metrics is
forgotten, so the first values after the meter comes back are published.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from edge.config import ModbusDeviceConfig, ModbusSourceConfig
from edge.discipline import ChangeFilter, Ticker, rule_for
from edge.modbus.codec import CodecError, ReadRequest
from edge.modbus.maps import Register, decode_reads, load_map
from edge.sources import Sample

log = logging.getLogger(__name__)

ONLINE_METRIC = "device_online"
_GRID_RESOLUTION_MS = 10  # intervals are rounded to this before their common divisor


@dataclass
class ModbusStats:
    """What a Modbus source did, for its summary line and for tests."""

    polls: int = 0  # polls of a meter, successful or not
    failures: int = 0  # polls that failed
    reconnects: int = 0  # connections opened again after one was lost
    ticks_missed: int = 0  # grid ticks skipped because polling overran them
    suppressed: int = 0  # readings held back by a deadband
    requests: int = 0  # read requests sent


class PollError(Exception):
    """One poll of a meter failed; the message says why, for the log."""


@dataclass
class _Device:
    config: ModbusDeviceConfig
    registers: list[Register]
    plan: list[ReadRequest]
    every_ticks: int
    online: bool | None = None  # None until the first poll
    units: dict[str, str | None] = field(default_factory=dict)


class ModbusSource:
    """Readings of the meters on one Modbus link.

    Args:
        config: the link and its meters, from ``edge.yaml``. A poll of a silent meter
            takes up to ``timeout_s × (retries + 1)`` per request, which bounds how
            long :meth:`samples` takes to return after ``stop`` is set.
    """

    realtime = True

    def __init__(self, config: ModbusSourceConfig) -> None:
        self.config = config
        self.name = config.source_name()
        self.stats = ModbusStats()
        self._client: Any = None  # built on the first poll, in the source's thread
        self._ever_connected = False
        self._devices: list[_Device] = []
        intervals_ms = [
            max(_GRID_RESOLUTION_MS, round((d.interval_s or config.interval_s) * 1000))
            for d in config.devices
        ]
        self.tick_s = math.gcd(*intervals_ms) / 1000
        for device, interval_ms in zip(config.devices, intervals_ms, strict=True):
            register_map = load_map(device.map)
            registers = register_map.select(device.metrics)
            self._devices.append(
                _Device(
                    config=device,
                    registers=registers,
                    plan=register_map.plan(r.metric for r in registers),
                    every_ticks=round(interval_ms / (self.tick_s * 1000)),
                    units={r.metric: r.unit for r in registers},
                )
            )
        sampling = {(d.line, d.machine): d.sampling for d in config.devices}
        self._filter = ChangeFilter(
            lambda s: rule_for(sampling.get((s.line, s.machine), {}), s.metric)
        )

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        """Poll every meter on its interval until ``stop`` is set."""
        ticker = Ticker(self.tick_s)
        ticks = 0
        try:
            while ticker.wait(stop):
                index = ticks + ticker.missed  # the grid position of this tick
                ticks += 1
                for device in self._devices:
                    if stop.is_set():
                        return
                    if index % device.every_ticks == 0:
                        yield from self._poll(device, stop)
                self.stats.ticks_missed = ticker.missed
        finally:
            self.stats.ticks_missed = ticker.missed
            self.stats.suppressed = self._filter.suppressed
            self._close()
            s = self.stats
            log.info(
                "%s ended: %d polls, %d failed, %d requests, %d reconnects, "
                "%d ticks missed, %d readings held back by a deadband",
                self.name,
                s.polls,
                s.failures,
                s.requests,
                s.reconnects,
                s.ticks_missed,
                s.suppressed,
            )

    # ---------------------------------------------------------------- polling

    def _poll(self, device: _Device, stop: threading.Event) -> Iterator[Sample]:
        self.stats.polls += 1
        cfg = device.config
        try:
            values = self._read(device, stop)
        except PollError as exc:
            if stop.is_set():
                return  # a poll cut short by the stop is no news about the meter
            self.stats.failures += 1
            self._filter.forget(cfg.line, cfg.machine)
            if device.online is not False:
                log.warning(
                    "%s: meter %d (%s/%s) does not answer: %s",
                    self.name,
                    cfg.unit_id,
                    cfg.line,
                    cfg.machine,
                    exc,
                )
                device.online = False
                yield self._status(device, False)
            return
        now = _now()
        if device.online is not True:
            if device.online is False:
                log.warning(
                    "%s: meter %d (%s/%s) answers again",
                    self.name,
                    cfg.unit_id,
                    cfg.line,
                    cfg.machine,
                )
            device.online = True
            yield self._status(device, True, now)
        for metric, value in values.items():
            sample = Sample(cfg.line, cfg.machine, metric, now, value, device.units[metric])
            if self._filter.admit(sample):
                yield sample
        self.stats.suppressed = self._filter.suppressed

    def _read(self, device: _Device, stop: threading.Event) -> dict[str, float]:
        """Every planned request of a meter, decoded; PollError on the first failure."""
        client = self._connected_client()
        results: dict[ReadRequest, Sequence[int]] = {}
        unit_id = device.config.unit_id
        for request in device.plan:
            if stop.is_set():
                raise PollError("stopped")
            read = (
                client.read_holding_registers
                if request.function_code == 3
                else client.read_input_registers
            )
            self.stats.requests += 1
            try:
                response = read(request.address, count=request.count, device_id=unit_id)
            except ModbusException as exc:
                raise PollError(_first_line(str(exc))) from None
            except OSError as exc:
                self._close()
                raise PollError(f"link error: {exc}") from None
            except Exception as exc:  # noqa: BLE001 -- a meter must never stop the source
                # Garbled frames can surface from pymodbus's decoders as other errors;
                # start the next poll on a fresh connection.
                self._close()
                raise PollError(f"{type(exc).__name__}: {exc}") from None
            if response.isError():
                raise PollError(
                    f"exception response {getattr(response, 'exception_code', '?')} to "
                    f"function {request.function_code} at {request.address}+{request.count}"
                )
            registers = list(response.registers)
            if len(registers) != request.count:
                raise PollError(f"{len(registers)} registers in the answer, {request.count} asked")
            results[request] = registers
        try:
            return decode_reads(device.registers, results)
        except CodecError as exc:
            raise PollError(f"cannot decode: {exc}") from None

    def _connected_client(self) -> Any:
        client = self._client
        if client is None:
            client = self._client = self._make_client()
        if not client.connected:
            if not client.connect():
                raise PollError(f"cannot connect to {self._where()}")
            if self._ever_connected:
                self.stats.reconnects += 1
            self._ever_connected = True
        return client

    def _make_client(self) -> Any:
        cfg = self.config
        if cfg.transport == "rtu":
            assert cfg.serial_port is not None  # the config's validator guarantees it
            return ModbusSerialClient(
                cfg.serial_port,
                framer=FramerType.RTU,
                baudrate=cfg.baudrate,
                bytesize=cfg.bytesize,
                parity=cfg.parity,
                stopbits=cfg.stopbits,
                timeout=cfg.timeout_s,
                retries=cfg.retries,
                name=self.name,
            )
        assert cfg.host is not None  # likewise
        return ModbusTcpClient(
            cfg.host,
            port=cfg.port,
            framer=FramerType.RTU if cfg.transport == "rtu-over-tcp" else FramerType.SOCKET,
            timeout=cfg.timeout_s,
            retries=cfg.retries,
            name=self.name,
        )

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _where(self) -> str:
        cfg = self.config
        return str(cfg.serial_port) if cfg.transport == "rtu" else f"{cfg.host}:{cfg.port}"

    def _status(self, device: _Device, online: bool, now: datetime | None = None) -> Sample:
        cfg = device.config
        return Sample(cfg.line, cfg.machine, ONLINE_METRIC, now or _now(), 1.0 if online else 0.0)


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no answer"

"""Simulated Modbus meters: several unit ids served over Modbus TCP, RTU over TCP, or RTU.

Each meter's registers are encoded with the same register map and codec as the edge
reads them with (``edge.modbus``), so a value set here is the value the edge decodes.
pymodbus's asyncio server runs in a thread of its own with its own event loop; the
register image lives here, behind a lock, and is copied into each response, so
:meth:`ModbusDeviceServer.set_value` may be called from any thread and a reader never
sees half of a multi-register value.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Literal

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge.modbus.maps import Register, RegisterMap, load_map

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0
_HOLDING, _INPUT = 3, 4


class ModbusDeviceServer:
    """Serves simulated meters, one per unit id, each described by a register map.

    Args:
        devices: ``(unit_id, map_reference)`` pairs; a reference is a shipped map name
            or a map file path, as in the edge configuration.
        host: the address to listen on (TCP).
        port: the TCP port; 0 picks a free one, see :attr:`port` after :meth:`start`.
        framing: ``socket`` for Modbus TCP, ``rtu`` for RTU frames over TCP.
        serial_port: serve RTU on this serial device instead of TCP.
        baudrate, parity, stopbits, bytesize: the serial line's settings.
    """

    def __init__(
        self,
        devices: Sequence[tuple[int, str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        framing: Literal["socket", "rtu"] = "socket",
        serial_port: str | None = None,
        baudrate: int = 9600,
        parity: Literal["N", "E", "O"] = "N",
        stopbits: Literal[1, 2] = 1,
        bytesize: Literal[7, 8] = 8,
    ) -> None:
        if not devices:
            raise ValueError("a server needs at least one device")
        self.host = host
        self.port = port
        self.framing: Literal["socket", "rtu"] = "rtu" if serial_port else framing
        self.serial_port = serial_port
        self._serial: dict[str, Any] = {
            "baudrate": baudrate,
            "parity": parity,
            "stopbits": stopbits,
            "bytesize": bytesize,
        }
        self._maps: dict[int, RegisterMap] = {}
        for unit_id, reference in devices:
            if not 1 <= unit_id <= 247:
                raise ValueError(f"unit id {unit_id} is outside 1..247")
            if unit_id in self._maps:
                raise ValueError(f"unit id {unit_id} is given twice")
            self._maps[unit_id] = load_map(reference)
        self._lock = threading.Lock()
        # unit id → function code → address → register word
        self._image: dict[int, dict[int, dict[int, int]]] = {
            unit: {_HOLDING: {}, _INPUT: {}} for unit in self._maps
        }
        for unit, register_map in self._maps.items():
            for register in register_map.registers.values():
                self._store(unit, register, register.encode(0.0))
        self._requests: Counter[tuple[int, int]] = Counter()
        self._silent: set[int] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusBaseServer | None = None

    # ------------------------------------------------------------------ values

    def set_value(self, unit_id: int, metric: str, value: float) -> None:
        """Make meter ``unit_id`` show ``value`` for ``metric``; ValueError if it does not fit."""
        self.update(unit_id, {metric: value})

    def update(self, unit_id: int, values: Mapping[str, float]) -> None:
        """Set several metrics of one meter at once (a reader sees all or none of them)."""
        register_map = self._map(unit_id)
        encoded: list[tuple[Register, list[int]]] = []
        for metric, value in values.items():
            register = register_map.registers.get(metric)
            if register is None:
                raise KeyError(f"map {register_map.name} of unit {unit_id} has no {metric!r}")
            encoded.append((register, register.encode(value)))  # raises before any store
        with self._lock:
            for register, words in encoded:
                self._store(unit_id, register, words)

    def held(self, unit_id: int, metric: str) -> float:
        """The value meter ``unit_id`` shows for ``metric`` (after the type's rounding)."""
        register = self._map(unit_id).registers[metric]
        table = self._image[unit_id][register.function_code]
        with self._lock:
            words = [table[a] for a in range(register.address, register.address + register.count)]
        return register.decode(words)

    def requests(self, unit_id: int | None = None, function_code: int | None = None) -> int:
        """Read requests received so far, of one unit and function code or all."""
        with self._lock:
            return sum(
                n
                for (unit, code), n in self._requests.items()
                if unit_id in (None, unit) and function_code in (None, code)
            )

    def reset_requests(self) -> None:
        """Start counting requests from zero."""
        with self._lock:
            self._requests.clear()

    def stop_answering(self, unit_id: int | None = None) -> None:
        """Make a meter (every meter if None) silent, like one powered off on its bus."""
        with self._lock:
            self._silent.update(self._maps if unit_id is None else [self._known(unit_id)])

    def resume(self, unit_id: int | None = None) -> None:
        """Make a silent meter (every meter if None) answer again."""
        with self._lock:
            if unit_id is None:
                self._silent.clear()
            else:
                self._silent.discard(unit_id)

    # --------------------------------------------------------------- lifecycle

    def start(self) -> ModbusDeviceServer:
        """Start serving in a thread of its own; returns once the server listens."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name=f"modbus-device-server-{id(self):x}", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._serve(), loop)
        try:
            future.result(timeout=_START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_START_TIMEOUT_S)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(_START_TIMEOUT_S)
        loop.close()
        self._loop = self._thread = None
        self._server = None

    def __enter__(self) -> ModbusDeviceServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- internal

    def _map(self, unit_id: int) -> RegisterMap:
        return self._maps[self._known(unit_id)]

    def _known(self, unit_id: int) -> int:
        if unit_id not in self._maps:
            raise KeyError(f"no simulated meter has unit id {unit_id}")
        return unit_id

    def _store(self, unit_id: int, register: Register, words: list[int]) -> None:
        table = self._image[unit_id][register.function_code]
        for offset, word in enumerate(words):
            table[register.address + offset] = word

    def _sim_device(self, unit_id: int) -> SimDevice:
        """A pymodbus device whose readable ranges cover the map; values come from the image."""
        blocks: dict[int, list[SimData]] = {}
        for code in (_HOLDING, _INPUT):
            addresses = self._image[unit_id][code]
            if addresses:
                # The whole range answers, so reads that span unmapped gaps succeed,
                # as they do on the meters whose maps allow them.
                low, high = min(addresses), max(addresses)
                block = SimData(low, count=high - low + 1, values=0, datatype=DataType.REGISTERS)
            else:
                block = SimData(0, values=0, datatype=DataType.REGISTERS)
            blocks[code] = [block]
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        return SimDevice(
            unit_id,
            simdata=(bits, list(bits), blocks[_HOLDING], blocks[_INPUT]),
            action=functools.partial(self._on_request, unit_id),
        )

    async def _on_request(
        self,
        unit_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """Called by pymodbus for each request: count it and fill in the current values."""
        if set_values is not None or function_code not in (_HOLDING, _INPUT):
            return ExcCodes.ILLEGAL_FUNCTION  # a meter's measurements are read-only
        with self._lock:
            self._requests[(unit_id, function_code)] += 1
            table = self._image[unit_id][function_code]
            for i in range(count):
                registers[address - start_address + i] = table.get(address + i, 0)
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Drop the answers of a silent meter (called by pymodbus for every frame)."""
        if not sending or not data:
            return data
        # The unit id is the first byte of an RTU frame, the seventh of an MBAP frame.
        unit_id = data[0] if self.framing == "rtu" else data[6] if len(data) > 6 else -1
        with self._lock:
            silent = unit_id in self._silent
        return b"" if silent else data

    async def _serve(self) -> None:
        devices = [self._sim_device(unit) for unit in self._maps]
        server: ModbusBaseServer
        if self.serial_port:
            server = ModbusSerialServer(
                devices,
                framer=FramerType.RTU,
                port=self.serial_port,
                trace_packet=self._trace_packet,
                **self._serial,
            )
        else:
            server = ModbusTcpServer(
                devices,
                framer=FramerType.RTU if self.framing == "rtu" else FramerType.SOCKET,
                address=(self.host, self.port),
                trace_packet=self._trace_packet,
            )
        await server.serve_forever(background=True)
        self._server = server
        sockets = getattr(server.transport, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        log.info(
            "simulated Modbus meters %s on %s",
            sorted(self._maps),
            self.serial_port or f"{self.host}:{self.port}",
        )

    async def _shutdown(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it untyped
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

"""Modbus register codec and read planning: pure functions, no sockets.

A value of 32 or 64 bits spans two or four 16-bit registers. Meters disagree on two
orders, which are independent of each other:

* the byte order inside each register (``big``: the high byte first, as the Modbus
  specification says; ``little``: swapped), and
* the word order across registers (``big``: the most significant register first, at
  the lowest address; ``little``: the least significant first).

Big/big is what Eastron and Schneider use; the other three appear in the field and
are often called CDAB (word-swapped), BADC (byte-swapped) and DCBA.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

DataType = Literal["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
Order = Literal["big", "little"]
FunctionCode = Literal[3, 4]  # read holding registers, read input registers

DATA_TYPES: Final[tuple[str, ...]] = get_args(DataType)
# struct format (big-endian) and the number of registers of each type.
_FORMAT: Final[dict[str, tuple[str, int]]] = {
    "int16": (">h", 1),
    "uint16": (">H", 1),
    "int32": (">i", 2),
    "uint32": (">I", 2),
    "int64": (">q", 4),
    "uint64": (">Q", 4),
    "float32": (">f", 2),
    "float64": (">d", 4),
}
# The Modbus specification's limit for one read of holding or input registers.
MAX_REGISTERS_PER_READ: Final = 125


class CodecError(ValueError):
    """A value does not fit its register type, or registers do not make a value."""


def register_count(data_type: DataType) -> int:
    """How many 16-bit registers a value of ``data_type`` occupies."""
    return _FORMAT[data_type][1]


def integer_range(data_type: DataType) -> tuple[int, int] | None:
    """The smallest and largest integer of an integer type; None for a float type."""
    if data_type.startswith("float"):
        return None
    bits = 16 * register_count(data_type)
    if data_type.startswith("u"):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def encode(
    value: float, data_type: DataType, byte_order: Order = "big", word_order: Order = "big"
) -> list[int]:
    """The registers that hold ``value``; CodecError if it does not fit the type.

    Integer types take only integral values (round before calling); float32 takes any
    finite value within its range (rounded to the nearest float32), and NaN or ±inf.
    """
    fmt, _ = _FORMAT[data_type]
    limits = integer_range(data_type)
    if limits is not None:
        if isinstance(value, float) and not value.is_integer():
            raise CodecError(f"{value!r} is not an integer, as {data_type} needs")
        number: int | float = int(value)
        if not limits[0] <= number <= limits[1]:
            raise CodecError(f"{value!r} is outside {data_type} ({limits[0]}..{limits[1]})")
    else:
        number = float(value)
    try:
        raw = struct.pack(fmt, number)
    except (struct.error, OverflowError) as exc:
        raise CodecError(f"{value!r} does not fit {data_type}: {exc}") from None
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return _reorder(words, byte_order, word_order)


def decode(
    registers: Sequence[int],
    data_type: DataType,
    byte_order: Order = "big",
    word_order: Order = "big",
) -> int | float:
    """The value held by ``registers`` (exactly as many as the type occupies)."""
    fmt, count = _FORMAT[data_type]
    if len(registers) != count:
        raise CodecError(f"{data_type} needs {count} registers, got {len(registers)}")
    if any(not 0 <= r <= 0xFFFF for r in registers):
        raise CodecError(f"registers must be 16-bit values, got {list(registers)}")
    # The reordering is its own inverse: swapping twice restores the order.
    words = _reorder(list(registers), byte_order, word_order)
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    value: int | float = struct.unpack(fmt, raw)[0]
    return value


def _reorder(words: list[int], byte_order: Order, word_order: Order) -> list[int]:
    if word_order == "little":
        words = words[::-1]
    if byte_order == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    return words


def pf_from_four_quadrant(register_value: float) -> float:
    """A signed power factor (-1..1) from Schneider's four-quadrant float (-2..2).

    Schneider PM5000/PM2000 meters keep quadrant 2 in -2..-1 and quadrant 4 in 1..2,
    so a reading near ±1 never jumps between +1 and -1 as the load turns capacitive.
    """
    if math.isnan(register_value):
        return register_value
    if register_value > 1:
        return 2 - register_value
    if register_value < -1:
        return -2 - register_value
    return register_value


# ---------------------------------------------------------------------- planning


@dataclass(frozen=True, slots=True)
class Span:
    """Registers one value occupies: function code, first address and count."""

    function_code: FunctionCode
    address: int
    count: int

    @property
    def end(self) -> int:
        """The first address after the span."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One read request of a plan."""

    function_code: FunctionCode
    address: int
    count: int

    def covers(self, span: Span) -> bool:
        """True if ``span`` lies within this request."""
        return (
            span.function_code == self.function_code
            and self.address <= span.address
            and span.end <= self.address + self.count
        )


def plan_reads(
    spans: Iterable[Span], max_registers: int = MAX_REGISTERS_PER_READ, max_gap: int = 0
) -> list[ReadRequest]:
    """The fewest requests that read every span, in address order per function code.

    Spans of one function code are merged while the merged request stays within
    ``max_registers`` and the unread registers between two spans number at most
    ``max_gap`` (0: only adjacent spans merge). Greedy in address order, which is
    optimal for intervals on a line with these two limits.
    """
    if not 1 <= max_registers <= MAX_REGISTERS_PER_READ:
        raise ValueError(f"max_registers must be within 1..{MAX_REGISTERS_PER_READ}")
    if max_gap < 0:
        raise ValueError("max_gap must not be negative")
    ordered = sorted(set(spans), key=lambda s: (s.function_code, s.address, s.count))
    requests: list[ReadRequest] = []
    current: ReadRequest | None = None
    for span in ordered:
        if span.count > max_registers:
            raise ValueError(f"a value of {span.count} registers exceeds {max_registers}")
        if current is not None and span.function_code == current.function_code:
            current_end = current.address + current.count
            new_end = max(current_end, span.end)
            if span.address - current_end <= max_gap and new_end - current.address <= max_registers:
                current = ReadRequest(
                    current.function_code, current.address, new_end - current.address
                )
                continue
        if current is not None:
            requests.append(current)
        current = ReadRequest(span.function_code, span.address, span.count)
    if current is not None:
        requests.append(current)
    return requests

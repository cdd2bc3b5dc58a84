"""The register codec and read planning: known vectors, round trips, limits."""

from __future__ import annotations

import itertools
import math
import struct
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.modbus.codec import (
    CodecError,
    DataType,
    Order,
    ReadRequest,
    Span,
    decode,
    encode,
    integer_range,
    pf_from_four_quadrant,
    plan_reads,
    register_count,
)

TYPES: tuple[DataType, ...] = get_args(DataType)
ORDERS: tuple[Order, ...] = get_args(Order)
ORDER_PAIRS = [(b, w) for b in ORDERS for w in ORDERS]


def _values(data_type: DataType) -> st.SearchStrategy[int] | st.SearchStrategy[float]:
    limits = integer_range(data_type)
    if limits is not None:
        return st.integers(*limits)
    return st.floats(width=32 if data_type == "float32" else 64, allow_nan=False)


# -------------------------------------------------------------- known vectors


@pytest.mark.parametrize(
    ("byte_order", "word_order", "registers"),
    [
        ("big", "big", [0x4366, 0x8000]),  # ABCD, as Eastron and Schneider send it
        ("big", "little", [0x8000, 0x4366]),  # CDAB
        ("little", "big", [0x6643, 0x0080]),  # BADC
        ("little", "little", [0x0080, 0x6643]),  # DCBA
    ],
)
def test_float32_230_5_in_each_order(
    byte_order: Order, word_order: Order, registers: list[int]
) -> None:
    assert encode(230.5, "float32", byte_order, word_order) == registers
    assert decode(registers, "float32", byte_order, word_order) == 230.5


@pytest.mark.parametrize(
    ("value", "data_type", "registers"),
    [
        (-2, "int16", [0xFFFE]),
        (0xBEEF, "uint16", [0xBEEF]),
        (0x01020304, "int32", [0x0102, 0x0304]),
        (-1, "int32", [0xFFFF, 0xFFFF]),
        (4_000_000_000, "uint32", [0xEE6B, 0x2800]),
        (0x0102030405060708, "int64", [0x0102, 0x0304, 0x0506, 0x0708]),
        (2**64 - 1, "uint64", [0xFFFF] * 4),
        (1.0, "float64", [0x3FF0, 0, 0, 0]),
        (-0.1, "float64", [0xBFB9, 0x9999, 0x9999, 0x999A]),
    ],
)
def test_known_vectors_big_endian(value: float, data_type: DataType, registers: list[int]) -> None:
    assert encode(value, data_type) == registers
    assert decode(registers, data_type) == value


def test_int64_word_order_reverses_whole_words() -> None:
    assert encode(0x0102030405060708, "int64", "big", "little") == [0x0708, 0x0506, 0x0304, 0x0102]
    assert encode(0x0102030405060708, "int64", "little", "big") == [0x0201, 0x0403, 0x0605, 0x0807]


@pytest.mark.parametrize("data_type", TYPES)
def test_register_counts(data_type: DataType) -> None:
    assert (
        register_count(data_type) == struct.calcsize(">" + "hHiIqQfd"[TYPES.index(data_type)]) // 2
    )


# --------------------------------------------------------------- round trips


@pytest.mark.parametrize(("byte_order", "word_order"), ORDER_PAIRS)
@pytest.mark.parametrize("data_type", TYPES)
@settings(max_examples=60)  # × 32 type/order cases
@given(data=st.data())
def test_every_type_and_order_round_trips(
    data_type: DataType, byte_order: Order, word_order: Order, data: st.DataObject
) -> None:
    value = data.draw(_values(data_type))
    registers = encode(value, data_type, byte_order, word_order)
    assert len(registers) == register_count(data_type)
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode(registers, data_type, byte_order, word_order) == value


@pytest.mark.parametrize(("byte_order", "word_order"), ORDER_PAIRS)
@pytest.mark.parametrize("data_type", ["float32", "float64"])
def test_nan_and_infinity_survive(
    data_type: DataType, byte_order: Order, word_order: Order
) -> None:
    orders = (byte_order, word_order)
    assert math.isnan(decode(encode(math.nan, data_type, *orders), data_type, *orders))
    assert decode(encode(-math.inf, data_type, *orders), data_type, *orders) == -math.inf


@pytest.mark.parametrize(("byte_order", "word_order"), ORDER_PAIRS)
@given(registers=st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2))
def test_any_two_registers_decode_and_encode_back_as_uint32(
    byte_order: Order, word_order: Order, registers: list[int]
) -> None:
    value = decode(registers, "uint32", byte_order, word_order)
    assert encode(value, "uint32", byte_order, word_order) == registers


# -------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("value", "data_type"),
    [
        (32_768, "int16"),
        (-32_769, "int16"),
        (-1, "uint16"),
        (65_536, "uint16"),
        (2**31, "int32"),
        (2**32, "uint32"),
        (2**63, "int64"),
        (-1, "uint64"),
        (1.5, "int32"),
        (math.nan, "int16"),
        (1e39, "float32"),
    ],
)
def test_values_that_do_not_fit_raise(value: float, data_type: DataType) -> None:
    with pytest.raises(CodecError):
        encode(value, data_type)


def test_decode_needs_the_type_s_register_count_of_16_bit_words() -> None:
    with pytest.raises(CodecError, match="needs 2 registers"):
        decode([1], "float32")
    with pytest.raises(CodecError, match="16-bit"):
        decode([0x10000], "uint16")


@pytest.mark.parametrize(
    ("register", "pf"),
    [(0.9, 0.9), (-0.5, -0.5), (1.0, 1.0), (1.2, 0.8), (-1.2, -0.8), (2.0, 0.0), (-2.0, 0.0)],
)
def test_four_quadrant_power_factor(register: float, pf: float) -> None:
    assert pf_from_four_quadrant(register) == pytest.approx(pf)


# ------------------------------------------------------------------ planning


def test_adjacent_spans_merge_and_function_codes_stay_apart() -> None:
    spans = [Span(4, 0, 2), Span(4, 2, 2), Span(3, 2, 2), Span(4, 4, 4)]
    assert plan_reads(spans) == [ReadRequest(3, 2, 2), ReadRequest(4, 0, 8)]


def test_a_gap_merges_only_up_to_max_gap() -> None:
    spans = [Span(4, 0, 2), Span(4, 5, 2), Span(4, 12, 2)]
    assert plan_reads(spans, max_gap=0) == [
        ReadRequest(4, 0, 2),
        ReadRequest(4, 5, 2),
        ReadRequest(4, 12, 2),
    ]
    assert plan_reads(spans, max_gap=3) == [ReadRequest(4, 0, 7), ReadRequest(4, 12, 2)]
    assert plan_reads(spans, max_gap=5) == [ReadRequest(4, 0, 14)]


def test_max_registers_splits_a_long_run() -> None:
    spans = [Span(3, 2 * i, 2) for i in range(100)]  # 200 contiguous registers
    assert plan_reads(spans, max_registers=125) == [ReadRequest(3, 0, 124), ReadRequest(3, 124, 76)]
    assert plan_reads(spans, max_registers=80) == [
        ReadRequest(3, 0, 80),
        ReadRequest(3, 80, 80),
        ReadRequest(3, 160, 40),
    ]


def test_planning_limits() -> None:
    with pytest.raises(ValueError, match="max_registers"):
        plan_reads([Span(3, 0, 2)], max_registers=126)
    with pytest.raises(ValueError, match="exceeds"):
        plan_reads([Span(3, 0, 4)], max_registers=2)
    assert plan_reads([]) == []


@given(
    layout=st.lists(st.tuples(st.integers(0, 30), st.sampled_from([1, 2, 4])), min_size=1),
    max_registers=st.integers(4, 125),
    max_gap=st.integers(0, 20),
)
def test_every_span_is_read_within_the_limits(
    layout: list[tuple[int, int]], max_registers: int, max_gap: int
) -> None:
    spans, address = [], 0
    for gap, width in layout:  # values that do not overlap, as in a register map
        spans.append(Span(4, address + gap, width))
        address += gap + width
    plan = plan_reads(spans, max_registers=max_registers, max_gap=max_gap)
    assert all(any(r.covers(s) for r in plan) for s in spans)
    assert all(1 <= r.count <= max_registers for r in plan)
    assert [r.address for r in plan] == sorted(r.address for r in plan)
    # Requests never overlap, so no register is read twice in a poll.
    assert all(a.address + a.count <= b.address for a, b in itertools.pairwise(plan))

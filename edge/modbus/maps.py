"""Register maps: which registers of a meter hold which metric, loaded from YAML.

A map file names the document it follows and lists metrics, each with its 0-based
protocol address, function code, data type, byte and word order, scale and unit.
Keys under ``defaults`` apply to every register that does not set them::

    name: sdm120
    document: Eastron SDM120 Modbus protocol ...
    defaults: {function_code: 4, data_type: float32}
    registers:
      voltage: {address: 0, unit: V}
      energy: {address: 72, scale: 1000, unit: Wh}   # the meter counts kWh

A metric's value is ``decoded register value × scale`` (after the optional
``transform``); the simulated meters store ``value / scale`` the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.modbus.codec import (
    MAX_REGISTERS_PER_READ,
    CodecError,
    DataType,
    FunctionCode,
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
from tonle.contract import METRIC_PATTERN, METRIC_UNITS
from tonle.errors import ConfigError

SHIPPED_DIR: Final = Path(__file__).resolve().parents[1] / "maps"
_PHASE_SUFFIX = re.compile(r"_l[123]$")


def contract_unit(metric: str) -> tuple[bool, str | None]:
    """(known, unit): whether the contract fixes the metric's unit, and which unit."""
    base = _PHASE_SUFFIX.sub("", metric)
    if base in METRIC_UNITS:
        return True, METRIC_UNITS[base]
    return False, None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Register(_Model):
    """Where one metric lives in a meter and how its registers become a value."""

    metric: str = Field(pattern=METRIC_PATTERN, max_length=63)
    address: int = Field(ge=0, le=65_535, description="0-based protocol address")
    function_code: FunctionCode = Field(description="3 holding, 4 input registers")
    data_type: DataType
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = Field(default=1.0, description="value = decoded × scale")
    unit: str | None = None
    transform: Literal["pf_four_quadrant"] | None = Field(
        default=None, description="applied to the decoded value before the scale"
    )
    description: str | None = None

    @model_validator(mode="after")
    def _fits(self) -> Register:
        if self.address + self.count > 65_536:
            raise ValueError(f"{self.metric}: registers run past address 65535")
        if self.scale == 0 or not math.isfinite(self.scale):
            raise ValueError(f"{self.metric}: scale must be a finite, non-zero number")
        return self

    @property
    def count(self) -> int:
        """Registers the value occupies."""
        return register_count(self.data_type)

    @property
    def span(self) -> Span:
        """The registers of the value, for read planning."""
        return Span(self.function_code, self.address, self.count)

    def decode(self, registers: Sequence[int]) -> float:
        """The metric's value (in its unit) from the value's own registers."""
        raw = float(decode(registers, self.data_type, self.byte_order, self.word_order))
        if self.transform == "pf_four_quadrant":
            raw = pf_from_four_quadrant(raw)
        return raw * self.scale

    def encode(self, value: float) -> list[int]:
        """The registers a meter holding ``value`` shows; CodecError if it does not fit."""
        raw = value / self.scale
        # A four-quadrant PF register holds quadrants 1 and 3 (|PF| ≤ 1) as the PF
        # itself, so for those the stored value is the value.
        if self.transform == "pf_four_quadrant" and not abs(raw) <= 1:
            raise CodecError(f"{self.metric}: a power factor lies within -1..1, got {value}")
        if integer_range(self.data_type) is not None:
            if not math.isfinite(raw):
                raise CodecError(f"{self.metric}: {value} cannot be stored as {self.data_type}")
            raw = round(raw)
        return encode(raw, self.data_type, self.byte_order, self.word_order)


class RegisterMap(_Model):
    """A meter's register map: its metrics and how many registers one read may take."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    manufacturer: str | None = None
    model: str | None = None
    document: str = Field(min_length=1, description="the document the map follows")
    max_registers_per_request: int = Field(default=MAX_REGISTERS_PER_READ, ge=1, le=125)
    max_gap: int = Field(default=0, ge=0, description="unused registers a read may span")
    registers: dict[str, Register] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        """Fill every register from ``defaults`` and name it by its key."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        defaults = data.pop("defaults", None) or {}
        if not isinstance(defaults, Mapping):
            raise ValueError("defaults must be a mapping")
        registers = data.get("registers")
        if isinstance(registers, Mapping):
            filled: dict[str, Any] = {}
            for metric, spec in registers.items():
                if not isinstance(spec, Mapping):
                    raise ValueError(f"register {metric!r} must be a mapping")
                filled[str(metric)] = {**defaults, **spec, "metric": metric}
            data["registers"] = filled
        return data

    @model_validator(mode="after")
    def _consistent(self) -> RegisterMap:
        taken: dict[tuple[int, int], str] = {}
        for register in self.registers.values():
            known, unit = contract_unit(register.metric)
            if known and register.unit != unit:
                raise ValueError(
                    f"{register.metric}: the contract's unit is {unit!r}, not {register.unit!r}"
                )
            if register.count > self.max_registers_per_request:
                raise ValueError(f"{register.metric}: wider than max_registers_per_request")
            for address in range(register.address, register.address + register.count):
                other = taken.setdefault((register.function_code, address), register.metric)
                if other != register.metric:
                    raise ValueError(
                        f"{register.metric} overlaps {other} at function code "
                        f"{register.function_code}, address {address}"
                    )
        return self

    def select(self, metrics: Iterable[str] | None = None) -> list[Register]:
        """The registers of ``metrics`` (all if None); ConfigError naming an unknown one."""
        if metrics is None:
            return list(self.registers.values())
        wanted = list(metrics)
        unknown = [m for m in wanted if m not in self.registers]
        if unknown:
            raise ConfigError(
                f"map {self.name} has no metric {', '.join(unknown)}; "
                f"it has {', '.join(sorted(self.registers))}"
            )
        return [self.registers[m] for m in dict.fromkeys(wanted)]

    def plan(self, metrics: Iterable[str] | None = None) -> list[ReadRequest]:
        """The read requests that fetch ``metrics`` (all if None) in as few reads as allowed."""
        return plan_reads(
            (r.span for r in self.select(metrics)),
            max_registers=self.max_registers_per_request,
            max_gap=self.max_gap,
        )


def decode_reads(
    registers: Iterable[Register], results: Mapping[ReadRequest, Sequence[int]]
) -> dict[str, float]:
    """Each register's value from the words its plan's requests returned."""
    values: dict[str, float] = {}
    for register in registers:
        for request, words in results.items():
            if request.covers(register.span):
                start = register.address - request.address
                values[register.metric] = register.decode(words[start : start + register.count])
                break
        else:
            raise KeyError(f"no request read {register.metric}")
    return values


def load_map(reference: str) -> RegisterMap:
    """A shipped map by name (``sdm630``) or a map file by path; ConfigError if bad."""
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        path = Path(reference)
    else:
        path = SHIPPED_DIR / f"{reference}.yaml"
        if not path.is_file():
            shipped = sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml"))
            raise ConfigError(
                f"no shipped register map {reference!r}; shipped: {', '.join(shipped)}, "
                "or give the path of a map .yaml file"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"register map {path}: cannot read it ({exc.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"register map {path}: not valid YAML{where}") from None
    try:
        return RegisterMap.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            problems.append(f"  {where}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"register map {path}: invalid\n" + "\n".join(problems)) from None

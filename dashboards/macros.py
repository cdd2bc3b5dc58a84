"""Grafana's SQL macros and template variables, expanded as Grafana expands them.

Grafana turns a panel's SQL into a statement in two steps: the browser replaces
template variables (``$site``, ``$__interval``) and the PostgreSQL data source's backend
replaces macros (``$__timeFilter(ts)``). This module does both for the tests, so every
panel's SQL runs against a real database exactly as Grafana would send it.

Semantics follow Grafana's ``grafana-postgresql-datasource``: times are RFC 3339 in UTC
with trailing fractional zeros dropped; ``$__timeGroup`` is ``time_bucket`` where the
data source has TimescaleDB enabled and ``floor(extract(epoch …)/N)*N`` otherwise; a
variable that is multi-value or has "All" is quoted as a list of literals, a single-value
variable is inserted with its quotes doubled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tonle.errors import TonleError

_MACRO = re.compile(r"\$__([_a-zA-Z0-9]+)\(([^)]*)\)")
_INTERVAL = re.compile(r"^\s*'?(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)'?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# Longest names first, so that $__interval_ms is not read as $__interval followed by _ms.
_VARIABLE = re.compile(r"\$\{([a-zA-Z0-9_]+)\}|\$([a-zA-Z0-9_]+)")


class MacroError(TonleError):
    """A macro or variable Grafana would refuse (unknown, bad arguments, undefined)."""


@dataclass(frozen=True)
class Variable:
    """A template variable's selection: one value, or several (multi-value or "All")."""

    values: tuple[str, ...]
    multi: bool = False  # multi-value or include-all: Grafana quotes it as a list

    @classmethod
    def single(cls, value: str) -> Variable:
        """A single-value variable without "All" (inserted raw, quotes doubled)."""
        return cls((value,), multi=False)

    @classmethod
    def many(cls, values: Sequence[str]) -> Variable:
        """A multi-value or include-all variable with these values selected."""
        return cls(tuple(values), multi=True)


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel's query: the time range, interval, variables."""

    time_from: datetime
    time_to: datetime
    interval: timedelta
    variables: Mapping[str, Variable] = field(default_factory=dict)
    timescaledb: bool = False


def rfc3339(instant: datetime) -> str:
    """``instant`` in UTC as Go's RFC3339Nano writes it (no trailing fractional zeros)."""
    if instant.tzinfo is None:
        raise MacroError("times must be timezone-aware")
    utc = instant.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_interval(interval: timedelta) -> str:
    """An interval as Grafana writes ``$__interval``: the largest unit that divides it."""
    ms = round(interval.total_seconds() * 1000)
    if ms <= 0:
        raise MacroError(f"interval must be positive, got {interval}")
    for unit, size_ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size_ms == 0:
            return f"{ms // size_ms}{unit}"
    return f"{ms}ms"


def parse_interval(text: str) -> float:
    """Seconds in an interval argument such as ``1m``, ``'5m'`` or ``500ms``."""
    match = _INTERVAL.match(text)
    if match is None:
        raise MacroError(f"cannot read interval {text!r}; use e.g. 1m, 30s, 1h")
    return float(match[1]) * _UNIT_S[match[2]]


def _seconds(value: float) -> str:
    """Seconds as Go's %v prints a float64: no trailing .0."""
    return str(int(value)) if value == int(value) else repr(value)


def quote_literal(value: str) -> str:
    """A SQL string literal, as Grafana's SQL data sources quote variable values."""
    return "'" + value.replace("'", "''") + "'"


def interpolate(sql: str, context: QueryContext) -> str:
    """Replace ``$__interval``, ``$__interval_ms`` and template variables, as the browser does."""
    builtins = {
        "__interval": format_interval(context.interval),
        "__interval_ms": str(round(context.interval.total_seconds() * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name in builtins:
            return builtins[name]
        if name.startswith("__"):
            return match[0]  # a macro or a name Grafana fills later
        variable = context.variables.get(name)
        if variable is None:
            raise MacroError(f"variable ${name} is not defined")
        if variable.multi:
            return ",".join(quote_literal(v) for v in variable.values)
        return variable.values[0].replace("'", "''")

    return _VARIABLE.sub(replace, sql)


def _macro(name: str, args: list[str], context: QueryContext) -> str:
    """One macro's replacement (Grafana's postgres macro engine)."""
    start, end = context.time_from, context.time_to

    def need(count: int) -> None:
        if len(args) < count or any(not a for a in args[:count]):
            raise MacroError(f"$__{name} needs {count} argument(s), got {args}")

    if name == "time":
        need(1)
        return f'{args[0]} AS "time"'
    if name == "timeEpoch":
        need(1)
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "timeFilter":
        need(1)
        return f"{args[0]} BETWEEN '{rfc3339(start)}' AND '{rfc3339(end)}'"
    if name == "timeFrom":
        return f"'{rfc3339(start)}'"
    if name == "timeTo":
        return f"'{rfc3339(end)}'"
    if name in ("timeGroup", "timeGroupAlias"):
        need(2)
        seconds = parse_interval(args[1])
        if context.timescaledb:
            group = f"time_bucket('{seconds:.3f}s',{args[0]})"
        else:
            group = f"floor(extract(epoch from {args[0]})/{_seconds(seconds)})*{_seconds(seconds)}"
        return group + (' AS "time"' if name == "timeGroupAlias" else "")
    if name == "unixEpochFilter":
        need(1)
        return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
    if name == "unixEpochFrom":
        return str(int(start.timestamp()))
    if name == "unixEpochTo":
        return str(int(end.timestamp()))
    raise MacroError(f"unknown macro $__{name}")


def expand_macros(sql: str, context: QueryContext) -> str:
    """Replace the ``$__name(args)`` macros, as Grafana's PostgreSQL backend does."""

    def replace(match: re.Match[str]) -> str:
        args = [a.strip() for a in match[2].split(",")] if match[2].strip() else []
        return _macro(match[1], args, context)

    return _MACRO.sub(replace, sql)


def expand(sql: str, context: QueryContext) -> str:
    """A panel's SQL as PostgreSQL receives it from Grafana: variables, then macros."""
    return expand_macros(interpolate(sql, context), context)

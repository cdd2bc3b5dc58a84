"""Shared helpers for the simulator tests: run a layout, pick series, look up true states."""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml

from edge.sources import Sample
from simulators.layout import LAYOUT_DIR, Layout, load_layout, parse_layout
from simulators.source import SimulatorSource
from simulators.truth import Truth

# Phnom Penh is UTC+7 all year: these are local midnights.
MONDAY = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)  # Monday 2 March 2026, 00:00 local
SUNDAY = datetime(2026, 2, 28, 17, 0, tzinfo=UTC)  # Sunday 1 March 2026, 00:00 local


def run(
    layout: Layout | str, *, seed: int = 7, start: datetime = MONDAY, days: float = 1.0
) -> tuple[list[Sample], Truth]:
    """Backfill a layout and return every sample with the truth."""
    factory = load_layout(layout) if isinstance(layout, str) else layout
    source = SimulatorSource(factory, seed=seed, start=start, days=days)
    samples = list(source.samples(threading.Event()))
    return samples, source.truth


def layout_document(name: str) -> dict[str, Any]:
    """A packaged layout as a mutable mapping, to vary in a test."""
    document = yaml.safe_load((LAYOUT_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return copy.deepcopy(document)


def build(document: dict[str, Any]) -> Layout:
    """Validate a layout mapping."""
    return parse_layout(document)


def series(samples: list[Sample], machine: str, metric: str) -> list[tuple[datetime, float]]:
    """(ts, value) of one machine's metric, in order."""
    return [(s.ts, s.value) for s in samples if s.machine == machine and s.metric == metric]


def state_lookup(truth: Truth, line: str, machine: str) -> Callable[[datetime], str]:
    """A function giving the true state of a machine at any simulated time."""
    intervals = truth.states_of(line, machine)
    starts = [i.start for i in intervals]

    def state(ts: datetime) -> str:
        index = bisect.bisect_right(starts, ts) - 1
        assert index >= 0 and ts < intervals[index].end, f"{ts} outside the simulation"
        return intervals[index].state

    return state

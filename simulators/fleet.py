"""Months of condition data of a fleet of rotating machines, with what really happened to them.

:func:`simulate_fleet` runs the packaged ``fleet`` layout (its first ``machines``
machines, each sampled every ``sample_s``) the way :func:`simulators.hourly.hourly_site`
runs a site: the same models advanced on the same tick schedule as
:class:`simulators.source.SimulatorSource`, every value read with the same read
functions, so the readings are exactly those ``tonle simulate`` would store for the
layout from :func:`fleet_layout` with the same seed and start. It keeps, per machine,
one row per sample time of vibration, temperatures, power and current (NaN where the
condition sensors sent nothing, during a dropout), and from the truth the failures,
preventive maintenance, benign disturbances and the faults of the sensors themselves.

The fleet layout makes the test a fair one: a few machines can lose their lubricant and
seize within days of the first sign, services miss some faults in progress, and the
sensors are knocked, spike, stick and drop out, none of it in the maintenance log.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from simulators.hourly import with_sample_interval
from simulators.layout import (
    Compressor,
    Cycling,
    Layout,
    MachineBase,
    ProductionMachine,
    load_layout,
)
from simulators.machines import Channel, MachineModel
from simulators.site import Site
from simulators.source import build_models, first_tick_ms
from simulators.timebase import MS_PER_DAY, to_ms
from simulators.truth import Disturbance, Failure, Maintenance, SensorFault, Truth

FLEET_LAYOUT: Final = "fleet"
# Monday 5 January 2026, 00:00 in Phnom Penh (UTC+7).
DEFAULT_START: Final = datetime(2026, 1, 4, 17, 0, tzinfo=UTC)
FLEET_METRICS: Final = (
    "vibration_rms",
    "vibration_peak",
    "bearing_temp",
    "motor_temp",
    "active_power",
    "current",
)
EndedBy = Literal["failure", "maintenance", "end"]


@dataclass
class MachineHistory:
    """The readings of one machine, one row per sample time.

    ``metrics`` maps each of :data:`FLEET_METRICS` to float64 values aligned with
    ``ts_ms`` (int64 epoch milliseconds, increasing); NaN where the machine had no
    reading of that metric at that time. ``rated_power_w`` is the full-load draw (for
    a cycling machine its base draw plus every element), to normalise power to a load.
    """

    line: str
    machine: str
    kind: str
    rated_power_w: float
    ts_ms: npt.NDArray[np.int64]
    metrics: dict[str, npt.NDArray[np.float64]]


@dataclass
class Fleet:
    """A simulated fleet: each machine's readings and what really happened (UTC epoch ms).

    ``sensor_faults`` are faults of the condition sensors, not of the machines, one
    per metric they touched (see :mod:`simulators.truth`). ``open_degradations`` maps a
    machine to the onset of a degradation still in progress at ``end_ms`` (neither
    failed nor cut short by maintenance yet).
    """

    site: str
    start_ms: int
    end_ms: int
    machines: list[MachineHistory]
    failures: list[Failure]
    maintenance: list[Maintenance]
    disturbances: list[Disturbance]
    sensor_faults: list[SensorFault] = field(default_factory=list)
    open_degradations: dict[str, int] = field(default_factory=dict)

    def history(self, machine: str) -> MachineHistory:
        """One machine's readings by id; KeyError if the fleet has no such machine."""
        for history in self.machines:
            if history.machine == machine:
                return history
        raise KeyError(machine)

    def degradations(
        self, machine: str, *, include_open: bool = False
    ) -> list[tuple[int, int, EndedBy]]:
        """Degradation intervals of one machine: (onset, end, ``failure`` | ``maintenance``).

        An interval runs from the onset of a fault to the failure, or to the start of
        the preventive maintenance that cut it short; onsets may precede ``start_ms``.
        With ``include_open`` a degradation still in progress at the end is added as
        (onset, ``end_ms``, ``end``). Sorted by onset.
        """
        spans: list[tuple[int, int, EndedBy]] = [
            (to_ms(f.degradation_start), to_ms(f.failed_at), "failure")
            for f in self.failures
            if f.machine == machine
        ]
        spans.extend(
            (to_ms(m.degradation_start), to_ms(m.start), "maintenance")
            for m in self.maintenance
            if m.machine == machine and m.degradation_start is not None
        )
        if include_open and machine in self.open_degradations:
            spans.append((self.open_degradations[machine], self.end_ms, "end"))
        return sorted(spans)


class _NoStates(Truth):
    """A truth without state intervals: a fleet run has no use for them."""

    def record_state(self, line: str, machine: str, state: int, ts_ms: int) -> None:
        """Nothing: state intervals are not kept."""


def fleet_layout(*, machines: int = 12, sample_s: float = 600.0) -> Layout:
    """The packaged fleet layout cut to its first ``machines`` machines, sampled every ``sample_s``.

    Run with :class:`simulators.source.SimulatorSource` and the same seed and start, it
    yields the readings :func:`simulate_fleet` returns.

    Raises:
        ValueError: ``machines`` is not between 1 and the number the layout has.
    """
    layout = load_layout(FLEET_LAYOUT)
    available = sum(1 for _ in layout.machines())
    if not 1 <= machines <= available:
        raise ValueError(f"machines must be between 1 and {available}, got {machines}")
    lines = []
    left = machines
    for line in layout.lines:
        if left <= 0:
            break
        kept = line.machines[:left]
        left -= len(kept)
        lines.append(line.model_copy(update={"machines": kept}))
    return with_sample_interval(layout.model_copy(update={"lines": lines}), sample_s)


def rated_power_w(config: MachineBase) -> float:
    """A machine's full-load draw, W (a cycling machine's base plus every element)."""
    if isinstance(config, ProductionMachine | Compressor):
        return config.rated_power_w
    if isinstance(config, Cycling):
        return config.base_power_w + config.element_power_w * config.elements
    raise ValueError(f"machine {config.id} ({config.kind}) has no rated power")


class _Recorder:
    """Rows of one machine's readings, a new row at each new sample time."""

    def __init__(self) -> None:
        self.ts_ms: list[int] = []
        self.columns: list[list[float]] = [[] for _ in FLEET_METRICS]

    def add(self, ts_ms: int, slots: list[int], values: list[float]) -> None:
        if not self.ts_ms or self.ts_ms[-1] != ts_ms:
            self.ts_ms.append(ts_ms)
            for column in self.columns:
                column.append(math.nan)
        for slot, value in zip(slots, values, strict=True):
            if slot >= 0:
                self.columns[slot][-1] = value

    def history(self, line: str, model: MachineModel) -> MachineHistory:
        return MachineHistory(
            line=line,
            machine=model.id,
            kind=model.config.kind,
            rated_power_w=rated_power_w(model.config),
            ts_ms=np.asarray(self.ts_ms, dtype=np.int64),
            metrics={
                metric: np.asarray(column, dtype=np.float64)
                for metric, column in zip(FLEET_METRICS, self.columns, strict=True)
            },
        )


def simulate_fleet(
    *,
    seed: int,
    days: float,
    sample_s: float = 600.0,
    machines: int = 12,
    start: datetime | None = None,
) -> Fleet:
    """Simulate the fleet's first ``machines`` machines for ``days`` from ``start``.

    Args:
        seed: fixes every random draw; the same arguments give the same fleet.
        days: simulated days.
        sample_s: every machine's sample interval (main and condition channels), s.
        machines: how many of the fleet layout's machines, in layout order.
        start: first simulated instant, timezone-aware; default :data:`DEFAULT_START`.

    Raises:
        ValueError: ``days`` or ``sample_s`` is not positive, ``machines`` out of
            range, or ``start`` has no timezone.
    """
    if not days > 0:
        raise ValueError(f"days must be positive, got {days}")
    if not sample_s > 0:
        raise ValueError(f"sample_s must be positive, got {sample_s}")
    layout = fleet_layout(machines=machines, sample_s=sample_s)
    start_ms = to_ms(start if start is not None else DEFAULT_START)
    end_ms = start_ms + int(days * MS_PER_DAY)
    truth = _NoStates(layout.site)
    truth.begin(start_ms)
    site = Site(layout, seed, start_ms, truth)
    models = build_models(site)
    recorders = {id(model): _Recorder() for model in models if model.monitor is not None}

    channels: list[Channel] = []
    slots: list[list[int]] = []  # per channel, each series' column (-1: not kept)
    owners: list[_Recorder | None] = []
    for model in models:
        recorder = recorders.get(id(model))
        for channel in model.channels():
            channels.append(channel)
            slots.append(
                [
                    FLEET_METRICS.index(metric) if metric in FLEET_METRICS else -1
                    for metric, _, _ in channel.series
                ]
            )
            owners.append(recorder)
    gaps = [[math.nan] * len(series_slots) for series_slots in slots]
    heap = [
        (first_tick_ms(start_ms, c.interval_ms, c.phase_ms), c.rank * len(channels) + i, i)
        for i, c in enumerate(channels)
    ]
    heapq.heapify(heap)
    while heap:
        ts_ms, order, index = heap[0]
        if ts_ms >= end_ms:
            break
        channel = channels[index]
        heapq.heapreplace(heap, (ts_ms + channel.interval_ms, order, index))
        channel.tick(ts_ms)
        # Read every value as the sample stream does: some readings draw noise from the
        # machine's generator, and skipping them would change everything after. A tick
        # that empties the series sent nothing: its row stays NaN.
        series = channel.series
        values = [read() for _, _, read in series] if series else gaps[index]
        owner = owners[index]
        if owner is not None:
            owner.add(ts_ms, slots[index], values)
    site.finish(end_ms)

    open_degradations: dict[str, int] = {}
    for model in models:
        onset_ms = model.degrading_since(end_ms)
        if onset_ms is not None:
            open_degradations[model.id] = onset_ms
    return Fleet(
        site=layout.site,
        start_ms=start_ms,
        end_ms=end_ms,
        machines=[recorders[id(m)].history(m.line, m) for m in models if id(m) in recorders],
        failures=list(truth.failures),
        maintenance=list(truth.maintenance),
        disturbances=list(truth.disturbances),
        sensor_faults=list(truth.sensor_faults),
        open_degradations=open_degradations,
    )

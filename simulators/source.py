"""The simulator as an edge sensor source: a deterministic stream of samples from a layout.

Backfill (``realtime=False``) yields every sample from ``start`` for ``days`` simulated
days in timestamp order, as fast as it is consumed. Real time follows the wall clock
(times ``speed``), waiting with ``stop.wait`` between samples. The same layout, seed
and arguments give the same stream.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from edge.sources import Sample
from simulators.layout import (
    AmbientSensor,
    ColdRoom,
    Compressor,
    Cycling,
    Layout,
    MachineBase,
    Meter,
    Pasteuriser,
    ProductionMachine,
)
from simulators.machines import (
    Channel,
    CyclingModel,
    MachineModel,
    PasteuriserModel,
    ProductionModel,
)
from simulators.site import Site
from simulators.timebase import MS_PER_DAY, from_ms, to_ms
from simulators.truth import Truth
from simulators.utilities import AmbientModel, ColdRoomModel, CompressorModel, MeterModel

log = logging.getLogger(__name__)


def build_models(site: Site) -> list[MachineModel]:
    """One model per machine of the site's layout, in layout order (the meter last)."""
    loads: list[MachineModel] = []
    others: list[tuple[str, MachineBase]] = []
    for line, config in site.layout.machines():
        model: MachineModel
        if isinstance(config, Pasteuriser):
            model = PasteuriserModel(site, line, config)
        elif isinstance(config, ProductionMachine):
            model = ProductionModel(site, line, config)
        elif isinstance(config, Compressor):
            model = CompressorModel(site, line, config)
        elif isinstance(config, ColdRoom):
            model = ColdRoomModel(site, line, config)
        elif isinstance(config, Cycling):
            model = CyclingModel(site, line, config)
        else:
            others.append((line, config))
            continue
        loads.append(model)
    models = list(loads)
    for line, config in others:
        if isinstance(config, Meter):
            models.append(MeterModel(site, line, config, loads))
        elif isinstance(config, AmbientSensor):
            models.append(AmbientModel(site, line, config))
        else:  # pragma: no cover - the layout's union admits no other kind
            raise TypeError(f"no model for machine kind {type(config).__name__}")
    return models


def first_tick_ms(start_ms: int, interval_ms: int, phase_ms: int) -> int:
    """The first time at or after ``start_ms`` on the grid ``phase_ms + k * interval_ms``."""
    steps = -((phase_ms - start_ms) // interval_ms)  # ceiling division
    return phase_ms + steps * interval_ms


class SimulatorSource:
    """A simulated factory that yields :class:`edge.sources.Sample` objects.

    Args:
        layout: the factory to simulate.
        seed: fixes every random draw; the same seed and arguments give the same stream.
        start: first simulated instant (timezone-aware). Default: now in real time;
            in backfill, ``days`` before now (or now if ``days`` is None).
        days: simulated days to produce; None runs until ``stop`` is set.
        realtime: follow the wall clock instead of yielding as fast as consumed.
        truth: where the ground truth is recorded; a fresh one if None.
        speed: simulated seconds per wall-clock second in real time.
    """

    def __init__(
        self,
        layout: Layout,
        *,
        seed: int,
        start: datetime | None = None,
        days: float | None = None,
        realtime: bool = False,
        truth: Truth | None = None,
        speed: float = 1.0,
    ) -> None:
        if days is not None and not days > 0:
            raise ValueError(f"days must be positive, got {days}")
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        if start is not None and start.utcoffset() is None:
            raise ValueError("start must be timezone-aware, e.g. datetime(..., tzinfo=UTC)")
        if start is None and not realtime:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days or 0.0)
        self.layout = layout
        self.seed = seed
        self.days = days
        self.realtime = realtime
        self.speed = speed
        self.truth = truth if truth is not None else Truth(layout.site)
        self.name = f"simulator-{layout.site}"
        self._start = start
        self._used = False

    @property
    def site(self) -> str:
        """The site id every sample belongs to."""
        return self.layout.site

    @property
    def start(self) -> datetime | None:
        """The first simulated instant (None until a real-time run without a start begins)."""
        return self._start

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        """Yield samples until ``stop`` is set or the simulated days are done."""
        if self._used:
            raise RuntimeError("a SimulatorSource yields its samples once; build another to rerun")
        self._used = True
        if self._start is None:
            self._start = datetime.now(UTC)
        start_ms = to_ms(self._start)
        end_ms = start_ms + int(self.days * MS_PER_DAY) if self.days is not None else None
        truth = self.truth
        truth.begin(start_ms)
        site = Site(self.layout, self.seed, start_ms, truth)
        channels: list[Channel] = [c for m in build_models(site) for c in m.channels()]
        heap: list[tuple[int, int, int]] = []
        for index, channel in enumerate(channels):
            order = channel.rank * len(channels) + index
            heap.append(
                (first_tick_ms(start_ms, channel.interval_ms, channel.phase_ms), order, index)
            )
        heapq.heapify(heap)
        keys = [[(c.line, c.machine, metric) for metric, _, _ in c.series] for c in channels]
        emitted = truth.emitted
        for series_keys in keys:
            for key in series_keys:
                emitted.setdefault(key, 0)
        log.info(
            "simulating %s from %s for %s days (%s, seed %d, %d channels)",
            self.layout.site,
            from_ms(start_ms).isoformat(),
            "unlimited" if self.days is None else f"{self.days:g}",
            "real time" if self.realtime else "backfill",
            self.seed,
            len(channels),
        )
        wall_start = time.monotonic()
        last_ms: int | None = None
        finished = False
        try:
            while heap:
                ts_ms, order, index = heap[0]
                if end_ms is not None and ts_ms >= end_ms:
                    finished = True
                    break
                if self.realtime:
                    simulated_ms = start_ms + (time.monotonic() - wall_start) * 1000.0 * self.speed
                    wait_s = (ts_ms - simulated_ms) / 1000.0 / self.speed
                    if wait_s > 0.0 and stop.wait(wait_s):
                        break
                if stop.is_set():
                    break
                channel = channels[index]
                heapq.heapreplace(heap, (ts_ms + channel.interval_ms, order, index))
                channel.tick(ts_ms)
                last_ms = ts_ms
                if not channel.series:
                    continue
                ts = from_ms(ts_ms)
                line, machine = channel.line, channel.machine
                for key, (metric, unit, read) in zip(keys[index], channel.series, strict=True):
                    value = read()
                    emitted[key] += 1
                    yield Sample(line, machine, metric, ts, value, unit)
                    if stop.is_set():
                        break
        finally:
            if finished and end_ms is not None:
                close_ms = end_ms
            else:
                close_ms = start_ms if last_ms is None else last_ms + 1
            site.finish(close_ms)
            log.info(
                "simulation of %s ended at %s after %d samples",
                self.layout.site,
                from_ms(close_ms).isoformat(),
                truth.total_emitted,
            )

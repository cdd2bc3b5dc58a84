"""The public grid at the site's incomer: outages (the generator takes over after a delay) and sags.

Events are drawn lazily as time advances, so a real-time run can go on for ever.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from simulators.layout import Generator, GridModel
from simulators.timebase import MS_PER_DAY

DEAD: Final = 0
GRID: Final = 1
GENERATOR: Final = 2

_KEEP_MS = MS_PER_DAY  # callers may lag the newest time by up to their sample interval


@dataclass(frozen=True, slots=True)
class GridEvent:
    """An outage or a sag, in milliseconds; ``level`` is the voltage as a fraction of nominal."""

    kind: str  # "outage" or "sag"
    start_ms: int
    end_ms: int
    level: float
    generator_ms: int | None = None


class Grid:
    """Supply at the incomer: dead, grid or generator, and the grid voltage factor."""

    def __init__(
        self,
        config: GridModel,
        generator: Generator | None,
        rng: random.Random,
        start_ms: int,
    ) -> None:
        self._config = config
        self._generator = generator
        self._rng = rng
        self._rate_per_ms = (config.outage_rate_per_day + config.sag_rate_per_day) / MS_PER_DAY
        self._next_start_ms = start_ms + self._gap_ms()
        self._active: list[GridEvent] = []
        self.history: list[GridEvent] = []

    def _gap_ms(self) -> int:
        if self._rate_per_ms <= 0.0:
            return 2**62
        return int(self._rng.expovariate(self._rate_per_ms))

    def _draw(self) -> None:
        config, rng = self._config, self._rng
        start = self._next_start_ms
        total = config.outage_rate_per_day + config.sag_rate_per_day
        if rng.random() * total < config.outage_rate_per_day:
            duration_s = max(config.min_outage_s, rng.expovariate(1.0 / config.mean_outage_s))
            end = start + int(duration_s * 1000)
            generator_ms = None
            if self._generator is not None:
                candidate = start + int(self._generator.start_delay_s * 1000)
                generator_ms = candidate if candidate < end else None
            event = GridEvent("outage", start, end, 0.0, generator_ms)
        else:
            duration_s = max(1.0, rng.expovariate(1.0 / config.mean_sag_s))
            level = rng.uniform(*config.sag_depth)
            event = GridEvent("sag", start, start + int(duration_s * 1000), level)
        self._active.append(event)
        self.history.append(event)
        self._next_start_ms = event.end_ms + max(1000, self._gap_ms())

    def status(self, ts_ms: int) -> tuple[int, float]:
        """(supply, voltage factor of the grid) at ``ts_ms``: supply is DEAD, GRID or GENERATOR."""
        while self._next_start_ms <= ts_ms:
            self._draw()
        active = self._active
        if active and active[0].end_ms < ts_ms - _KEEP_MS:
            self._active = active = [e for e in active if e.end_ms >= ts_ms - _KEEP_MS]
        for event in active:
            if event.start_ms <= ts_ms < event.end_ms:
                if event.kind == "sag":
                    return GRID, event.level
                if event.generator_ms is not None and ts_ms >= event.generator_ms:
                    return GENERATOR, 1.0
                return DEAD, 0.0
        return GRID, 1.0

    def events_before(self, end_ms: int) -> list[GridEvent]:
        """Events that started before ``end_ms``."""
        return [e for e in self.history if e.start_ms < end_ms]

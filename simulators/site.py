"""What the machines of one site share: seeded randomness, shifts, climate, grid and the truth."""

from __future__ import annotations

import random

from simulators.climate import ClimateModel
from simulators.grid import Grid
from simulators.layout import Layout
from simulators.randomness import seeded
from simulators.schedule import Calendar, WorkCursor
from simulators.truth import Truth


class Site:
    """The shared models of a simulated site, built from its layout and a seed."""

    def __init__(self, layout: Layout, seed: int, start_ms: int, truth: Truth) -> None:
        self.layout = layout
        self.start_ms = start_ms
        self.truth = truth
        self._key = f"{seed}/{layout.site}"
        self.nominal_voltage_v = layout.electrical.nominal_voltage_v
        self.frequency_hz = layout.electrical.frequency_hz
        self.calendar = Calendar(layout.shifts, layout.timezone, layout.holidays, self._key)
        self.climate = ClimateModel(layout.climate, layout.timezone, self._key)
        self.grid = Grid(layout.grid, layout.generator, self.rng("grid"), start_ms)

    def rng(self, *parts: str) -> random.Random:
        """A random generator of its own for one part of the site, fixed by the seed."""
        return seeded("/".join((self._key, *parts)))

    def work_cursor(self) -> WorkCursor:
        """A fresh cursor over the site's working periods from the start."""
        return WorkCursor(self.calendar.periods(self.start_ms))

    def finish(self, end_ms: int) -> None:
        """Hand the grid events to the truth and close it at ``end_ms``."""
        self.grid.status(end_ms)  # draw every event that starts before the end
        for event in self.grid.events_before(end_ms):
            self.truth.record_outage(
                event.kind,
                event.start_ms,
                event.end_ms,
                event.level * self.nominal_voltage_v,
                event.generator_ms,
            )
        self.truth.finish(end_ms)

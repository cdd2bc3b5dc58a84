"""Entry point for the ``tonle simulate`` command and the edge agent's ``simulator`` source."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from simulators.layout import load_layout
from simulators.source import SimulatorSource
from simulators.truth import Truth


def build_source(
    layout: str,
    seed: int,
    start: datetime | None,
    days: float | None,
    realtime: bool,
    truth_dir: Path | None,
    speed: float = 1.0,
) -> tuple[SimulatorSource, Truth]:
    """A simulator source for a layout, and the truth it records (written to ``truth_dir``).

    Args:
        layout: a packaged layout name (``garment``, ``food``, ``tiny``, ``fleet``) or a YAML path.
        seed: the same seed and arguments give the same samples.
        start: first simulated instant, timezone-aware; None: now (real time) or
            ``days`` before now (backfill).
        days: simulated days to produce; None runs until stopped.
        realtime: follow the wall clock (times ``speed``) instead of backfilling.
        truth_dir: where ``states.csv``, ``failures.csv``, ``maintenance.csv``,
            ``disturbances.csv``, ``sensor_faults.csv``, ``outages.csv`` and
            ``emitted.csv`` are written when the run ends; None keeps them in memory only.
        speed: simulated seconds per wall-clock second in real time.

    Raises:
        tonle.errors.ConfigError: the layout cannot be found or is wrong.
        ValueError: an argument is out of range.
    """
    factory = load_layout(layout)
    truth = Truth(factory.site, directory=truth_dir)
    source = SimulatorSource(
        factory, seed=seed, start=start, days=days, realtime=realtime, truth=truth, speed=speed
    )
    return source, truth

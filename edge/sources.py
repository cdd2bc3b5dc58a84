"""What a sensor source hands the edge agent, and the protocol every source follows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one metric of one machine, as a source produced it.

    ``ts`` is timezone-aware UTC. ``line`` and ``machine`` follow the id rule of the
    contract; ``metric`` is snake_case.
    """

    line: str
    machine: str
    metric: str
    ts: datetime
    value: float
    unit: str | None = None


class Source(Protocol):
    """A producer of samples.

    The agent runs each source's :meth:`samples` in a thread of its own and puts what
    it yields on a bounded queue, so a source that yields faster than the pipeline
    publishes is slowed down (back-pressure) rather than allowed to lose data.
    A real-time source paces itself (sleeping with ``stop.wait``); a backfill source
    yields as fast as it is consumed and returns when its history is done.
    """

    name: str

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        """Yield samples until ``stop`` is set or the source is exhausted."""
        ...

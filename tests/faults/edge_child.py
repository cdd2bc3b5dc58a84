"""An edge agent process for the power-cut test: ``python -m tests.faults.edge_child``.

Arguments: CONFIG SAMPLED_LOG FIRST COUNT RATE_PER_S. It runs the agent of CONFIG with
a :class:`~tests.faults.streams.RampSource` of readings FIRST … FIRST + COUNT - 1 and,
before handing each reading to the agent, appends its index to SAMPLED_LOG with an
unbuffered write, so the file says exactly what was sampled even after a SIGKILL.
It exits once the source has ended and the broker has acknowledged everything, or on
SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.agent import EdgeAgent
from edge.config import load_config
from edge.sources import Sample
from tests.faults.streams import RampSource


@dataclass
class LoggedRamp:
    """A ramp that records each reading's index before the agent sees it."""

    ramp: RampSource
    fd: int
    name: str = "ramp"
    realtime: bool = True

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        i = self.ramp.first
        for sample in self.ramp.samples(stop):
            os.write(self.fd, b"%d\n" % i)
            yield sample
            i += 1


def main(argv: list[str]) -> int:
    """Run the agent until its source is done and delivered, or until SIGTERM."""
    config_path, log_path, first, count, rate = argv
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    source = LoggedRamp(RampSource(int(count), float(rate), first=int(first)), fd)
    agent = EdgeAgent(load_config(Path(config_path)), sources=[source]).start()
    try:
        while not stop.wait(0.1):
            if agent.failure is not None:
                return 1
            if agent.sources_done and agent.drained:
                logging.getLogger(__name__).info("source done and delivered")
                return 0
    finally:
        agent.stop(timeout_s=30)
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

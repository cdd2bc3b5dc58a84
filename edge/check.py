"""``tonle edge --check``: read every configured device for a while and show what it says.

For the installer at the cabinet: wiring, unit ids, baud rates, node ids and logins
are confirmed without a broker, a spool or anything else of the pipeline. Each source
runs as it would in the agent; the latest reading of every series is kept, and a
device that reported ``device_online = 0`` (or never answered) makes the check fail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.sources import Sample, Source

STATUS_METRIC = "device_online"


@dataclass
class CheckResult:
    """What the sources said during a check."""

    latest: dict[tuple[str, str, str], Sample] = field(default_factory=dict)
    readings: int = 0
    failed_sources: list[str] = field(default_factory=list)

    def machines(self) -> list[tuple[str, str]]:
        """Every (line, machine) heard of, in order."""
        return sorted({(line, machine) for line, machine, _ in self.latest})

    def offline(self) -> list[tuple[str, str]]:
        """Machines whose device last reported itself offline."""
        return [
            (line, machine)
            for (line, machine, metric), sample in sorted(self.latest.items())
            if metric == STATUS_METRIC and sample.value == 0.0
        ]

    @property
    def ok(self) -> bool:
        """True if something was read, nothing is offline and no source failed."""
        return bool(self.readings) and not self.offline() and not self.failed_sources


def run_check(sources: Sequence[Source], seconds: float) -> CheckResult:
    """Run ``sources`` for ``seconds`` (each in a thread of its own) and collect what they yield."""
    result = CheckResult()
    lock = threading.Lock()
    stop = threading.Event()

    def drain(source: Source) -> None:
        try:
            for sample in source.samples(stop):
                with lock:
                    result.latest[(sample.line, sample.machine, sample.metric)] = sample
                    result.readings += 1
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - reported, like the agent reports it
            with lock:
                result.failed_sources.append(f"{source.name}: {exc}")

    threads = [
        threading.Thread(target=drain, args=(s,), name=f"check-{s.name}", daemon=True)
        for s in sources
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(10)
    return result

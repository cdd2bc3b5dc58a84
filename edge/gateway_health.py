"""The gateway's own health as a source: CPU temperature, load, free memory and spool disk.

Published like any machine, on line ``gateway`` (configurable) with the edge id as the
machine, so a hot or full gateway shows up on the same dashboards as the factory.
Each figure is read separately; one that this system does not offer is left out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from edge.sources import Sample

log = logging.getLogger(__name__)

THERMAL_ROOT = Path("/sys/class/thermal")
MEMINFO = Path("/proc/meminfo")
_BYTES_PER_MB = 1024 * 1024


def parse_thermal_c(text: str) -> float:
    """A ``/sys/class/thermal/thermal_zone*/temp`` reading (millidegrees) in °C."""
    return int(text.strip()) / 1000.0


def parse_mem_available_mb(text: str) -> float | None:
    """``MemAvailable`` from ``/proc/meminfo`` in MiB, or None if the kernel lacks it."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            return int(fields[1]) / 1024.0  # the kernel reports kB
    return None


class GatewayHealthSource:
    """Samples the gateway's health every ``interval_s`` seconds.

    Args:
        line: the line id the readings go on.
        machine: the machine id, usually the edge id.
        interval_s: time between samples.
        spool_dir: the directory whose free disk space is reported.
        thermal_root: where the thermal zones live (a test passes a fake tree).
        meminfo: the meminfo file (likewise).
    """

    name = "system"
    realtime = True

    def __init__(
        self,
        line: str,
        machine: str,
        interval_s: float,
        spool_dir: Path,
        thermal_root: Path = THERMAL_ROOT,
        meminfo: Path = MEMINFO,
    ) -> None:
        self.line = line
        self.machine = machine
        self.interval_s = interval_s
        self.spool_dir = spool_dir
        self.thermal_root = thermal_root
        self.meminfo = meminfo

    def read(self, now: datetime) -> list[Sample]:
        """One sample of each figure this system offers, stamped ``now``."""
        figures: list[tuple[str, float, str | None]] = []
        cpu_c = self._cpu_temp_c()
        if cpu_c is not None:
            figures.append(("cpu_temp", cpu_c, "°C"))
        with contextlib.suppress(OSError):  # not every platform has a load average
            figures.append(("load_1m", os.getloadavg()[0], None))
        try:
            free_b = shutil.disk_usage(self.spool_dir).free
            figures.append(("spool_free_mb", round(free_b / _BYTES_PER_MB, 1), "MB"))
        except OSError as exc:
            log.debug("no free-disk figure for %s: %s", self.spool_dir, exc)
        try:
            mem_mb = parse_mem_available_mb(self.meminfo.read_text(encoding="ascii"))
        except (OSError, ValueError, IndexError):
            mem_mb = None
        if mem_mb is not None:
            figures.append(("mem_free_mb", round(mem_mb, 1), "MB"))
        return [Sample(self.line, self.machine, m, now, v, u) for m, v, u in figures]

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        """Yield a round of figures every interval until ``stop`` is set."""
        while not stop.is_set():
            yield from self.read(datetime.now(UTC))
            stop.wait(self.interval_s)

    def _cpu_temp_c(self) -> float | None:
        # The first zone is the SoC on the Raspberry Pi and most small ARM boards.
        for zone in sorted(self.thermal_root.glob("thermal_zone*")):
            try:
                return parse_thermal_c((zone / "temp").read_text(encoding="ascii"))
            except (OSError, ValueError):
                continue
        return None

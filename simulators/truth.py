"""Ground truth of a simulation: states, failures, maintenance, disturbances, sensor faults, grid
events, samples.

Analytics are scored against it and pipeline tests compare the stored readings with it.
The same records are kept in memory (:class:`Truth`) and, when a directory is given,
written as CSV files when the simulation ends:

``states.csv``        site,line,machine,state,start,end      (intervals, end exclusive)
``failures.csv``      site,line,machine,kind,degradation_start,failed_at,repaired_at
``maintenance.csv``   site,line,machine,start,end,degradation_start
``disturbances.csv``  site,line,machine,start,end,factor
``sensor_faults.csv`` site,line,machine,metric,kind,start,end,factor
``outages.csv``       site,kind,start,end,min_voltage,generator_start   (kind: outage | sag)
``emitted.csv``       site,line,machine,metric,count      (every series, zero counts too)

Timestamps are ISO 8601 UTC with milliseconds. A state change is recorded at the tick of
the machine's main channel that observed it, so intervals align with its samples.
Preventive maintenance is recorded when it starts; ``degradation_start`` is empty unless
it cut short a degradation in progress, which then never became a failure (a maintenance
that missed a degradation records none: the failure that follows carries its onset). A
benign disturbance (vibration × ``factor`` for a while, not a fault) is recorded when the
machine's condition channel first ticks after it started; a repair, a maintenance or a
disturbance may end after the simulation does.

A sensor fault is a fault of a condition sensor, not of the machine, recorded like a
disturbance, one row per metric it touched (``kind``: see :data:`SENSOR_FAULT_KINDS`).
A ``gain_step`` multiplies the vibration readings by ``factor`` from ``start`` on and
has no end; a ``spike`` burst multiplies each vibration reading within it by 3–10 or so;
while ``stuck`` the readings repeat the last ones sent before it; during a ``dropout``
there are no readings (no samples, NaN in a fleet's arrays). ``factor`` is empty but for
gain steps.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from simulators.timebase import from_ms

log = logging.getLogger(__name__)

STATE_NAMES: Final = ("off", "idle", "running", "fault")
SensorFaultKind = Literal["gain_step", "spike", "stuck", "dropout"]
SENSOR_FAULT_KINDS: Final[tuple[SensorFaultKind, ...]] = ("gain_step", "spike", "stuck", "dropout")
OFF: Final = 0
IDLE: Final = 1
RUNNING: Final = 2
FAULT: Final = 3


def iso(ts: datetime | None) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, or an empty string for None."""
    if ts is None:
        return ""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StateInterval:
    """A machine was in ``state`` (off, idle, running, fault) from ``start`` until ``end``."""

    line: str
    machine: str
    state: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Failure:
    """A machine wore out: signs from ``degradation_start``, failure at ``failed_at``."""

    line: str
    machine: str
    kind: str
    degradation_start: datetime
    failed_at: datetime
    repaired_at: datetime


@dataclass(frozen=True, slots=True)
class Maintenance:
    """Preventive maintenance stopped a machine from ``start`` to ``end`` and renewed it.

    ``degradation_start`` is the onset of the degradation it cut short, None if the
    machine was still healthy.
    """

    line: str
    machine: str
    start: datetime
    end: datetime
    degradation_start: datetime | None


@dataclass(frozen=True, slots=True)
class Disturbance:
    """A benign disturbance raised a machine's vibration × ``factor`` from ``start`` to ``end``."""

    line: str
    machine: str
    start: datetime
    end: datetime
    factor: float


@dataclass(frozen=True, slots=True)
class SensorFault:
    """A condition sensor misreported ``metric`` from ``start`` to ``end`` (None: for good).

    ``factor`` is a gain step's factor on the readings, None for the other kinds.
    """

    line: str
    machine: str
    metric: str
    kind: SensorFaultKind
    start: datetime
    end: datetime | None
    factor: float | None = None


@dataclass(frozen=True, slots=True)
class Outage:
    """A grid outage or sag; ``generator_start`` is when the generator took the load."""

    kind: str
    start: datetime
    end: datetime
    min_voltage: float
    generator_start: datetime | None = None


class Truth:
    """What really happened in a simulation, in memory and optionally as CSV in ``directory``."""

    def __init__(self, site: str, directory: Path | None = None) -> None:
        self.site = site
        self.directory = directory
        self.states: list[StateInterval] = []
        self.failures: list[Failure] = []
        self.maintenance: list[Maintenance] = []
        self.disturbances: list[Disturbance] = []
        self.sensor_faults: list[SensorFault] = []
        self.outages: list[Outage] = []
        self.emitted: dict[tuple[str, str, str], int] = {}
        self.start: datetime | None = None
        self.end: datetime | None = None
        self._open: dict[tuple[str, str], tuple[int, int]] = {}
        self._start_ms: int | None = None

    @property
    def total_emitted(self) -> int:
        """How many samples the simulator yielded, over all series."""
        return sum(self.emitted.values())

    @property
    def finished(self) -> bool:
        """Whether the simulation has ended and the records are complete."""
        return self.end is not None

    # -- recording (called by the simulator) --------------------------------------

    def record_state(self, line: str, machine: str, state: int, ts_ms: int) -> None:
        """A machine entered ``state`` at ``ts_ms``; closes its previous interval."""
        key = (line, machine)
        previous = self._open.get(key)
        if previous is None and self._start_ms is not None:
            ts_ms = min(ts_ms, self._start_ms)  # the first state holds from the start
        elif previous is not None:
            old_state, since = previous
            if old_state == state:
                return
            if ts_ms > since:
                self.states.append(
                    StateInterval(
                        line, machine, STATE_NAMES[old_state], from_ms(since), from_ms(ts_ms)
                    )
                )
        self._open[key] = (state, ts_ms)

    def record_failure(
        self, line: str, machine: str, kind: str, onset_ms: int, failed_ms: int, repaired_ms: int
    ) -> None:
        """A machine failed after degrading since ``onset_ms``; repaired at ``repaired_ms``."""
        self.failures.append(
            Failure(
                line, machine, kind, from_ms(onset_ms), from_ms(failed_ms), from_ms(repaired_ms)
            )
        )

    def record_maintenance(
        self, line: str, machine: str, start_ms: int, end_ms: int, onset_ms: int | None
    ) -> None:
        """Preventive maintenance; ``onset_ms`` of the degradation it cut short, if any."""
        onset = from_ms(onset_ms) if onset_ms is not None else None
        self.maintenance.append(
            Maintenance(line, machine, from_ms(start_ms), from_ms(end_ms), onset)
        )

    def record_disturbance(
        self, line: str, machine: str, start_ms: int, end_ms: int, factor: float
    ) -> None:
        """A benign disturbance of a machine's vibration."""
        self.disturbances.append(
            Disturbance(line, machine, from_ms(start_ms), from_ms(end_ms), factor)
        )

    def record_sensor_fault(
        self,
        line: str,
        machine: str,
        metric: str,
        kind: SensorFaultKind,
        start_ms: int,
        end_ms: int | None,
        factor: float | None = None,
    ) -> None:
        """A fault of the sensor of one metric of a machine; ``end_ms`` None if it lasts."""
        end = from_ms(end_ms) if end_ms is not None else None
        self.sensor_faults.append(
            SensorFault(line, machine, metric, kind, from_ms(start_ms), end, factor)
        )

    def record_outage(
        self, kind: str, start_ms: int, end_ms: int, min_voltage: float, generator_ms: int | None
    ) -> None:
        """A grid event."""
        generator = from_ms(generator_ms) if generator_ms is not None else None
        self.outages.append(
            Outage(kind, from_ms(start_ms), from_ms(end_ms), min_voltage, generator)
        )

    def begin(self, start_ms: int) -> None:
        """The simulation starts at ``start_ms``."""
        self.start = from_ms(start_ms)
        self._start_ms = start_ms

    def finish(self, end_ms: int) -> None:
        """Close every open interval at ``end_ms``; write the CSV files if a directory is set."""
        for (line, machine), (state, since) in sorted(self._open.items()):
            if end_ms > since:
                self.states.append(
                    StateInterval(
                        line, machine, STATE_NAMES[state], from_ms(since), from_ms(end_ms)
                    )
                )
        self._open.clear()
        self.states.sort(key=lambda s: (s.start, s.line, s.machine))
        self.end = from_ms(end_ms)
        if self.directory is not None:
            self.write_csv(self.directory)

    # -- reading ------------------------------------------------------------------

    def states_of(self, line: str, machine: str) -> list[StateInterval]:
        """The state intervals of one machine, in time order."""
        return [s for s in self.states if s.line == line and s.machine == machine]

    def state_at(self, line: str, machine: str, ts: datetime) -> str | None:
        """The state of a machine at ``ts``, or None outside the simulated time."""
        for interval in self.states:
            if (
                interval.line == line
                and interval.machine == machine
                and interval.start <= ts < interval.end
            ):
                return interval.state
        return None

    def write_csv(self, directory: Path) -> None:
        """Write the CSV files listed in the module docstring into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        site = self.site
        _write(
            directory / "states.csv",
            ("site", "line", "machine", "state", "start", "end"),
            [(site, s.line, s.machine, s.state, iso(s.start), iso(s.end)) for s in self.states],
        )
        _write(
            directory / "failures.csv",
            ("site", "line", "machine", "kind", "degradation_start", "failed_at", "repaired_at"),
            [
                (
                    site,
                    f.line,
                    f.machine,
                    f.kind,
                    iso(f.degradation_start),
                    iso(f.failed_at),
                    iso(f.repaired_at),
                )
                for f in self.failures
            ],
        )
        _write(
            directory / "maintenance.csv",
            ("site", "line", "machine", "start", "end", "degradation_start"),
            [
                (site, m.line, m.machine, iso(m.start), iso(m.end), iso(m.degradation_start))
                for m in self.maintenance
            ],
        )
        _write(
            directory / "disturbances.csv",
            ("site", "line", "machine", "start", "end", "factor"),
            [
                (site, d.line, d.machine, iso(d.start), iso(d.end), f"{d.factor:.3f}")
                for d in self.disturbances
            ],
        )
        _write(
            directory / "sensor_faults.csv",
            ("site", "line", "machine", "metric", "kind", "start", "end", "factor"),
            [
                (
                    site,
                    f.line,
                    f.machine,
                    f.metric,
                    f.kind,
                    iso(f.start),
                    iso(f.end),
                    "" if f.factor is None else f"{f.factor:.4f}",
                )
                for f in self.sensor_faults
            ],
        )
        _write(
            directory / "outages.csv",
            ("site", "kind", "start", "end", "min_voltage", "generator_start"),
            [
                (
                    site,
                    o.kind,
                    iso(o.start),
                    iso(o.end),
                    f"{o.min_voltage:.1f}",
                    iso(o.generator_start),
                )
                for o in self.outages
            ],
        )
        _write(
            directory / "emitted.csv",
            ("site", "line", "machine", "metric", "count"),
            [(site, *key, str(count)) for key, count in sorted(self.emitted.items())],
        )
        log.info("wrote ground truth of %s to %s", site, directory)


def _write(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)

"""A simulated factory fed through an in-process edge agent: what ``tonle simulate`` runs.

Simulated data takes the same path as real data: simulator → edge agent (batching,
spool) → MQTT broker. A backfill shows a progress bar over simulated time and ends
once every reading has been acknowledged by the broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edge.agent import EdgeAgent
from edge.config import EdgeConfig, parse_config
from edge.sources import Sample
from simulators.run import build_source
from simulators.source import SimulatorSource
from simulators.truth import Truth

log = logging.getLogger(__name__)


class _Watched:
    """A source wrapper that remembers the latest simulated instant, for progress."""

    def __init__(self, source: SimulatorSource) -> None:
        self.inner = source
        self.name = source.name
        self.realtime = source.realtime
        self.latest: datetime | None = None

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        """The wrapped source's samples, unchanged."""
        for sample in self.inner.samples(stop):
            self.latest = sample.ts
            yield sample


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation run emitted and delivered."""

    site: str
    edge_id: str
    samples: int
    acknowledged_readings: int
    messages: int
    seconds: float
    truth: Truth

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return {
            "site": self.site,
            "edge": self.edge_id,
            "samples": self.samples,
            "acknowledged_readings": self.acknowledged_readings,
            "messages": self.messages,
            "seconds": round(self.seconds, 2),
        }


def simulation_config(
    site: str, edge_id: str, mqtt_url: str, spool_path: Path, *, protocol: str = "5"
) -> EdgeConfig:
    """An edge configuration for a simulated gateway publishing to ``mqtt_url``."""
    return parse_config(
        {
            "site": site,
            "edge_id": edge_id,
            "broker": {"url": mqtt_url, "protocol": protocol},
            "spool": {"path": str(spool_path.resolve()), "synchronous": "normal"},
            "publish": {"drain_timeout_s": 10},
            "sources": [{"type": "simulator"}],  # replaced by the source passed in
        },
        source="tonle simulate",
    )


def run_simulation(
    *,
    mqtt_url: str,
    layout: str,
    seed: int,
    days: float | None,
    start: datetime | None,
    truth_dir: Path | None,
    edge_id: str,
    spool_path: Path,
    stop: threading.Event,
    console: Console,
    protocol: str = "5",
) -> SimulationResult:
    """Run the simulator through an edge agent until the backfill is delivered or ``stop``."""
    realtime = days is None
    if start is None and days is not None:
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight - timedelta(days=days)
    source, truth = build_source(
        layout=layout, seed=seed, start=start, days=days, realtime=realtime, truth_dir=truth_dir
    )
    watched = _Watched(source)
    spool_path.parent.mkdir(parents=True, exist_ok=True)
    config = simulation_config(source.site, edge_id, mqtt_url, spool_path, protocol=protocol)
    agent = EdgeAgent(config, sources=[watched])
    began = time.monotonic()
    agent.start()
    try:
        if realtime:
            console.print(f"simulating {layout} ({source.site}) in real time; Ctrl-C to stop")
            while not stop.wait(1.0) and agent.failure is None:
                pass
        else:
            assert start is not None and days is not None
            _backfill_progress(agent, watched, start, days, stop, console)
    finally:
        stats = agent.stop(timeout_s=30)
    if agent.failure is not None:
        raise agent.failure
    return SimulationResult(
        site=source.site,
        edge_id=edge_id,
        samples=truth.total_emitted,
        acknowledged_readings=stats.acked_readings,
        messages=stats.acked,
        seconds=time.monotonic() - began,
        truth=truth,
    )


def _backfill_progress(
    agent: EdgeAgent,
    watched: _Watched,
    start: datetime,
    days: float,
    stop: threading.Event,
    console: Console,
) -> None:
    total_s = days * 86_400
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[at]}"),
        TextColumn("{task.fields[readings]} readings acknowledged"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("backfill", total=total_s, at="", readings=0)
        while not stop.wait(0.25):
            if agent.failure is not None:
                return
            latest = watched.latest
            done_s = (latest - start).total_seconds() if latest else 0.0
            progress.update(
                task,
                completed=min(done_s, total_s),
                at=latest.strftime("%Y-%m-%d %H:%M") if latest else "",
                readings=agent.stats.acked_readings,
            )
            if agent.sources_done and agent.drained:
                progress.update(task, completed=total_s, readings=agent.stats.acked_readings)
                return

"""One demo pilot's data feed, in a process of its own: simulator → edge agent → broker.

The feed backfills from a given instant up to now (again and again, until it has caught
up with the wall clock), waits until the broker has acknowledged every reading, then,
if asked, keeps simulating in real time from where the backfill ended. It reports its
progress through shared counters, so the demo can draw one progress bar for every site.
Each pilot runs in its own process so two sites simulate on two cores.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.agent import EdgeAgent
from edge.config import EdgeConfig, parse_config
from edge.sources import Sample
from simulators.layout import Intervention, Layout, load_layout
from simulators.source import SimulatorSource
from simulators.timebase import MS_PER_DAY, from_ms, to_ms
from simulators.truth import Truth

CATCH_UP_S = 15.0  # a backfill is repeated until it ends this close to now
PROGRESS_EVERY = 2_000  # samples between updates of the shared progress counter
READINGS_PER_MESSAGE = 500  # larger messages than a gateway's default: fewer round trips

# Phases, in the order a feed goes through them.
BACKFILLING, DELIVERED, LIVE, STOPPED, FAILED = 0, 1, 2, 3, -1


@dataclass(frozen=True)
class FeedPlan:
    """What one feed simulates and where it sends it (plain values: it crosses processes)."""

    layout: str
    site: str
    seed: int
    start_ms: int
    live: bool
    mqtt_url: str
    protocol: str
    edge_id: str
    spool_path: str
    truth_dir: str
    intervention: dict[str, Any] | None


class FeedState:
    """Counters and flags shared between a feed process and the demo."""

    def __init__(self, ctx: Any) -> None:
        self.phase = ctx.Value("i", BACKFILLING, lock=False)
        self.latest_ms = ctx.Value("q", 0, lock=False)
        self.acked = ctx.Value("q", 0, lock=False)
        self.emitted = ctx.Value("q", 0, lock=False)
        self.end_ms = ctx.Value("q", 0, lock=False)
        self.live_acked = ctx.Value("q", 0, lock=False)
        # A flag, not a multiprocessing Event: setting an Event whose waiter has exited
        # blocks for ever.
        self.stop = ctx.Value("b", 0, lock=False)
        self.errors: mp.Queue[str] = ctx.Queue()


def pilot_layout(name: str, intervention: dict[str, Any] | None) -> Layout:
    """A packaged layout with the pilot's intervention set."""
    layout = load_layout(name)
    if intervention is None:
        return layout
    return layout.model_copy(update={"intervention": Intervention.model_validate(intervention)})


def _config(plan: FeedPlan) -> EdgeConfig:
    return parse_config(
        {
            "site": plan.site,
            "edge_id": plan.edge_id,
            "broker": {"url": plan.mqtt_url, "protocol": plan.protocol},
            "spool": {"path": plan.spool_path, "synchronous": "normal"},
            "batch": {"max_readings": READINGS_PER_MESSAGE},
            "publish": {"drain_timeout_s": 20},
            "sources": [{"type": "simulator"}],  # replaced by the source passed in
        },
        source="tonle demo",
    )


class _CatchUp:
    """Backfill sources one after another, each from where the last ended up to now."""

    realtime = False

    def __init__(self, plan: FeedPlan, layout: Layout, state: FeedState) -> None:
        self.name = f"demo-{plan.site}"
        self.plan = plan
        self.layout = layout
        self.state = state
        self.end_ms = plan.start_ms
        self.emitted = 0

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        """Every sample from the plan's start up to (nearly) now."""
        latest = self.state.latest_ms
        while not stop.is_set():
            now_ms = to_ms(datetime.now(UTC))
            if now_ms - self.end_ms < CATCH_UP_S * 1000:
                return
            start = from_ms(self.end_ms)
            truth_dir = Path(self.plan.truth_dir) / start.strftime("%Y%m%dT%H%M%S")
            truth = Truth(self.layout.site, directory=truth_dir)
            source = SimulatorSource(
                self.layout,
                seed=self.plan.seed,
                start=start,
                days=(now_ms - self.end_ms) / MS_PER_DAY,
                truth=truth,
            )
            for count, sample in enumerate(source.samples(stop), 1):
                if count % PROGRESS_EVERY == 0:
                    latest.value = to_ms(sample.ts)
                yield sample
            self.emitted += truth.total_emitted
            if stop.is_set():
                return
            self.end_ms = now_ms
            latest.value = now_ms


def run_feed(plan: FeedPlan, state: FeedState) -> None:
    """The feed process: backfill, report, then stream live until ``state.stop``."""
    # Ctrl-C reaches every process of the terminal's group; the demo stops us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    parent = os.getppid()

    def relay() -> None:
        while not stop.wait(0.2):
            # Stop when told, or when the demo is gone (killed without a chance to tell us).
            if state.stop.value or os.getppid() != parent:
                stop.set()

    threading.Thread(target=relay, name="demo-stop-relay", daemon=True).start()
    try:
        layout = pilot_layout(plan.layout, plan.intervention)
        Path(plan.spool_path).parent.mkdir(parents=True, exist_ok=True)
        catch_up = _CatchUp(plan, layout, state)
        agent = EdgeAgent(_config(plan), sources=[catch_up]).start()
        try:
            while not stop.wait(0.25):
                if agent.failure is not None:
                    raise agent.failure
                state.acked.value = agent.stats.acked_readings
                if agent.sources_done and agent.drained:
                    break
        finally:
            stats = agent.stop(timeout_s=30)
        state.acked.value = stats.acked_readings
        if agent.failure is not None:
            raise agent.failure
        if stop.is_set():
            state.phase.value = STOPPED
            return
        state.emitted.value = catch_up.emitted
        state.end_ms.value = catch_up.end_ms
        state.phase.value = DELIVERED
        if plan.live:
            _live(plan, layout, state, stop, catch_up.end_ms)
        state.phase.value = STOPPED
    except Exception as exc:  # noqa: BLE001 - reported to the demo, which says what failed
        state.errors.put(f"{plan.site}: {exc}")
        state.phase.value = FAILED


def _live(
    plan: FeedPlan, layout: Layout, state: FeedState, stop: threading.Event, start_ms: int
) -> None:
    source = SimulatorSource(
        layout,
        seed=plan.seed,
        start=from_ms(start_ms),
        realtime=True,
        truth=Truth(layout.site, directory=Path(plan.truth_dir) / "live"),
    )
    config = _config(plan).model_copy(
        update={"batch": _config(plan).batch.model_copy(update={"max_readings": 50})}
    )
    agent = EdgeAgent(config, sources=[source]).start()
    state.phase.value = LIVE
    try:
        while not stop.wait(0.5):
            if agent.failure is not None:
                raise agent.failure
            state.live_acked.value = agent.stats.acked_readings
            state.latest_ms.value = to_ms(datetime.now(UTC))
    finally:
        stats = agent.stop(timeout_s=30)
        state.live_acked.value = stats.acked_readings

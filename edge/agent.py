"""The edge agent: sources → bounded queue → batcher → spool → publisher → broker.

Threads: one per source (:mod:`edge.sampling`), one batcher loop (here), one
publisher (:mod:`edge.publisher`) and paho's network thread. Each stage is bounded,
so a fast backfill source is slowed to the pace of the broker, while a real-time
source keeps sampling into the spool when the broker is away.
"""

from __future__ import annotations

import functools
import importlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge.batching import Batch, Batcher
from edge.config import (
    EdgeConfig,
    ModbusSourceConfig,
    OpcUaSourceConfig,
    SimulatorSourceConfig,
    SystemSourceConfig,
)
from edge.gateway_health import GatewayHealthSource
from edge.mqtt import LinkOptions, MqttLink
from edge.publisher import Publisher
from edge.sampling import SourceRunner
from edge.sources import Sample, Source
from edge.spool import Spool
from tonle.errors import ConfigError, StoreError, TonleError

log = logging.getLogger(__name__)

QUEUE_SAMPLES = 20_000  # the bounded queue between the sources and the batcher
GROUP_SAMPLES = 5_000  # samples taken per batcher round, so appends commit in groups
PROGRESS_INTERVAL_S = 60.0
_REJECT_LOG_INTERVAL_S = 60.0
_BYTES_PER_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AgentStats:
    """What the agent has done since it started.

    Counts are of messages unless named ``readings_``. ``acked`` includes the
    messages the broker refused (``rejected_messages``, MQTT 5 only), which are
    logged and not retried. ``unrouted_messages`` counts PUBACKs that said no
    subscriber took the message; those stay in the spool and are sent again.
    ``pending`` is what waits in the spool, in flight
    included; ``dropped_*`` count what the full spool discarded, over its lifetime.
    """

    readings_sampled: int
    readings_rejected: int
    spooled: int
    spooled_readings: int
    published: int
    buffered_published: int
    acked: int
    acked_readings: int
    rejected_messages: int
    unrouted_messages: int
    pending: int
    inflight: int
    dropped_messages: int
    dropped_readings: int
    connected: bool
    connects: int


def build_sources(config: EdgeConfig) -> list[tuple[Source, bool]]:
    """The sources a configuration names, each with whether it runs in real time.

    The simulator package is imported here, and only for a ``simulator`` source; the
    Modbus and OPC UA libraries only for sources of their kind.
    """
    sources: list[tuple[Source, bool]] = []
    for spec in config.sources:
        if isinstance(spec, SimulatorSourceConfig):
            try:
                simulators = importlib.import_module("simulators.run")
            except ModuleNotFoundError as exc:
                raise ConfigError(
                    f"a source of type simulator needs the simulators package ({exc})"
                ) from None
            source, _truth = simulators.build_source(
                layout=spec.layout,
                seed=spec.seed,
                start=spec.start,
                days=spec.days,
                realtime=spec.realtime,
                truth_dir=spec.truth_dir,
            )
            sources.append((source, spec.realtime))
        elif isinstance(spec, SystemSourceConfig):
            health = GatewayHealthSource(
                line=spec.line,
                machine=config.edge_id,
                interval_s=spec.interval_s,
                spool_dir=config.spool.path.parent,
            )
            sources.append((health, True))
        elif isinstance(spec, ModbusSourceConfig):
            from edge.modbus.source import ModbusSource

            sources.append((ModbusSource(spec), True))
        elif isinstance(spec, OpcUaSourceConfig):
            from edge.opcua import OpcUaSource

            sources.append((OpcUaSource(spec), True))
    return sources


class EdgeAgent:
    """One edge gateway's pipeline, driven in-process by the command, the demo and tests.

    Args:
        config: the validated ``edge.yaml``.
        sources: sources to run instead of those the configuration names; a source
            with a false ``realtime`` attribute is treated as a backfill.
        queue_samples: the bound of the queue between the sources and the batcher.
    """

    def __init__(
        self,
        config: EdgeConfig,
        sources: Sequence[Source] | None = None,
        queue_samples: int = QUEUE_SAMPLES,
    ) -> None:
        self.config = config
        self._given_sources = list(sources) if sources is not None else None
        self._queue: queue.Queue[Sample] = queue.Queue(maxsize=queue_samples)
        self._stop_sources = threading.Event()
        self._sources_stopped = threading.Event()
        self._runners: list[SourceRunner] = []
        self._spool: Spool | None = None
        self._publisher: Publisher | None = None
        self._pipeline = threading.Thread(
            target=self._run_pipeline, name="edge-batcher", daemon=True
        )
        self._pipeline_failure: TonleError | None = None
        self._started = False
        self._stopped = False
        # Written by the batcher thread only.
        self._taken = 0
        self._unspooled = 0
        self._rejected = 0
        self._spooled = 0
        self._spooled_readings = 0
        self._last_reject_log_s = -_REJECT_LOG_INTERVAL_S
        self._final_stats: AgentStats | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> EdgeAgent:
        """Open the spool, start connecting, start the batcher and the sources."""
        if self._started:
            raise RuntimeError("an EdgeAgent starts once")
        self._started = True
        config = self.config
        if self._given_sources is not None:
            sources = [(s, bool(getattr(s, "realtime", True))) for s in self._given_sources]
        else:
            sources = build_sources(config)
        spool = Spool(
            config.spool.path,
            max_bytes=int(config.spool.max_mb * _BYTES_PER_MB),
            synchronous=config.spool.synchronous,
        )
        self._spool = spool
        try:
            events: queue.SimpleQueue[Any] = queue.SimpleQueue()
            link = MqttLink(LinkOptions.from_config(config), events)
            publisher = Publisher(
                spool,
                link,
                events,
                edge_id=config.edge_id,
                max_inflight=config.publish.max_inflight,
                high_water_messages=config.publish.high_water_messages,
                keep_unrouted=config.publish.keep_unrouted,
                unrouted_retry_max_s=config.publish.unrouted_retry_max_s,
            )
        except BaseException:
            spool.close()
            raise
        self._publisher = publisher
        publisher.start()
        self._pipeline.start()
        for source, realtime in sources:
            runner = SourceRunner(
                source,
                self._queue,
                self._stop_sources,
                paused=functools.partial(publisher.over_high_water, realtime),
            )
            self._runners.append(runner)
            runner.start()
        log.info("edge %s of site %s running %d sources", config.edge_id, config.site, len(sources))
        return self

    def stop(self, timeout_s: float = 10.0) -> AgentStats:
        """Stop sources, spool what they produced, publish what time allows, go offline."""
        if not self._started or self._stopped:
            return self.stats
        self._stopped = True
        deadline_s = time.monotonic() + timeout_s
        self._stop_sources.set()
        for runner in self._runners:
            if not runner.join(max(0.1, deadline_s - time.monotonic())):
                log.warning("source %s did not stop in time", runner.source.name)
        self._sources_stopped.set()
        if self._pipeline.ident is not None:
            self._pipeline.join(max(0.1, deadline_s - time.monotonic()))
        publisher = self._publisher
        if publisher is not None:
            drain_s = min(self.config.publish.drain_timeout_s, deadline_s - time.monotonic())
            publisher.close(time.monotonic() + max(0.0, drain_s))
        stats = self.stats
        self._final_stats = stats
        if self._spool is not None:
            self._spool.close()
        log.info(
            "edge stopped: %d messages published (%d readings acknowledged), %d left in the spool",
            stats.published,
            stats.acked_readings,
            stats.pending,
        )
        return stats

    def wait_drained(self, timeout_s: float) -> bool:
        """Wait until everything sampled so far is acknowledged by the broker; False on timeout."""
        deadline_s = time.monotonic() + timeout_s
        while not self.drained:
            if time.monotonic() >= deadline_s or self.failure is not None:
                return False
            time.sleep(0.01)
        return True

    def wait_sources_done(self, timeout_s: float) -> bool:
        """Wait until every source has ended (finite sources only); False on timeout."""
        deadline_s = time.monotonic() + timeout_s
        return all(r.join(max(0.0, deadline_s - time.monotonic())) for r in self._runners)

    # ------------------------------------------------------------------ state

    @property
    def drained(self) -> bool:
        """True if no sample is queued, batching, or waiting in the spool for its ack."""
        # Read in the reverse of the order the batcher writes them.
        sampled = sum(r.samples_queued for r in self._runners)
        taken = self._taken
        unspooled = self._unspooled
        pending = self._spool.messages if self._spool is not None else 0
        return sampled == taken and unspooled == 0 and pending == 0

    @property
    def sources_done(self) -> bool:
        """True once every source has ended."""
        return all(r.done for r in self._runners)

    @property
    def failed_sources(self) -> list[str]:
        """The names of the sources that stopped on an error."""
        return [r.source.name for r in self._runners if r.failed]

    @property
    def failure(self) -> TonleError | None:
        """Why the agent cannot go on (bad credentials, a spool that cannot be written)."""
        if self._pipeline_failure is not None:
            return self._pipeline_failure
        return self._publisher.failure if self._publisher is not None else None

    @property
    def stats(self) -> AgentStats:
        """A snapshot of the counters."""
        if self._final_stats is not None:
            return self._final_stats
        publisher = self._publisher
        spool = self._spool
        counts = spool.counts() if spool is not None else None
        return AgentStats(
            readings_sampled=sum(r.samples_queued for r in self._runners),
            readings_rejected=self._rejected,
            spooled=self._spooled,
            spooled_readings=self._spooled_readings,
            published=publisher.published if publisher else 0,
            buffered_published=publisher.buffered_published if publisher else 0,
            acked=publisher.acked if publisher else 0,
            acked_readings=publisher.acked_readings if publisher else 0,
            rejected_messages=publisher.rejected if publisher else 0,
            unrouted_messages=publisher.unrouted if publisher else 0,
            pending=spool.messages if spool is not None else 0,
            inflight=publisher.inflight if publisher else 0,
            dropped_messages=counts.dropped_messages if counts else 0,
            dropped_readings=counts.dropped_readings if counts else 0,
            connected=publisher.connected if publisher else False,
            connects=publisher.connects if publisher else 0,
        )

    # ------------------------------------------------------------ batcher thread

    def _run_pipeline(self) -> None:
        publisher = self._publisher
        assert publisher is not None
        batch = self.config.batch
        batcher = Batcher(
            self.config.site, batch.max_readings, batch.max_delay_s, batch.max_payload_bytes
        )
        samples = self._queue
        # A round takes no more than the queue holds, so the spool overshoots its
        # high-water mark by at most two queues' worth while the sources pause.
        group_samples = min(GROUP_SAMPLES, samples.maxsize)
        try:
            while True:
                due_at_s = batcher.next_due_s()
                wait_s = 0.1 if due_at_s is None else min(0.1, due_at_s - time.monotonic())
                ready: list[Batch] = []
                sample: Sample | None
                try:
                    sample = samples.get(timeout=max(0.0, wait_s))
                except queue.Empty:
                    sample = None
                taken = 0
                while sample is not None:
                    # _unspooled before _taken: `drained` reads them the other way round.
                    self._unspooled += 1
                    self._taken += 1
                    self._add(batcher, sample, ready)
                    taken += 1
                    if taken >= group_samples:
                        break
                    try:
                        sample = samples.get_nowait()
                    except queue.Empty:
                        sample = None
                ready.extend(batcher.due(time.monotonic()))
                if self._sources_stopped.is_set() and samples.empty():
                    ready.extend(batcher.drain())
                    self._spool_batches(publisher, ready)
                    return
                self._spool_batches(publisher, ready)
        except Exception as exc:
            log.exception("the batcher stopped: the spool cannot be written")
            self._pipeline_failure = StoreError(f"writing the spool failed: {exc!r}")

    def _add(self, batcher: Batcher, sample: Sample, ready: list[Batch]) -> None:
        try:
            ready.extend(batcher.add(sample, time.monotonic()))
        except TonleError as exc:
            self._rejected += 1
            self._unspooled -= 1
            now_s = time.monotonic()
            if now_s - self._last_reject_log_s >= _REJECT_LOG_INTERVAL_S:
                self._last_reject_log_s = now_s
                log.warning(
                    "rejected a reading from %s/%s (%d so far): %s",
                    sample.line,
                    sample.machine,
                    self._rejected,
                    exc,
                )

    def _spool_batches(self, publisher: Publisher, batches: list[Batch]) -> None:
        if not batches:
            return
        publisher.spool_append(batches)
        readings = sum(b.readings for b in batches)
        self._spooled += len(batches)
        self._spooled_readings += readings
        self._unspooled -= readings


def run_agent(config: EdgeConfig, stop: threading.Event | None = None) -> AgentStats:
    """Run the edge agent until ``stop`` is set, or its finite sources are done and delivered.

    Raises the agent's failure (a BrokerError on bad credentials, a StoreError when
    the spool cannot be written, a TonleError when the run ended because every
    source ended and one of them had failed) after stopping cleanly. A real-time
    source never ends, so with one configured only ``stop`` (or Ctrl-C) ends the run.
    """
    stop = stop or threading.Event()
    agent = EdgeAgent(config).start()
    sources_ended = False
    try:
        next_progress_s = time.monotonic() + PROGRESS_INTERVAL_S
        while not stop.wait(0.2):
            if agent.failure is not None:
                break
            if agent.sources_done and agent.drained:
                sources_ended = True
                log.info("every source has ended and its readings are acknowledged")
                break
            if time.monotonic() >= next_progress_s:
                next_progress_s += PROGRESS_INTERVAL_S
                _log_progress(agent.stats)
    finally:
        stats = agent.stop(timeout_s=config.publish.drain_timeout_s + 10.0)
    if agent.failure is not None:
        raise agent.failure
    if sources_ended and agent.failed_sources:
        raise TonleError(
            f"source {', '.join(agent.failed_sources)} failed (its error is in the log above)"
        )
    return stats


def _log_progress(stats: AgentStats) -> None:
    log.info(
        "%s; %d readings sampled, %d acknowledged in %d messages (%d replayed), "
        "%d messages in the spool, %d dropped",
        "connected" if stats.connected else "broker unreachable",
        stats.readings_sampled,
        stats.acked_readings,
        stats.acked,
        stats.buffered_published,
        stats.pending,
        stats.dropped_messages,
    )

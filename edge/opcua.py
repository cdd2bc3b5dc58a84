"""The OPC UA source: variables of one server, by subscription, as samples.

asyncua is asyncio-based, while the agent runs every source as a blocking iterator in
a thread of its own. So :meth:`OpcUaSource.samples` runs an event loop in a second
thread (``asyncio.run``); the loop connects, subscribes and turns each data change
into a :class:`~edge.sources.Sample`, and hands it over through a thread-safe queue
that the iterator drains. Callbacks only convert and enqueue.

A lost connection (the client's keep-alive probe fails, the transport closes, or the
subscription reports a bad status) marks every machine of the source offline and
starts over with a fresh client after a capped, jittered backoff; each connection
subscribes anew, so no monitored item outlives its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif, Subscription
from asyncua.crypto import security_policies, uacrypto
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError
from cryptography import x509

from edge.backoff import Backoff
from edge.config import MetricSampling, OpcUaNodeConfig, OpcUaSourceConfig
from edge.discipline import ChangeFilter
from edge.sources import Sample
from tonle.errors import ConfigError, TonleError

log = logging.getLogger(__name__)

STATUS_METRIC = "device_online"
HEARTBEAT_INTERVAL_S = 1.0  # how often due heartbeats are looked for while connected
_POLL_S = 0.05  # how quickly the loop notices ``stop``, set from another thread
_DISCONNECT_TIMEOUT_S = 0.5  # a goodbye to a dead server must not hold up a stop
_JOIN_TIMEOUT_S = 5.0
_QUEUE_SAMPLES = 10_000  # samples waiting for the agent; beyond it they are dropped
# The client's keep-alive: the server state is read this often, so a server that
# vanished without closing the connection is noticed within about two intervals.
_WATCHDOG_INTERVAL_S = 1.0
# A session the gateway abandoned (it reconnects with a new one) is freed this soon.
_SESSION_TIMEOUT_MS = 60_000
_DEFAULT_APPLICATION_URI = "urn:tonle:edge"
# Values a server queues per node between two publishes. One would do for a server
# that samples at the sampling interval; one that samples on every write (as the
# simulator does) may take several in an interval, and each is a reading of its own.
_QUEUE_SIZE = 16

_POLICIES: dict[str, type[security_policies.SecurityPolicy]] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}


@dataclass(slots=True)
class OpcUaStats:
    """What an OPC UA source has done since it started."""

    notifications: int = 0  # data changes received
    failures: int = 0  # connection attempts that failed and connections lost
    reconnects: int = 0  # connections made after a failure
    skipped: int = 0  # values not published: bad status or not a number
    suppressed: int = 0  # readings held back by a deadband
    dropped: int = 0  # samples lost because the agent did not take them in time


@dataclass(frozen=True, slots=True)
class _Node:
    config: OpcUaNodeConfig
    node_id: ua.NodeId
    rule: MetricSampling


class _ConnectionLost(Exception):
    """The server stopped answering, closed the connection or reported a bad status."""


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _reason(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _key_material(path: Path) -> uacrypto.CertProperties:
    """A certificate or key file, PEM or DER by its content (asyncua goes by the extension)."""
    with path.open("rb") as file:
        pem = file.read(11) == b"-----BEGIN "
    return uacrypto.CertProperties(path, extension="pem" if pem else "der")


def _application_uri(certificate_file: Path) -> str:
    """The URI in the certificate's subjectAltName, which servers expect the client to use."""
    data = certificate_file.read_bytes()
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        certificate = x509.load_der_x509_certificate(data)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return _DEFAULT_APPLICATION_URI
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else _DEFAULT_APPLICATION_URI


class _Handler:
    """asyncua's subscription callbacks for one connection: convert and hand on."""

    def __init__(
        self, on_value: Callable[[int, ua.DataValue], None], on_status: Callable[[str], None]
    ) -> None:
        self._on_value = on_value
        self._on_status = on_status

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        """One monitored item changed."""
        item = data.monitored_item
        self._on_value(item.ClientHandle, item.Value)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        """The subscription's status changed; anything but Good means it is gone."""
        if not status.Status.is_good():
            self._on_status(f"subscription status {status.Status.name}")


class OpcUaSource:
    """Readings of the nodes of one OPC UA server, with reconnection and deadband.

    Args:
        config: the source's section of ``edge.yaml``.

    Raises:
        tonle.errors.ConfigError: a node id is not valid OPC UA node id syntax.
    """

    realtime = True

    def __init__(self, config: OpcUaSourceConfig) -> None:
        self.config = config
        self.name = config.source_name()
        self.stats = OpcUaStats()
        nodes: list[_Node] = []
        for node in config.nodes:
            try:
                node_id = ua.NodeId.from_string(node.node_id)
            except (ValueError, UaError):
                raise ConfigError(
                    f"source {self.name}: node_id {node.node_id!r} is not an OPC UA node id;"
                    " write e.g. ns=2;s=Line1.Press1.Power or ns=2;i=1001"
                ) from None
            nodes.append(_Node(node, node_id, node.sampling or config.sampling))
        self._nodes = nodes
        self._rules = {(n.config.line, n.config.machine, n.config.metric): n.rule for n in nodes}
        self._machines = sorted({(n.config.line, n.config.machine) for n in nodes})
        self._filter = ChangeFilter(self._rule)
        self._out: queue.Queue[Sample] = queue.Queue(_QUEUE_SAMPLES)
        self._online: bool | None = None
        self._refused: set[int] = set()  # nodes the server refused, logged once
        self._unusable: dict[int, str] = {}  # node → the problem of its last value, logged
        self._overflowing = False
        self._failure: Exception | None = None

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        """Yield readings and status changes until ``stop`` is set."""
        halt = threading.Event()
        thread = threading.Thread(target=self._run, args=(stop, halt), name=f"{self.name}-loop")
        thread.start()
        try:
            while not stop.is_set():
                try:
                    sample = self._out.get(timeout=_POLL_S)
                except queue.Empty:
                    if thread.is_alive():
                        continue
                    if self._failure is not None:
                        raise TonleError(f"OPC UA source {self.name} failed") from self._failure
                    return
                yield sample
        finally:
            halt.set()
            thread.join(_JOIN_TIMEOUT_S)
            self.stats.suppressed = self._filter.suppressed
            log.info("OPC UA source %s ended: %s", self.name, self.stats)

    def _rule(self, sample: Sample) -> MetricSampling:
        return self._rules[sample.line, sample.machine, sample.metric]

    def _run(self, stop: threading.Event, halt: threading.Event) -> None:
        try:
            asyncio.run(self._main(stop, halt))
        except Exception as exc:  # noqa: BLE001 - a defect, re-raised by samples()
            self._failure = exc

    # Everything below runs on the source's event loop, in its thread.

    async def _main(self, stop: threading.Event, halt: threading.Event) -> None:
        backoff = Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        stopping = asyncio.create_task(self._until_set(stop, halt))
        try:
            while not stopping.done():
                connection = asyncio.create_task(self._connection(backoff))
                await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not connection.done():
                    connection.cancel()
                    await asyncio.gather(connection, return_exceptions=True)
                    return
                self.stats.failures += 1
                self._set_online(False, self._failure_reason(connection.exception()))
                pause = asyncio.create_task(asyncio.sleep(backoff.next_delay_s()))
                await asyncio.wait({pause, stopping}, return_when=asyncio.FIRST_COMPLETED)
                pause.cancel()
        finally:
            stopping.cancel()

    def _failure_reason(self, exc: BaseException | None) -> str:
        if exc is None:
            return "connection ended"
        if not isinstance(exc, TimeoutError):
            return _reason(exc)
        reason = f"no answer within {self.config.timeout_s} s"
        if self.config.server_certificate_file is not None:
            # A server cannot read what was encrypted for another certificate: silence.
            reason += "; check that server_certificate_file is this server's certificate"
        return reason

    @staticmethod
    async def _until_set(stop: threading.Event, halt: threading.Event) -> None:
        while not (stop.is_set() or halt.is_set()):
            await asyncio.sleep(_POLL_S)

    async def _connection(self, backoff: Backoff) -> None:
        """Connect, subscribe and publish until the connection is lost (which raises)."""
        config = self.config
        client = Client(
            config.url, timeout=config.timeout_s, watchdog_intervall=_WATCHDOG_INTERVAL_S
        )
        client.session_timeout = _SESSION_TIMEOUT_MS
        lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def lose(reason: str) -> None:
            if not lost.done():
                lost.set_result(reason)

        async def on_connection_lost(exc: Exception) -> None:
            lose(f"connection lost: {_reason(exc)}")

        client.connection_lost_callback = on_connection_lost
        try:
            await self._configure(client)
            await client.connect()
            handler = _Handler(lambda handle, value: self._on_value(lost, handle, value), lose)
            subscription = await client.create_subscription(config.publishing_interval_ms, handler)
            await self._monitor(subscription)
            # Online once the items are monitored: a value written after a consumer
            # saw the status cannot predate the subscription.
            if self._online is False:
                self.stats.reconnects += 1
            backoff.reset()
            self._set_online(True, "connected")
            while not lost.done():
                await asyncio.wait({lost}, timeout=HEARTBEAT_INTERVAL_S)
                if not lost.done():
                    for sample in self._filter.heartbeats():
                        self._put(sample)
            raise _ConnectionLost(lost.result())
        finally:
            lose("disconnected")
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(client.disconnect(), _DISCONNECT_TIMEOUT_S)

    async def _configure(self, client: Client) -> None:
        config = self.config
        if config.security_policy != "None":
            # The validator made sure both files are set with a policy.
            assert config.certificate_file is not None
            assert config.private_key_file is not None
            client.application_uri = _application_uri(config.certificate_file)
            # With a server certificate configured, asyncua refuses any other one the
            # server presents ("Server certificate mismatch"): the certificate is pinned.
            pinned = config.server_certificate_file
            await client.set_security(
                _POLICIES[config.security_policy],
                certificate=_key_material(config.certificate_file),
                private_key=_key_material(config.private_key_file),
                server_certificate=_key_material(pinned) if pinned is not None else None,
                mode=ua.MessageSecurityMode[config.security_mode],
            )
        if config.username:
            client.set_user(config.username)
            password = config.secret()
            if password is not None:
                client.set_password(password)

    async def _monitor(self, subscription: Subscription) -> None:
        """Create one monitored item per node; a node the server refuses is skipped."""
        sampling_ms = float(
            self.config.sampling_interval_ms
            if self.config.sampling_interval_ms is not None
            else self.config.publishing_interval_ms
        )
        # StatusValueTimestamp: a new SourceTimestamp alone is a change, so every write
        # is delivered even when the value repeats (a counter written again, a steady
        # temperature); the default StatusValue would drop those as duplicates.
        trigger = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        requests = []
        for handle, node in enumerate(self._nodes):
            parameters = ua.MonitoringParameters(
                ClientHandle=handle,
                SamplingInterval=sampling_ms,
                Filter=trigger,
                QueueSize=_QUEUE_SIZE,
                DiscardOldest=True,
            )
            requests.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(
                        NodeId=node.node_id, AttributeId=AttributeIds.Value
                    ),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=parameters,
                )
            )
        results = await subscription.create_monitored_items(requests)
        for handle, result in enumerate(results):
            if isinstance(result, ua.StatusCode) and handle not in self._refused:
                self._refused.add(handle)
                refused = self._nodes[handle].config
                log.warning(
                    "OPC UA source %s: the server refused node %s (%s/%s %s): %s (%s); skipped",
                    self.name,
                    refused.node_id,
                    refused.line,
                    refused.machine,
                    refused.metric,
                    result.name,
                    result.doc,
                )

    def _on_value(self, lost: asyncio.Future[str], handle: int, data: ua.DataValue) -> None:
        if lost.done() or not 0 <= handle < len(self._nodes):
            return  # a late notification of a connection already given up
        self.stats.notifications += 1
        node = self._nodes[handle]
        value = self._value(handle, node, data)
        if value is None:
            self.stats.skipped += 1
            return
        ts = data.SourceTimestamp or data.ServerTimestamp or datetime.now(UTC)
        config = node.config
        sample = Sample(config.line, config.machine, config.metric, _utc(ts), value, config.unit)
        if self._filter.admit(sample):
            self._put(sample)

    def _value(self, handle: int, node: _Node, data: ua.DataValue) -> float | None:
        """The scaled value, or None: logged once per node and kind of problem."""
        status = data.StatusCode
        raw = data.Value.Value if data.Value is not None else None
        if status is not None and status.is_bad():
            problem = f"status {status.name}"
        elif not isinstance(raw, bool | int | float):
            problem = f"a {type(raw).__name__}, not a number"
        elif not math.isfinite(value := float(raw) * node.config.scale + node.config.offset):
            problem = "a value that is not a finite number"  # the contract has no NaN or inf
        else:
            self._unusable.pop(handle, None)
            return value
        if self._unusable.get(handle) != problem:
            self._unusable[handle] = problem
            log.warning(
                "OPC UA source %s: node %s gave %s; not published until it gives a number",
                self.name,
                node.config.node_id,
                problem,
            )
        return None

    def _set_online(self, online: bool, reason: str) -> None:
        if self._online is online:
            return
        if online:
            log.info("OPC UA source %s: connected to %s", self.name, self.config.url)
        else:
            log.warning("OPC UA source %s: %s unreachable: %s", self.name, self.config.url, reason)
        self._online = online
        now = datetime.now(UTC)
        for line, machine in self._machines:
            if not online:
                self._filter.forget(line, machine)
            self._put(Sample(line, machine, STATUS_METRIC, now, 1.0 if online else 0.0, None))

    def _put(self, sample: Sample) -> None:
        try:
            self._out.put_nowait(sample)
        except queue.Full:
            self.stats.dropped += 1
            if not self._overflowing:
                log.warning("OPC UA source %s: the agent is not keeping up; dropping", self.name)
            self._overflowing = True
        else:
            self._overflowing = False

"""A simulated factory's machines as an OPC UA server, fed by the simulator.

One folder per line and one object per machine (``<line>/<machine>``), one Double
variable per metric with the node id ``ns=<idx>;s=<line>.<machine>.<metric>``. Each
:meth:`OpcUaDeviceServer.update` writes a DataValue whose SourceTimestamp is the
simulated reading's time, the way a machine controller stamps its own values. Until
its first update a variable holds no value and the status ``BadWaitingForInitialData``.

asyncua is asyncio-based; the server runs on an event loop in a thread of its own so
the simulator (and the tests) can drive it from ordinary threads.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from asyncua import ua
from asyncua.common.node import Node
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:tonle:simulator"
# The server's certificate must name this URI in its subjectAltName.
APPLICATION_URI = "urn:tonle:simulator:opcua"
# asyncua builds the whole standard address space at init: seconds, not milliseconds.
_START_TIMEOUT_S = 60.0
_CALL_TIMEOUT_S = 10.0
_JOIN_TIMEOUT_S = 10.0

_T = TypeVar("_T")

# Security policy names an edge configuration uses, as endpoint offers of the server.
_POLICIES: dict[str, ua.SecurityPolicyType] = {
    "None": ua.SecurityPolicyType.NoSecurity,
    "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
    "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    "Aes128_Sha256_RsaOaep_Sign": ua.SecurityPolicyType.Aes128Sha256RsaOaep_Sign,
    "Aes128_Sha256_RsaOaep_SignAndEncrypt": (
        ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt
    ),
    "Aes256_Sha256_RsaPss_Sign": ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    "Aes256_Sha256_RsaPss_SignAndEncrypt": ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
}


@dataclass(frozen=True, slots=True)
class ServerSecurity:
    """The server's certificate and key (PEM or DER) and the endpoints it offers.

    ``policies`` are ``<policy>_<mode>`` names (``Basic256Sha256_SignAndEncrypt``) or
    ``None`` for an unsecured endpoint beside the secured ones. The certificate should
    carry :data:`APPLICATION_URI` as a subjectAltName URI.
    """

    certificate_file: Path
    private_key_file: Path
    policies: tuple[str, ...] = ("Basic256Sha256_Sign", "Basic256Sha256_SignAndEncrypt")

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in _POLICIES]
        if unknown or not self.policies:
            raise ValueError(f"unknown security policies {unknown}; choose from {list(_POLICIES)}")


class _Users(UserManager):
    """Username and password logins; anything else (anonymous included) is refused."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        expected = self._users.get(username or "")
        if expected is None or password is None:
            return None
        if not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return User(role=UserRole.User, name=username)


def _key(line: str, machine: str, metric: str) -> str:
    return f"{line}.{machine}.{metric}"


def _encoding(path: Path) -> str:
    """PEM or DER by the content: asyncua would go by the extension (``.key`` is not PEM)."""
    with path.open("rb") as file:
        return "pem" if file.read(11) == b"-----BEGIN " else "der"


def _ua_time(ts: datetime) -> ua.DateTime:
    utc = ts.astimezone(UTC)
    return ua.DateTime.combine(utc.date(), utc.timetz())


def _string_id(identifier: str, index: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(index))


class OpcUaDeviceServer:
    """Machines' metrics as OPC UA variables on ``host``, updated from other threads.

    Args:
        metrics: ``(line, machine, metric, unit)`` of every variable to serve.
        host: the address to listen on.
        port: the TCP port; 0 picks a free one (kept across stop and start).
        users: username → password; when set, anonymous clients are refused.
        security: certificate, key and secured endpoints; unsecured only if unset.
    """

    def __init__(
        self,
        metrics: Iterable[tuple[str, str, str, str | None]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        security: ServerSecurity | None = None,
    ) -> None:
        self.metrics = list(metrics)
        keys = [_key(line, machine, metric) for line, machine, metric, _ in self.metrics]
        if len(set(keys)) != len(keys):
            raise ValueError("a (line, machine, metric) is listed twice")
        self._keys = set(keys)
        self.host = host
        self.port = port
        self.users = dict(users) if users is not None else None
        self.security = security
        self.namespace_index: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._variables: dict[str, Node] = {}

    @property
    def url(self) -> str:
        """The endpoint URL (the real port once started)."""
        return f"opc.tcp://{self.host}:{self.port}/"

    def node_id(self, line: str, machine: str, metric: str) -> str:
        """The node id string of a metric's variable, as an edge configuration names it."""
        if self.namespace_index is None:
            raise RuntimeError("the namespace index is known once the server has started")
        if _key(line, machine, metric) not in self._keys:
            raise KeyError(f"no variable for {line}/{machine}/{metric}")
        return f"ns={self.namespace_index};s={_key(line, machine, metric)}"

    def start(self) -> OpcUaDeviceServer:
        """Build the address space and listen (takes seconds: asyncua's init)."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run_loop, args=(loop,), name=f"opcua-server-{self.host}", daemon=True
        )
        self._loop, self._thread = loop, thread
        thread.start()
        try:
            self._call(self._open(), _START_TIMEOUT_S)
        except BaseException:
            self._end_loop()
            raise
        log.info("OPC UA device server on %s with %d variables", self.url, len(self.metrics))
        return self

    def stop(self) -> None:
        """Close every session, stop listening and end the server's thread."""
        if self._thread is None:
            return
        try:
            self._call(self._close(), _CALL_TIMEOUT_S)
        finally:
            self._end_loop()

    def restart(self, down_s: float = 0.0) -> None:
        """Drop every client and stop listening for ``down_s``, then listen again.

        The variables keep their values, as a device whose communication stack
        restarted would; the port stays the same.
        """
        self._call(self._restart(down_s), _CALL_TIMEOUT_S + down_s)

    def update(self, line: str, machine: str, metric: str, value: float, ts: datetime) -> None:
        """Set a metric's value with ``ts`` (aware) as its SourceTimestamp; thread-safe."""
        if _key(line, machine, metric) not in self._keys:
            raise KeyError(f"no variable for {line}/{machine}/{metric}")
        variable = self._variables.get(_key(line, machine, metric))
        if variable is None:
            raise RuntimeError("the OPC UA device server is not running")
        data = ua.DataValue(
            ua.Variant(float(value), ua.VariantType.Double),
            SourceTimestamp=_ua_time(ts),
            ServerTimestamp=_ua_time(datetime.now(UTC)),
        )
        self._call(variable.write_attribute(AttributeIds.Value, data), _CALL_TIMEOUT_S)

    def __enter__(self) -> OpcUaDeviceServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout_s: float) -> _T:
        loop = self._loop
        if loop is None or not loop.is_running():
            coroutine.close()
            raise RuntimeError("the OPC UA device server is not running")
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result(timeout_s)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # Whatever asyncua left pending ends with the loop, not in another thread.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _end_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_JOIN_TIMEOUT_S)
        self._loop = self._thread = self._server = None
        self._variables = {}

    async def _open(self) -> None:
        server = Server(user_manager=_Users(self.users) if self.users is not None else None)
        await server.init()
        server.set_server_name("Tonle simulated machines")
        await server.set_application_uri(APPLICATION_URI)
        server.set_endpoint(self.url)
        if self.security is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            cert_file, key_file = self.security.certificate_file, self.security.private_key_file
            await server.load_certificate(cert_file, _encoding(cert_file))
            await server.load_private_key(key_file, None, _encoding(key_file))
            server.set_security_policy([_POLICIES[p] for p in self.security.policies])
        if self.users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        index = await server.register_namespace(NAMESPACE_URI)
        self._variables = await self._build(server, index)
        await server.start()
        if server.bserver is not None:
            self.port = server.bserver.port or self.port
        self._server, self.namespace_index = server, index

    async def _build(self, server: Server, index: int) -> dict[str, Node]:
        folders: dict[str, Node] = {}
        objects: dict[tuple[str, str], Node] = {}
        variables: dict[str, Node] = {}
        waiting = ua.DataValue(
            StatusCode=ua.StatusCode(ua.UInt32(StatusCodes.BadWaitingForInitialData))
        )
        for line, machine, metric, unit in self.metrics:
            if line not in folders:
                folders[line] = await server.nodes.objects.add_folder(
                    _string_id(line, index), ua.QualifiedName(line, index)
                )
            if (line, machine) not in objects:
                objects[line, machine] = await folders[line].add_object(
                    _string_id(f"{line}.{machine}", index), ua.QualifiedName(machine, index)
                )
            key = _key(line, machine, metric)
            variable = await objects[line, machine].add_variable(
                _string_id(key, index),
                ua.QualifiedName(metric, index),
                ua.Variant(0.0, ua.VariantType.Double),
                datatype=ua.NodeId(ua.Int32(ObjectIds.Double)),
            )
            if unit is not None:
                await variable.add_property(
                    index,
                    "EngineeringUnits",
                    ua.EUInformation(DisplayName=ua.LocalizedText(unit)),
                )
            await variable.write_attribute(AttributeIds.Value, waiting)
            variables[key] = variable
        return variables

    async def _close(self) -> None:
        if self._server is not None:
            await self._server.stop()

    async def _restart(self, down_s: float) -> None:
        server = self._server
        if server is None or server.bserver is None:
            raise RuntimeError("the OPC UA device server is not running")
        # The listener alone goes down and comes back (on the port it had): stopping
        # the whole asyncua server would also end its clock for good.
        await server.bserver.stop()
        await asyncio.sleep(down_s)
        await server.bserver.start()

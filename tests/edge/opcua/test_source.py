"""The OPC UA source against the simulated machine server on loopback.

One server serves the whole module (asyncua builds its standard address space in
seconds); each test reads machines of its own, so no test sees another's values.
The server asks for a username and password and offers both an unsecured and a
Basic256Sha256 SignAndEncrypt endpoint, with certificates made here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from edge.config import OpcUaSourceConfig
from edge.opcua import OpcUaSource
from edge.sources import Sample
from simulators.devices.opcua_server import APPLICATION_URI, OpcUaDeviceServer, ServerSecurity
from tests.edge.conftest import wait_for
from tonle.errors import ConfigError

USER, PASSWORD = "operator", "s3cret-Pa55"
PUBLISHING_MS = 50
STOP_WITHIN_S = 1.0

METRICS = [
    ("line-1", "press-1", "active_power", "W"),
    ("line-1", "press-1", "temperature", "°C"),
    ("line-1", "counter-1", "part_count", None),
    ("line-1", "scaled-1", "active_power", "W"),
    ("line-1", "flat-1", "temperature", "°C"),
    ("line-1", "nan-1", "temperature", "°C"),
    ("line-2", "login-1", "active_power", "W"),
    ("line-2", "secure-1", "active_power", "W"),
    ("line-2", "restart-1", "active_power", "W"),
    ("line-2", "known-1", "active_power", "W"),
]


def _certificate(directory: Path, name: str, uri: str) -> tuple[Path, Path]:
    """A self-signed certificate naming ``uri`` (as OPC UA asks), and its key, as PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Server and client certificate and key files."""
    directory = tmp_path_factory.mktemp("pki")
    return {
        "server": _certificate(directory, "server", APPLICATION_URI),
        "client": _certificate(directory, "client", "urn:tonle:edge:test"),
    }


@pytest.fixture(scope="module")
def server(certificates: dict[str, tuple[Path, Path]]) -> Iterator[OpcUaDeviceServer]:
    """The module's machine server: username login, unsecured and encrypted endpoints."""
    cert_file, key_file = certificates["server"]
    security = ServerSecurity(cert_file, key_file, ("None", "Basic256Sha256_SignAndEncrypt"))
    with OpcUaDeviceServer(METRICS, users={USER: PASSWORD}, security=security) as running:
        yield running


class Running:
    """A source's ``samples()`` drained by a thread, as the agent's runner does."""

    def __init__(self, source: OpcUaSource) -> None:
        self.source = source
        self.stop = threading.Event()
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name="test-opcua-drain")
        self._thread.start()

    def _drain(self) -> None:
        for sample in self.source.samples(self.stop):
            with self._lock:
                self._samples.append(sample)

    def close(self) -> float:
        """Set ``stop`` and wait for the source to end; the seconds that took."""
        began = time.monotonic()
        self.stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the source did not end"
        return time.monotonic() - began

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def readings(self, machine: str, metric: str) -> list[tuple[datetime, float]]:
        return [
            (s.ts, s.value) for s in self.samples() if (s.machine, s.metric) == (machine, metric)
        ]

    def status(self, machine: str) -> list[float]:
        return [value for _, value in self.readings(machine, "device_online")]


@pytest.fixture
def run() -> Iterator[Callable[[OpcUaSourceConfig], Running]]:
    """Start sources; each must stop within a second when the test ends."""
    started: list[Running] = []

    def start(config: OpcUaSourceConfig) -> Running:
        running = Running(OpcUaSource(config))
        started.append(running)
        return running

    yield start
    stop_times = [running.close() for running in started]
    assert all(seconds < STOP_WITHIN_S for seconds in stop_times), stop_times


def _config(
    server: OpcUaDeviceServer, nodes: list[dict[str, Any]], **fields: Any
) -> OpcUaSourceConfig:
    document: dict[str, Any] = {
        "type": "opcua",
        "url": server.url,
        "username": USER,
        "password": PASSWORD,
        "publishing_interval_ms": PUBLISHING_MS,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.3,
        "timeout_s": 2.0,
        "nodes": nodes,
        **fields,
    }
    return OpcUaSourceConfig.model_validate(document)


def _node(
    server: OpcUaDeviceServer, line: str, machine: str, metric: str, **fields: Any
) -> dict[str, Any]:
    return {
        "node_id": server.node_id(line, machine, metric),
        "line": line,
        "machine": machine,
        "metric": metric,
        **fields,
    }


def _online(running: Running, machine: str) -> Callable[[], bool]:
    return lambda: running.status(machine)[-1:] == [1.0]


def _written(
    server: OpcUaDeviceServer, line: str, machine: str, metric: str, values: list[float]
) -> list[tuple[datetime, float]]:
    """Write ``values`` one publishing interval apart, at millisecond timestamps of their own."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    written = []
    for i, value in enumerate(values):
        ts = start + timedelta(milliseconds=1500 * i + 7)
        server.update(line, machine, metric, value, ts)
        written.append((ts, value))
        time.sleep(PUBLISHING_MS * 1.5 / 1000)
    return written


def test_values_and_source_timestamps_arrive_exactly(
    server: OpcUaDeviceServer,
    run: Callable[[OpcUaSourceConfig], Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = run(
        _config(
            server,
            [
                _node(server, "line-1", "press-1", "active_power", unit="W"),
                _node(server, "line-1", "press-1", "temperature", unit="°C"),
            ],
        )
    )
    wait_for(_online(running, "press-1"))
    power = _written(server, "line-1", "press-1", "active_power", [8450.0, 8460.5, 0.0])
    temperature = _written(server, "line-1", "press-1", "temperature", [41.25, -3.5])
    wait_for(lambda: len(running.readings("press-1", "temperature")) == 2)
    assert running.readings("press-1", "active_power") == power
    assert running.readings("press-1", "temperature") == temperature
    assert running.status("press-1") == [1.0]
    units = {s.metric: s.unit for s in running.samples()}
    assert units == {"device_online": None, "active_power": "W", "temperature": "°C"}
    assert all(
        s.ts.tzinfo is not None and s.ts.utcoffset() == timedelta(0) for s in running.samples()
    )
    # Both variables held no value yet when subscribed: logged once each, not published.
    waiting = [r for r in caplog.records if "BadWaitingForInitialData" in r.getMessage()]
    assert len(waiting) == 2
    assert running.source.stats.skipped == 2
    assert running.source.stats.notifications == 2 + 5


def test_a_repeated_value_at_a_new_timestamp_arrives(
    server: OpcUaDeviceServer, run: Callable[[OpcUaSourceConfig], Running]
) -> None:
    running = run(_config(server, [_node(server, "line-1", "counter-1", "part_count")]))
    wait_for(_online(running, "counter-1"))
    written = _written(server, "line-1", "counter-1", "part_count", [3.0, 3.0, 4.0, 4.0, 2.0])
    wait_for(lambda: len(running.readings("counter-1", "part_count")) == 5)
    assert running.readings("counter-1", "part_count") == written


def test_scale_and_offset_apply(
    server: OpcUaDeviceServer, run: Callable[[OpcUaSourceConfig], Running]
) -> None:
    node = _node(server, "line-1", "scaled-1", "active_power", scale=1000.0, offset=-50.0)
    running = run(_config(server, [node]))
    wait_for(_online(running, "scaled-1"))
    written = _written(server, "line-1", "scaled-1", "active_power", [1.5, 0.25])
    wait_for(lambda: len(running.readings("scaled-1", "active_power")) == 2)
    assert running.readings("scaled-1", "active_power") == [
        (written[0][0], 1450.0),
        (written[1][0], 200.0),
    ]


def test_deadband_holds_back_small_changes_and_a_heartbeat_repeats_the_last(
    server: OpcUaDeviceServer, run: Callable[[OpcUaSourceConfig], Running]
) -> None:
    rule = {"deadband": 0.5, "heartbeat_s": 1.0}
    running = run(
        _config(server, [_node(server, "line-1", "flat-1", "temperature", sampling=rule)])
    )
    wait_for(_online(running, "flat-1"))
    base = datetime.now(UTC)
    steps = [20.0, 20.2, 20.4, 21.0, 20.8]  # 0.1 s apart in source time
    for i, value in enumerate(steps):
        server.update(
            "line-1", "flat-1", "temperature", value, base + timedelta(milliseconds=100 * i)
        )
        time.sleep(PUBLISHING_MS * 1.5 / 1000)
    wait_for(lambda: len(running.readings("flat-1", "temperature")) == 3, timeout_s=5)
    readings = running.readings("flat-1", "temperature")
    assert readings[:2] == [(base, 20.0), (base + timedelta(milliseconds=300), 21.0)]
    heartbeat_ts, heartbeat_value = readings[2]
    assert heartbeat_value == 21.0
    assert heartbeat_ts - readings[1][0] >= timedelta(seconds=1)
    assert running.source.stats.notifications == 1 + len(steps)


def test_a_value_that_is_not_a_finite_number_is_logged_once_and_skipped(
    server: OpcUaDeviceServer,
    run: Callable[[OpcUaSourceConfig], Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = run(_config(server, [_node(server, "line-1", "nan-1", "temperature")]))
    wait_for(_online(running, "nan-1"))
    written = _written(
        server, "line-1", "nan-1", "temperature", [math.nan, math.inf, 18.5, math.nan]
    )
    wait_for(lambda: running.source.stats.notifications == 1 + len(written))
    assert running.readings("nan-1", "temperature") == [written[2]]
    assert running.source.stats.skipped == 1 + 3
    messages = [r.getMessage() for r in caplog.records if "nan-1.temperature" in r.getMessage()]
    # Once per kind of problem: no value yet; nan (inf is the same kind); nan after 18.5.
    assert ["BadWaitingForInitialData" in m for m in messages] == [True, False, False]
    assert ["not a finite number" in m for m in messages] == [False, True, True]


def test_a_node_id_that_is_not_one_is_a_configuration_error() -> None:
    def config(node_id: str) -> OpcUaSourceConfig:
        return OpcUaSourceConfig.model_validate(
            {
                "type": "opcua",
                "url": "opc.tcp://127.0.0.1:4840/",
                "nodes": [{"node_id": node_id, "line": "l1", "machine": "m1", "metric": "voltage"}],
            }
        )

    with pytest.raises(ValidationError, match=r"nodes\.0\.node_id\s+String should match pattern"):
        config("Line1.Press1")  # refused when the file loads
    with pytest.raises(ConfigError, match=r"'i=abc' is not an OPC UA node id"):
        OpcUaSource(config("i=abc"))  # the right shape, but asyncua cannot parse it


@pytest.mark.parametrize(
    ("username", "password"), [(USER, "wrong"), (None, None)], ids=["wrong-password", "anonymous"]
)
def test_a_refused_login_is_a_status_not_a_crash(
    server: OpcUaDeviceServer,
    run: Callable[[OpcUaSourceConfig], Running],
    caplog: pytest.LogCaptureFixture,
    username: str | None,
    password: str | None,
) -> None:
    config = _config(
        server,
        [_node(server, "line-2", "login-1", "active_power")],
        username=username,
        password=password,
    )
    running = run(config)
    wait_for(lambda: running.source.stats.failures >= 3)
    assert [s.metric for s in running.samples()] == ["device_online"]
    assert running.status("login-1") == [0.0]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "unreachable" in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "Bad" in warnings[0]


def test_basic256sha256_sign_and_encrypt_with_a_pinned_server_certificate(
    server: OpcUaDeviceServer,
    run: Callable[[OpcUaSourceConfig], Running],
    certificates: dict[str, tuple[Path, Path]],
) -> None:
    client_cert, client_key = certificates["client"]
    running = run(
        _config(
            server,
            [_node(server, "line-2", "secure-1", "active_power")],
            security_policy="Basic256Sha256",
            security_mode="SignAndEncrypt",
            certificate_file=str(client_cert),
            private_key_file=str(client_key),
            server_certificate_file=str(certificates["server"][0]),
        )
    )
    wait_for(_online(running, "secure-1"))
    written = _written(server, "line-2", "secure-1", "active_power", [512.0, 1024.0])
    wait_for(lambda: len(running.readings("secure-1", "active_power")) == 2)
    assert running.readings("secure-1", "active_power") == written


def test_a_server_certificate_other_than_the_pinned_one_is_refused(
    server: OpcUaDeviceServer,
    run: Callable[[OpcUaSourceConfig], Running],
    certificates: dict[str, tuple[Path, Path]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client_cert, client_key = certificates["client"]
    running = run(
        _config(
            server,
            [_node(server, "line-2", "secure-1", "active_power")],
            security_policy="Basic256Sha256",
            security_mode="SignAndEncrypt",
            certificate_file=str(client_cert),
            private_key_file=str(client_key),
            server_certificate_file=str(client_cert),  # not the server's
            timeout_s=1.0,
        )
    )
    wait_for(lambda: running.source.stats.failures >= 1)
    assert running.samples() == [s for s in running.samples() if s.metric == "device_online"]
    assert running.status("secure-1") == [0.0]
    offline = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(offline) == 1
    assert "no answer within 1.0 s; check that server_certificate_file" in offline[0]


def test_a_restarted_server_is_reported_and_values_flow_again(
    server: OpcUaDeviceServer, run: Callable[[OpcUaSourceConfig], Running]
) -> None:
    running = run(_config(server, [_node(server, "line-2", "restart-1", "active_power")]))
    wait_for(_online(running, "restart-1"))
    before = _written(server, "line-2", "restart-1", "active_power", [100.0])
    wait_for(lambda: len(running.readings("restart-1", "active_power")) == 1)
    down = threading.Thread(target=server.restart, args=(0.5,), name="test-restart")
    down.start()
    wait_for(lambda: running.status("restart-1") == [1.0, 0.0], timeout_s=5)
    down.join()
    wait_for(lambda: running.status("restart-1") == [1.0, 0.0, 1.0], timeout_s=5)
    after = _written(server, "line-2", "restart-1", "active_power", [200.0])
    wait_for(lambda: len(running.readings("restart-1", "active_power")) == 3)
    # The value the server still held is read again on the new subscription.
    assert running.readings("restart-1", "active_power") == before + before + after
    assert running.source.stats.reconnects == 1


def test_an_unknown_node_is_skipped_and_the_others_work(
    server: OpcUaDeviceServer,
    run: Callable[[OpcUaSourceConfig], Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing_id = f"ns={server.namespace_index};s=line-2.known-1.no_such_metric"
    missing = {"node_id": missing_id, "line": "line-2", "machine": "known-1", "metric": "voltage"}
    running = run(_config(server, [missing, _node(server, "line-2", "known-1", "active_power")]))
    wait_for(_online(running, "known-1"))
    written = _written(server, "line-2", "known-1", "active_power", [7.0])
    wait_for(lambda: len(running.readings("known-1", "active_power")) == 1)
    assert running.readings("known-1", "active_power") == written
    assert running.readings("known-1", "voltage") == []
    refused = [r.getMessage() for r in caplog.records if "refused node" in r.getMessage()]
    assert len(refused) == 1
    assert missing_id in refused[0]
    assert "BadNodeIdUnknown" in refused[0]


def test_an_unreachable_server_is_offline_and_stop_is_prompt(
    run: Callable[[OpcUaSourceConfig], Running],
) -> None:
    config = OpcUaSourceConfig.model_validate(
        {
            "type": "opcua",
            "url": "opc.tcp://127.0.0.1:9/",  # discard port: nothing listens
            "reconnect_min_s": 5,
            "reconnect_max_s": 5,
            "nodes": [
                {"node_id": "ns=2;s=a.b.c", "line": "line-3", "machine": "m1", "metric": "voltage"}
            ],
        }
    )
    running = run(config)
    wait_for(lambda: running.status("m1") == [0.0])
    assert running.close() < STOP_WITHIN_S  # stopped in the middle of a 5 s backoff

"""MQTT over TLS (``mqtts://``): a test CA made here, a Mosquitto with a TLS listener only.

The edge agent (``broker.tls.ca_file``) publishes and the ingester (``TONLE_MQTT_CA_FILE``)
stores; an ingester or an edge that does not trust the CA says so plainly.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from edge.agent import EdgeAgent
from ingest.service import Ingester
from tests.edge.conftest import CountingSource, make_config, wait_for
from tests.mqtt_helpers import running_ingester, wait_until
from tonle.errors import BrokerError
from tonle.local_services import LocalBroker
from tonle.settings import IngestSettings, Settings

pytestmark = [pytest.mark.mqtt]

READINGS = 300
# OpenSSL's words for a chain that ends in a CA we do not hold (Mosquitto may send its CA).
UNTRUSTED = (
    "(?:self-signed certificate in certificate chain|unable to get local issuer certificate)"
)


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate it signed for 127.0.0.1, and a CA that signed nothing."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path


def _openssl(*args: str, cwd: Path) -> None:
    tool = shutil.which("openssl")
    if tool is None:
        pytest.fail("this test needs the openssl command: apt-get install openssl")
    subprocess.run([tool, *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=Tonle test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=directory,
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Made with the openssl command (the cryptography package is not installed)."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key, ca = _make_ca(directory, "ca")
    _, other_ca = _make_ca(directory, "other-ca")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    return Pki(ca=ca, server_cert=cert, server_key=key, other_ca=other_ca)


@pytest.fixture
def tls_broker(pki: Pki) -> Iterator[LocalBroker]:
    """A private Mosquitto whose only listener speaks TLS with the test CA's certificate."""
    broker = LocalBroker()
    files = []
    for source in (pki.ca, pki.server_cert, pki.server_key):
        target = broker.workdir / source.name
        shutil.copyfile(source, target)
        target.chmod(0o644)  # Mosquitto drops root for its own user, which must read them
        files.append(target)
    ca, cert, key = files
    # These lines follow the `listener` line, so they configure that listener.
    broker.extra_config = [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
    broker.start()
    yield broker
    broker.close()


def _url(broker: LocalBroker) -> str:
    return f"mqtts://127.0.0.1:{broker.port}"


def _settings(database_url: str, url: str, ca_file: Path | None) -> Settings:
    return Settings(
        database_url=database_url,
        mqtt_url=url,
        mqtt_ca_file=ca_file,
        ingest=IngestSettings(
            client_id=f"test-ingest-{uuid.uuid4().hex[:8]}",
            group=f"g{uuid.uuid4().hex[:8]}",
            max_delay_s=0.1,
        ),
    )


@pytest.mark.db
def test_edge_publishes_and_ingester_stores_over_mqtts(
    tmp_path: Path,
    pki: Pki,
    tls_broker: LocalBroker,
    database_url: str,
    conn: psycopg.Connection[tuple[object, ...]],
    site_id: str,
) -> None:
    url = _url(tls_broker)
    config = make_config(tmp_path, url, site_id, broker={"tls": {"ca_file": str(pki.ca)}})
    with running_ingester(_settings(database_url, url, pki.ca)):
        agent = EdgeAgent(config, sources=[CountingSource(READINGS, machines=2)]).start()
        try:
            assert agent.wait_sources_done(10)
            assert agent.wait_drained(10)
        finally:
            stats = agent.stop()
        assert (stats.acked_readings, stats.dropped_readings) == (READINGS, 0)

        def values() -> list[float]:
            rows = conn.execute(
                "SELECT value FROM telemetry WHERE site = %s ORDER BY value", (site_id,)
            ).fetchall()
            return [float(str(v)) for (v,) in rows]

        wait_until(lambda: len(values()) == READINGS)
    assert values() == [float(i) for i in range(READINGS)]
    assert sorted(str(m) for (m,) in conn.execute("SELECT machine FROM machines")) == ["m0", "m1"]


@pytest.mark.db
def test_an_ingester_that_does_not_trust_the_ca_stops_with_a_clear_error(
    pki: Pki, tls_broker: LocalBroker, database_url: str
) -> None:
    ingester = Ingester(_settings(database_url, _url(tls_broker), pki.other_ca))
    with pytest.raises(BrokerError) as caught:
        ingester.run()
    assert re.fullmatch(
        f"the TLS certificate of the broker mqtts://127.0.0.1:{tls_broker.port} is not trusted "
        f"\\({UNTRUSTED}\\); set TONLE_MQTT_CA_FILE to the CA that signed it",
        str(caught.value),
    )


def test_an_edge_that_does_not_trust_the_ca_says_so_and_publishes_nothing(
    tmp_path: Path,
    pki: Pki,
    tls_broker: LocalBroker,
    site_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = _url(tls_broker)
    config = make_config(tmp_path, url, site_id, broker={"tls": {"ca_file": str(pki.other_ca)}})
    caplog.set_level(logging.ERROR, logger="edge.mqtt")
    agent = EdgeAgent(config, sources=[CountingSource(10, machines=1)]).start()
    try:
        wait_for(lambda: any("not trusted" in r.getMessage() for r in caplog.records))
    finally:
        stats = agent.stop()
    assert stats.acked_readings == 0
    (record,) = [r for r in caplog.records if "not trusted" in r.getMessage()]  # said once
    assert re.fullmatch(
        f"the TLS certificate of the broker at mqtts://127.0.0.1:{tls_broker.port} is not "
        f"trusted \\({UNTRUSTED}\\); set broker.tls.ca_file to the CA that signed it",
        record.getMessage(),
    )


def test_the_listener_speaks_tls_only(tls_broker: LocalBroker) -> None:
    """A plain MQTT client gets no CONNACK: what the tests above sent went over TLS."""
    plain = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"plain-{uuid.uuid4().hex[:6]}")
    connected = threading.Event()
    plain.on_connect = lambda *_: connected.set()
    plain.connect("127.0.0.1", tls_broker.port)
    plain.loop_start()
    try:
        assert not connected.wait(2)
    finally:
        plain.disconnect()
        plain.loop_stop()


def test_the_ca_file_setting_is_checked_when_settings_are_built(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here, only that it exists\n")
    settings = Settings(mqtt_url="mqtts://broker.example:8883", mqtt_ca_file=ca)
    assert (settings.broker.tls, settings.broker.ca_file) == (True, ca)
    assert Settings(mqtt_url="mqtts://broker.example").broker.ca_file is None
    with pytest.raises(ValidationError, match="use mqtts://"):
        Settings(mqtt_url="mqtt://broker.example", mqtt_ca_file=ca)
    with pytest.raises(ValidationError, match="mqtt_ca_file"):
        Settings(mqtt_url="mqtts://broker.example", mqtt_ca_file=tmp_path / "missing.pem")


def test_the_ca_file_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x\n")
    monkeypatch.setenv("TONLE_MQTT_URL", "mqtts://broker.example")
    monkeypatch.setenv("TONLE_MQTT_CA_FILE", str(ca))
    assert Settings().broker.ca_file == ca

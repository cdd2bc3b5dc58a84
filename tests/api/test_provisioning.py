"""Edge provisioning end to end: the API's login and files, enforced by a real Mosquitto."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from api.app import create_app
from api.broker_files import check_mosquitto_hash
from edge.config import parse_config
from tests.api.conftest import Seeded, bearer
from tonle.local_services import LocalBroker
from tonle.settings import Settings

pytestmark = [pytest.mark.db, pytest.mark.mqtt]

INGESTER = ("ingest", "ingest-secret")
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def client(database_url: str, seeded: Seeded) -> Iterator[TestClient]:
    """The app, with the ingester's login in its MQTT URL (as `tonle ingest` has it)."""
    user, password = INGESTER
    settings = Settings(database_url=database_url, mqtt_url=f"mqtt://{user}:{password}@127.0.0.1:1")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class Session:
    """A paho client connected (or refused) with a login; it records what it receives."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.connack = threading.Event()
        self.reason: ReasonCode | None = None
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"t-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connack.wait(TIMEOUT_S), "no CONNACK"

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, reason: ReasonCode, props: Properties | None
    ) -> None:
        self.reason = reason
        self.connack.set()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received.append((message.topic, message.payload))

    @property
    def accepted(self) -> bool:
        """Whether the broker accepted the login."""
        return self.reason is not None and not self.reason.is_failure

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(TIMEOUT_S)

    def wait_for(self, payload: bytes) -> None:
        """Wait until a message with ``payload`` has arrived."""
        deadline = time.monotonic() + TIMEOUT_S
        while payload not in [p for _, p in self.received]:
            assert time.monotonic() < deadline, f"{payload!r} never arrived: {self.received}"
            time.sleep(0.02)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def _write_broker_files(client: TestClient, admin: dict[str, str], broker: LocalBroker) -> None:
    files = client.get("/broker/acl", headers=admin).json()
    (broker.workdir / "passwd").write_text(files["passwd"])
    (broker.workdir / "acl").write_text(files["acl"])


@pytest.fixture
def secured_broker() -> Iterator[LocalBroker]:
    """A private Mosquitto that checks passwords and the ACL (files written before start)."""
    broker = LocalBroker()
    broker.extra_config = [
        "allow_anonymous false",
        f"password_file {broker.workdir / 'passwd'}",
        f"acl_file {broker.workdir / 'acl'}",
    ]
    yield broker
    broker.close()


def _provision(client: TestClient, admin: dict[str, str], site: str, edge_id: str,
               broker_url: str) -> dict[str, Any]:  # fmt: skip
    response = client.post(
        f"/sites/{site}/edges", json={"edge_id": edge_id, "broker_url": broker_url}, headers=admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_edge_login_publishes_only_under_its_site(
    client: TestClient, seeded: Seeded, secured_broker: LocalBroker, tmp_path: Path
) -> None:
    admin = bearer(seeded.tokens["admin"])
    edge = _provision(client, admin, "alpha", "gw-a", secured_broker.url)
    assert edge["username"] == "alpha.gw-a" and edge["revoked_at"] is None
    _write_broker_files(client, admin, secured_broker)
    secured_broker.start()

    ingester = Session(secured_broker.port, *INGESTER)
    edge_session = Session(secured_broker.port, edge["username"], edge["password"])
    try:
        assert ingester.accepted and edge_session.accepted
        ingester.client.subscribe("tonle/v1/#", qos=1)
        assert ingester.subscribed.wait(TIMEOUT_S)
        edge_session.publish("tonle/v1/alpha/sew/m1/telemetry", b"mine")
        edge_session.publish("tonle/v1/beta/cut/c1/telemetry", b"not mine")
        edge_session.publish("tonle/v1/alpha/_edge/gw-other/status", b"impostor")
        edge_session.publish("tonle/v1/alpha/_edge/gw-a/status", b"online", retain=True)
        ingester.wait_for(b"online")  # published last, so anything before it has arrived
        assert ingester.received == [
            ("tonle/v1/alpha/sew/m1/telemetry", b"mine"),
            ("tonle/v1/alpha/_edge/gw-a/status", b"online"),
        ]
    finally:
        edge_session.close()
        ingester.close()
    wrong = Session(secured_broker.port, edge["username"], "not-the-password")
    wrong.close()
    assert not wrong.accepted


def test_a_revoked_edge_cannot_connect(
    client: TestClient, seeded: Seeded, secured_broker: LocalBroker
) -> None:
    admin = bearer(seeded.tokens["admin"])
    edge = _provision(client, admin, "alpha", "gw-r", secured_broker.url)
    revoked = client.delete("/sites/alpha/edges/gw-r", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    files = client.get("/broker/acl", headers=admin).json()
    assert "alpha.gw-r" not in files["passwd"] and "alpha.gw-r" not in files["acl"]
    _write_broker_files(client, admin, secured_broker)
    secured_broker.start()
    session = Session(secured_broker.port, edge["username"], edge["password"])
    session.close()
    assert not session.accepted


def test_edge_yaml_loads_with_the_edge_agent(
    client: TestClient, seeded: Seeded, tmp_path: Path
) -> None:
    admin = bearer(seeded.tokens["admin"])
    edge = _provision(client, admin, "beta", "gw-y", "mqtts://broker.example.org:8883")
    (tmp_path / "edge.yaml").write_text(edge["edge_yaml"])
    config = parse_config(yaml.safe_load(edge["edge_yaml"]), base_dir=tmp_path)
    assert (config.site, config.edge_id) == ("beta", "gw-y")
    address = config.broker.address()
    assert (address.host, address.port, address.tls) == ("broker.example.org", 8883, True)
    assert (address.username, address.password) == ("beta.gw-y", edge["password"])
    assert [source.type for source in config.sources] == ["system"]
    # Only the hash is kept, in the broker's own format.
    passwd = client.get("/broker/acl", headers=admin).json()["passwd"]
    stored = dict(line.split(":", 1) for line in passwd.splitlines())["beta.gw-y"]
    assert check_mosquitto_hash(edge["password"], stored)
    assert edge["password"] not in passwd


def test_edge_yaml_defaults_to_the_apis_broker_without_its_login(
    client: TestClient, seeded: Seeded
) -> None:
    admin = bearer(seeded.tokens["admin"])
    edge = client.post("/sites/beta/edges", json={"edge_id": "gw-d"}, headers=admin).json()
    document = yaml.safe_load(edge["edge_yaml"])
    assert document["broker"]["url"] == "mqtt://127.0.0.1:1"
    assert INGESTER[1] not in edge["edge_yaml"]


def test_a_second_edge_with_the_same_id_is_409_and_the_password_is_not_shown_again(
    client: TestClient, seeded: Seeded
) -> None:
    admin = bearer(seeded.tokens["admin"])
    first = client.post("/sites/beta/edges", json={"edge_id": "gw-2x"}, headers=admin)
    assert first.status_code == 201
    again = client.post("/sites/beta/edges", json={"edge_id": "gw-2x"}, headers=admin)
    assert again.status_code == 409 and first.json()["password"] not in again.text
    revoked = client.delete("/sites/beta/edges/gw-2x", headers=admin)
    assert "password" not in revoked.json()
    assert client.delete("/sites/beta/edges/nope", headers=admin).status_code == 404
    bad = client.post("/sites/beta/edges", json={"edge_id": "GW"}, headers=admin)
    assert bad.status_code == 422


def test_tonle_broker_acl_writes_both_files(
    client: TestClient, seeded: Seeded, database_url: str, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from tonle.cli import app

    admin = bearer(seeded.tokens["admin"])
    edge = _provision(client, admin, "beta", "gw-cli", "mqtt://127.0.0.1:1883")
    env = {"TONLE_DATABASE_URL": database_url, "TONLE_MQTT_URL": "mqtt://ing:pw@127.0.0.1:1883"}
    result = CliRunner().invoke(app, ["broker", "acl", "--out", str(tmp_path / "b")], env=env)
    assert result.exit_code == 0, result.output
    passwd = (tmp_path / "b" / "passwd").read_text()
    users = dict(line.split(":", 1) for line in passwd.splitlines())
    assert check_mosquitto_hash(edge["password"], users["beta.gw-cli"])
    assert check_mosquitto_hash("pw", users["ing"])
    acl = (tmp_path / "b" / "acl").read_text()
    assert "user beta.gw-cli\ntopic write tonle/v1/beta/+/+/telemetry\n" in acl
    assert "user ing\ntopic read tonle/v1/#\n" in acl

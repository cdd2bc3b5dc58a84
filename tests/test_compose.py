"""The compose stack, checked without Docker: the file, the Dockerfile and the broker config.

Everything docker-compose.yml names must exist and agree with the code: the `tonle`
commands and options, the TONLE_ settings, the variables of .env.example, the files
Mosquitto reads. The Mosquitto config itself runs in a real Mosquitto, on the files
`tonle broker acl` writes from a real registry, and the Grafana role script runs
against a real PostgreSQL.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import typer
import typer.main
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel
from typer.testing import CliRunner

from api.broker_files import mosquitto_hash
from tonle.cli import app
from tonle.db.migrate import migrate
from tonle.local_services import free_port, wait_for_port
from tonle.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
GRAFANA_ROLE_SCRIPT = ROOT / "deploy" / "postgres" / "10-grafana-reader.sh"
LAYOUTS = ROOT / "simulators" / "layouts"

INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(?::?[-?+])[^}]*)?\}")
TIMEOUT_S = 10.0


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _is_tonle(service: dict[str, Any]) -> bool:
    """A service that runs the image built from this repository's Dockerfile."""
    return "build" in service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def _interpolate(value: str, values: dict[str, str]) -> str:
    """Replace ``${VAR}`` as Compose does, from ``values``; ``$$`` stays a literal ``$``."""
    return INTERPOLATION.sub(lambda m: values[m.group(1)], value).replace("$$", "$")


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            pairs[key.strip()] = value.strip()
    return pairs


def _click_command(args: list[str]) -> tuple[Any, list[str]]:
    """The command object that ``tonle <args>`` runs, and the arguments left for it."""
    command: Any = typer.main.get_command(app)
    path = ["tonle"]
    rest = list(args)
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        path.append(rest[0])
        command = command.commands[rest.pop(0)]
    assert not hasattr(command, "commands"), (
        f"`{' '.join(args)}`: {' '.join(path)} needs one of {sorted(command.commands)}"
    )
    return command, rest


def _tonle_invocations() -> list[tuple[str, list[str]]]:
    """(service, argv) of every `tonle` run the file asks for: commands and healthchecks."""
    found = []
    for name, service in _services().items():
        if _is_tonle(service):
            command = service.get("command")
            assert isinstance(command, list), f"{name}: give command as a list of arguments"
            found.append((name, [str(arg) for arg in command]))
        test = service.get("healthcheck", {}).get("test", [])
        words = str(test[1]).split() if test[:1] == ["CMD-SHELL"] else [str(w) for w in test[1:]]
        if words[:1] == ["tonle"]:
            found.append((f"{name} healthcheck", words[1:]))
    return found


def _setting_exists(name: str) -> bool:
    """Whether TONLE_<name> is a field of :class:`Settings` (``__`` for nested sections)."""
    model: type[BaseModel] = Settings
    parts = name.lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if i < len(parts) - 1:
            annotation = field.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _host_path(volume: str | dict[str, Any]) -> str | None:
    """The host path of a bind mount, or None for a named volume."""
    if isinstance(volume, dict):
        return str(volume["source"]) if volume.get("type") == "bind" else None
    source = volume.split(":", 1)[0]
    return source if source.startswith((".", "/", "~")) else None


# ------------------------------------------------------------------- the file


def test_every_image_is_pinned_to_a_tag() -> None:
    images = {name: s["image"] for name, s in _services().items() if "image" in s}
    assert set(images) == set(_services()), "every service names its image (built or pulled)"
    for name, image in images.items():
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            base = line.split()[1]
            assert ":" in base and not base.endswith(":latest"), f"Dockerfile: {base} not pinned"


def test_bind_mounts_exist_and_named_volumes_are_declared() -> None:
    declared = set(_compose().get("volumes") or {})
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            host = _host_path(volume)
            if host is None:
                named = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
                assert named in declared, f"{name}: volume {named} is not declared"
            else:
                assert not host.startswith(("/", "~")), f"{name}: {host} is outside the repo"
                assert (ROOT / host).exists(), f"{name}: bind mount {host} does not exist"


def test_grafana_mounts_the_dashboards_as_code() -> None:
    volumes = _services()["grafana"]["volumes"]
    assert "./dashboards/provisioning:/etc/grafana/provisioning:ro" in volumes
    assert "./dashboards/json:/var/lib/grafana/dashboards/tonle:ro" in volumes


def test_every_tonle_command_and_option_is_real() -> None:
    invocations = _tonle_invocations()
    assert {service for service, _ in invocations} >= {
        "migrate", "broker-files", "ingest-1", "ingest-2", "analytics", "api",
        "simulate-garment", "simulate-food",
    }  # fmt: skip
    for service, argv in invocations:
        command, rest = _click_command(argv)
        try:  # parse the options as `tonle` would, without running anything
            command.make_context(" ".join(["tonle", *argv]), list(rest))
        except typer.TyperException as exc:
            pytest.fail(f"{service}: `tonle {' '.join(argv)}` is refused: {exc}")


def test_scheduled_analytics_and_simulated_layouts_are_understood() -> None:
    from analytics.runner import parse_every

    services = _services()
    command = services["analytics"]["command"]
    assert parse_every(command[command.index("--every") + 1]).total_seconds() == 15 * 60
    simulated_sites = set()
    for name, service in services.items():
        if service.get("command", [None])[0] == "simulate":
            assert service.get("profiles") == ["simulators"], f"{name} runs only on request"
            layout = service["command"][service["command"].index("--layout") + 1]
            simulated_sites.add(yaml.safe_load((LAYOUTS / f"{layout}.yaml").read_text())["site"])
    # The simulators' login may publish as exactly the sites the simulators run.
    acl = services["broker-files"]["command"]
    allowed = {acl[i + 1] for i, arg in enumerate(acl) if arg == "--simulator-site"}
    assert allowed == simulated_sites == {"garment-pp", "food-pp"}


def test_every_interpolated_variable_is_in_env_example_and_no_other() -> None:
    used = set(INTERPOLATION.findall(COMPOSE.read_text()))
    listed = _env_example()
    assert used == set(listed), f"only in compose: {used - set(listed)}; only in .env.example: " \
        f"{set(listed) - used}"  # fmt: skip
    for key, value in listed.items():
        assert value in ("", "change-me") or "PASSWORD" not in key, f"{key}: use a placeholder"


def test_no_secret_is_written_in_the_file() -> None:
    text = COMPOSE.read_text()
    secret_key = re.compile(r"(?i)[\w-]*(password|passwd|secret|token)[\w-]*\s*[:=]\s*(\S+)")
    for match in secret_key.finditer(INTERPOLATION.sub("${VAR}", text)):
        assert match.group(2).startswith("${"), f"secret literal: {match.group(0)}"
    for match in re.finditer(r"[a-z]+://[^:/@\s]+:([^@\s]*)@", text):
        assert INTERPOLATION.fullmatch(match.group(1)), f"password in a URL: {match.group(0)}"
    for match in re.finditer(r"\s-P\s+(\S+)", text):
        assert "$$" in match.group(1), f"password on a command line: {match.group(0)}"


def test_tonle_variables_are_real_settings_that_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    placeholders = {key: "placeholder1" for key in _env_example()}
    for name, service in _services().items():
        if not _is_tonle(service):
            continue
        command, _ = _click_command(service["command"])
        option_envvars = {p.envvar for p in command.params if isinstance(p.envvar, str)}
        env = _environment(service)
        for key in env:
            assert key.startswith("TONLE_"), f"{name}: {key} is not a Tonle setting"
            assert _setting_exists(key.removeprefix("TONLE_")) or key in option_envvars, (
                f"{name}: {key} is neither a Settings field nor an option of its command"
            )
        with monkeypatch.context() as patch:
            for key in [k for k in os.environ if k.startswith("TONLE_")]:
                patch.delenv(key)
            for key, value in env.items():
                patch.setenv(key, _interpolate(value, placeholders))
            Settings()  # validates: URLs parse, client ids and groups match their patterns


def test_two_ingesters_share_a_group_with_their_own_sessions() -> None:
    ingesters = [s for s in _services().values() if s.get("command", [None])[0] == "ingest"]
    assert len(ingesters) == 2
    envs = [_environment(s) for s in ingesters]
    assert len({env["TONLE_INGEST__CLIENT_ID"] for env in envs}) == 2
    assert len({env["TONLE_INGEST__GROUP"] for env in envs}) == 1
    assert all("replicas" not in s.get("deploy", {}) for s in ingesters)


def test_services_wait_for_what_they_need() -> None:
    services = _services()
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"migrate", "broker-files"}
    for name, service in services.items():
        assert service.get("restart") in ("no", "unless-stopped", "always"), name
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = (
                "service_completed_successfully"
                if dependency in one_shot
                else "service_healthy"
                if "healthcheck" in services[dependency]
                else "service_started"
            )
            assert spec["condition"] == wanted, f"{name} → {dependency}: {wanted}"

    def needs(name: str) -> set[str]:
        direct = set(services[name].get("depends_on") or {})
        return direct.union(*(needs(d) for d in direct)) if direct else set()

    assert set(services["migrate"]["depends_on"]) == {"timescaledb"}
    for name, service in services.items():
        if "TONLE_DATABASE_URL" in _environment(service) and name != "migrate":
            assert "migrate" in needs(name), f"{name} must start after the schema is migrated"
        if _is_tonle(service) and service["command"][0] in ("ingest", "simulate"):
            assert services[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert services["mosquitto"]["depends_on"] == {
        "broker-files": {"condition": "service_completed_successfully"}
    }
    assert all("healthcheck" in services[n] for n in ("timescaledb", "mosquitto", "api", "grafana"))


def test_published_ports_are_unique() -> None:
    published = []
    for service in _services().values():
        for port in service.get("ports", []):
            host_part = str(port).rsplit(":", 1)[0]
            published.append(host_part.split(":")[-1])
    assert published and len(published) == len(set(published))
    assert "8000" in published and "3000" in published and "1883" in published


def test_api_healthcheck_asks_a_real_route() -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    test = " ".join(_services()["api"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", test)
    assert path is not None
    # Liveness needs no database: the app answers it before its pool has opened.
    response = TestClient(create_app(Settings())).get(path.group(1))
    assert response.status_code == 200, response.text


def test_grafana_gets_every_variable_its_datasource_reads() -> None:
    env = _environment(_services()["grafana"])
    assert {"TONLE_GRAFANA_DB_HOST", "TONLE_GRAFANA_DB_NAME", "TONLE_GRAFANA_DB_USER",
            "TONLE_GRAFANA_DB_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD"} <= set(env)  # fmt: skip
    for source in sorted((ROOT / "dashboards/provisioning/datasources").glob("*.y*ml")):
        referenced = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)\}?", source.read_text()))
        assert referenced <= set(env), f"{source.name} reads {referenced - set(env)}"
    assert env["TONLE_GRAFANA_DB_HOST"] == "timescaledb:5432"


def test_dockerfile_copies_what_exists_and_every_package() -> None:
    text = DOCKERFILE.read_text()
    copied = []
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _ = line.split()[1:]
            copied += sources
    for source in copied:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include = \[(.*?)\]", pyproject)
    assert include is not None
    packages = {p.strip().strip('"').rstrip("*") for p in include.group(1).split(",")}
    assert packages | {"dashboards", "pyproject.toml", "README.md"} <= set(copied)
    assert re.search(r"^USER (?!root)\w+", text, re.M), "the services run as a non-root user"
    assert 'ENTRYPOINT ["tonle"]' in text and "pip install --no-cache-dir ." in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "tests"} <= set(ignored)


# ------------------------------------------------------------------- the broker


def _conf_directives(text: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            directives.setdefault(key, []).append(value.strip())
    return directives


def test_mosquitto_conf_reads_what_broker_files_writes() -> None:
    services = _services()
    conf = _conf_directives(MOSQUITTO_CONF.read_text())
    command = services["broker-files"]["command"]
    out = command[command.index("--out") + 1]
    assert conf["password_file"] == [f"{out}/passwd"] and conf["acl_file"] == [f"{out}/acl"]
    assert conf["allow_anonymous"] == ["false"] and conf["listener"] == ["1883"]
    assert conf["persistence"] == ["true"]
    assert int(conf["max_inflight_messages"][0]) >= 1000
    assert int(conf["max_queued_messages"][0]) >= 100_000
    writer = services["broker-files"]["volumes"]
    broker = services["mosquitto"]["volumes"]
    volume = next(v.split(":")[0] for v in writer if v.split(":")[1] == out)
    assert f"{volume}:{out}:ro" in broker
    assert "./deploy/mosquitto/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" in broker
    data = conf["persistence_location"][0].rstrip("/")
    assert any(v.split(":")[1] == data and _host_path(v) is None for v in broker)
    # The broker reads the files as its own uid (1883 in eclipse-mosquitto), after
    # dropping privileges; the files are 0640, so they must be written as that uid.
    assert services["broker-files"]["user"] == "1883:1883"
    assert "install -d -o 1883 -g 1883 -m 0750 " + out in DOCKERFILE.read_text()


def test_the_simulator_login_is_added_only_with_a_password_and_a_name_of_its_own() -> None:
    from api.provisioning import render_broker_files
    from tonle.errors import ConfigError
    from tonle.settings import parse_mqtt_url

    ingester = parse_mqtt_url("mqtt://ingest:pw@mosquitto:1883")
    edges = [("alpha", "gw-1", "alpha.gw-1", "$7$101$x$y")]
    without = render_broker_files(edges, ingester, parse_mqtt_url("mqtt://simulator:@m"), ["a"])
    assert "simulator" not in without.passwd and "simulator" not in without.acl
    files = render_broker_files(
        edges, ingester, parse_mqtt_url("mqtt://simulator:s3@m"), ["food-pp", "garment-pp"]
    )
    assert sorted(line.split(":")[0] for line in files.passwd.splitlines()) == [
        "alpha.gw-1", "ingest", "simulator",
    ]  # fmt: skip
    assert files.acl.endswith(
        "\n\nuser simulator\n"
        "topic write tonle/v1/food-pp/+/+/telemetry\ntopic write tonle/v1/food-pp/_edge/+/status\n"
        "topic write tonle/v1/garment-pp/+/+/telemetry\n"
        "topic write tonle/v1/garment-pp/_edge/+/status\n"
    )
    for url, sites in (("mqtt://ingest:s3@m", ["a"]), ("mqtt://alpha.gw-1:s3@m", ["a"]),
                       ("mqtt://simulator:s3@m", ["Bad/site"])):  # fmt: skip
        with pytest.raises(ConfigError):
            render_broker_files(edges, ingester, parse_mqtt_url(url), sites)


class _Client:
    """A paho MQTT 5 client that connects (or is refused) and records what it receives."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.connack = threading.Event()
        self.subscribed = threading.Event()
        self.refused: bool | None = None
        self.received: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )  # fmt: skip
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connack.wait(TIMEOUT_S), "no CONNACK"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.refused = bool(reason.is_failure)
        self.connack.set()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(TIMEOUT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _broker_config_for_test(text: str, port: int, files: Path, data: Path) -> str:
    """The stack's mosquitto.conf with only its port and paths moved to this test's."""
    replaced = {
        "listener 1883\n": f"listener {port} 127.0.0.1\n",
        "password_file /mosquitto/generated/passwd\n": f"password_file {files / 'passwd'}\n",
        "acl_file /mosquitto/generated/acl\n": f"acl_file {files / 'acl'}\n",
        "persistence_location /mosquitto/data/\n": f"persistence_location {data}/\n",
    }
    for old, new in replaced.items():
        assert text.count(old) == 1, f"mosquitto.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    """A directory the broker's own user can reach (pytest's basetemp is private)."""
    path = Path(tempfile.mkdtemp(prefix="tonle-compose-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _add_edge(database_url: str, site: str, edge_id: str, password: str) -> str:
    """Provision an edge in the registry, as the API does; its MQTT user name."""
    username = f"{site}.{edge_id}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sites (site, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (site, "Compose test"),
        )
        conn.execute(
            "INSERT INTO edge_credentials (site, edge_id, username, password_hash) "
            "VALUES (%s, %s, %s, %s)",
            (site, edge_id, username, mosquitto_hash(password)),
        )
    return username


def _run_broker_files(database_url: str, files: Path, logins: dict[str, str]) -> None:
    """Run `tonle broker acl` as the broker-files service does, writing into ``files``."""
    service = _services()["broker-files"]
    values = {"MQTT_INGEST_PASSWORD": logins["ingest_password"],
              "SIMULATOR_MQTT_PASSWORD": logins["simulator_password"],
              "POSTGRES_PASSWORD": "unused"}  # fmt: skip
    env = {key: _interpolate(value, values) for key, value in _environment(service).items()}
    env["TONLE_DATABASE_URL"] = database_url
    argv = list(service["command"])
    argv[argv.index("--out") + 1] = str(files)
    result = CliRunner().invoke(app, argv, env=env)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in files.iterdir()) == ["acl", "passwd"]
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in files.iterdir())
    if os.geteuid() == 0:  # as the service runs as the broker's uid: Mosquitto reads as that
        broker_user = pwd.getpwnam("mosquitto")
        files.chmod(0o750)
        for path in (files, *files.iterdir()):
            os.chown(path, broker_user.pw_uid, broker_user.pw_gid)


@dataclass
class StackBroker:
    """A Mosquitto on the stack's config, the files it reads, and the logins in them."""

    port: int
    process: subprocess.Popen[bytes]
    files: Path
    logins: dict[str, str]


@pytest.fixture
def stack_broker(database_url: str, broker_dir: Path) -> Iterator[StackBroker]:
    """A real Mosquitto running deploy/mosquitto/mosquitto.conf, with one provisioned edge."""
    site = f"s{uuid.uuid4().hex[:8]}"
    logins = {"edge_password": uuid.uuid4().hex, "ingest_password": uuid.uuid4().hex,
              "simulator_password": uuid.uuid4().hex, "site": site}  # fmt: skip
    logins["edge"] = _add_edge(database_url, site, "gw-1", logins["edge_password"])
    files = broker_dir / "generated"
    _run_broker_files(database_url, files, logins)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        pytest.fail("this test needs Mosquitto: apt-get install mosquitto")
    data = broker_dir / "data"
    data.mkdir()
    data.chmod(0o777)  # written by the broker's own user
    port = free_port()
    conf = broker_dir / "mosquitto.conf"
    conf.write_text(_broker_config_for_test(MOSQUITTO_CONF.read_text(), port, files, data))
    log = (broker_dir / "broker.log").open("wb")
    process = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port)
        yield StackBroker(port, process, files, logins)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
    assert b"Error" not in (broker_dir / "broker.log").read_bytes()


@pytest.mark.db
@pytest.mark.mqtt
def test_the_stack_broker_config_lets_in_only_the_registry_logins(
    stack_broker: StackBroker,
) -> None:
    port, logins = stack_broker.port, stack_broker.logins
    site = logins["site"]
    anonymous = _Client(port, None, None)
    anonymous.close()
    assert anonymous.refused
    wrong = _Client(port, "ingest", "not-the-password")
    wrong.close()
    assert wrong.refused

    ingester = _Client(port, "ingest", logins["ingest_password"])
    edge = _Client(port, logins["edge"], logins["edge_password"])
    simulator = _Client(port, "simulator", logins["simulator_password"])
    try:
        assert not (ingester.refused or edge.refused or simulator.refused)
        ingester.client.subscribe("$share/tonle/tonle/v1/+/+/+/telemetry", qos=1)
        assert ingester.subscribed.wait(TIMEOUT_S)
        edge.publish(f"tonle/v1/{site}/sew/m1/telemetry", b"edge, own site")
        edge.publish("tonle/v1/garment-pp/sew/m1/telemetry", b"edge, other site")
        simulator.publish("tonle/v1/garment-pp/sew/m1/telemetry", b"simulator, garment")
        simulator.publish(f"tonle/v1/{site}/sew/m1/telemetry", b"simulator, real site")
        simulator.publish("tonle/v1/food-pp/cook/k1/telemetry", b"simulator, food")
        deadline = time.monotonic() + TIMEOUT_S
        while len(ingester.received) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # anything refused would have arrived by now
        assert sorted(payload for _, payload in ingester.received) == [
            b"edge, own site", b"simulator, food", b"simulator, garment",
        ]  # fmt: skip
    finally:
        for client in (ingester, edge, simulator):
            client.close()


@pytest.mark.db
@pytest.mark.mqtt
def test_the_mosquitto_healthcheck_passes_with_the_ingester_login_only(
    stack_broker: StackBroker,
) -> None:
    port, logins = stack_broker.port, stack_broker.logins
    test = _services()["mosquitto"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    command = _interpolate(test[1], {}).replace("-p 1883", f"-p {port}")
    assert f"-p {port}" in command

    def run(password: str) -> int:
        env = {**os.environ, "MQTT_INGEST_PASSWORD": password}
        return subprocess.run(["sh", "-c", command], env=env, timeout=30).returncode

    assert run(logins["ingest_password"]) == 0
    assert run("not-the-password") != 0


@pytest.mark.db
@pytest.mark.mqtt
def test_an_edge_provisioned_later_gets_in_after_regenerating_and_sighup(
    stack_broker: StackBroker, database_url: str
) -> None:
    password = uuid.uuid4().hex
    username = _add_edge(database_url, stack_broker.logins["site"], "gw-2", password)
    before = _Client(stack_broker.port, username, password)
    before.close()
    assert before.refused
    # docker compose run --rm broker-files && docker compose kill -s HUP mosquitto
    _run_broker_files(database_url, stack_broker.files, stack_broker.logins)
    stack_broker.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        after = _Client(stack_broker.port, username, password)
        after.close()
        if not after.refused or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not after.refused


# ------------------------------------------------------------ Grafana's login


@pytest.mark.db
def test_grafana_role_script_makes_a_read_only_login_for_later_tables(
    empty_database_url: str,
) -> None:
    params = conninfo_to_dict(empty_database_url)
    reader = f"grafana_t_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PGHOST": str(params.get("host", "127.0.0.1")),
        "PGPORT": str(params.get("port", 5432)),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_DB": str(params["dbname"]),
        "GRAFANA_DB_USER": reader,
        "GRAFANA_DB_PASSWORD": "it's-a-pa$$word",
    }
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    try:
        done = subprocess.run(["sh", str(GRAFANA_ROLE_SCRIPT)], env=env, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        migrate(empty_database_url, create_database=False)  # the tables come afterwards
        with psycopg.connect(empty_database_url, autocommit=True) as admin:
            admin.execute("INSERT INTO sites (site, name) VALUES ('s1', 'One')")
            stored = admin.execute(
                "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (reader,)
            ).fetchone()
        assert stored == (True,)
        with psycopg.connect(empty_database_url, user=reader, autocommit=True) as conn:
            assert conn.execute("SELECT site FROM sites").fetchall() == [("s1",)]
            assert conn.execute("SELECT count(*) FROM telemetry").fetchone() == (0,)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO sites (site, name) VALUES ('s2', 'Two')")
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO sites (site, name) VALUES ('s2', 'Two')")
    finally:
        with psycopg.connect(empty_database_url, autocommit=True) as admin:
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (reader,))
            if exists.fetchone():
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))

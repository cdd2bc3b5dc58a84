"""Real services for the tests: PostgreSQL and Mosquitto, found or started privately.

PostgreSQL: ``TONLE_TEST_DATABASE_URL`` (an admin URL) if set, else the server on
127.0.0.1:5432 if one answers, else an embedded server started for this session.
MQTT: a private Mosquitto on a free port (so the tests never see another run's
retained messages or sessions), else ``TONLE_TEST_MQTT_URL``. A missing service fails
the run with what to install; it never skips.

Each test module gets a fresh, migrated database; each test uses its own site ids.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tonle.db.migrate import migrate
from tonle.local_services import EmbeddedPostgres, LocalBroker, port_open

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin URL of a real PostgreSQL server that may create databases."""
    configured = os.environ.get("TONLE_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if port_open("127.0.0.1", 5432):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
        try:
            with psycopg.connect(url, connect_timeout=5):
                pass
        except psycopg.Error as exc:
            pytest.fail(
                f"PostgreSQL on 127.0.0.1:5432 refused the tests ({exc}); set "
                "TONLE_TEST_DATABASE_URL to an admin URL"
            )
        yield url
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg")).start()
    try:
        yield server.url
    finally:
        server.stop()


def _fresh_database(admin_url: str, label: str) -> str:
    name = f"tonle_t_{label[:30]}_{uuid.uuid4().hex[:8]}".lower().replace("-", "_")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(admin_url, dbname=name)


def _drop_database(admin_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


@pytest.fixture(scope="module")
def database_url(pg_admin_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with the Tonle schema, owned by one test module."""
    url = _fresh_database(pg_admin_url, request.module.__name__.rsplit(".", 1)[-1])
    migrate(url, create_database=False)
    yield url
    _drop_database(pg_admin_url, url)


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database without any schema, owned by one test."""
    url = _fresh_database(pg_admin_url, "empty")
    yield url
    _drop_database(pg_admin_url, url)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit connection to the module's database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[LocalBroker | str]:
    """The session's broker: a private Mosquitto, or TONLE_TEST_MQTT_URL."""
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        broker = LocalBroker().start()
        try:
            yield broker
        finally:
            broker.close()
        return
    configured = os.environ.get("TONLE_TEST_MQTT_URL")
    if configured:
        yield configured
        return
    pytest.fail(
        "no MQTT broker: install Mosquitto (apt-get install mosquitto) or set TONLE_TEST_MQTT_URL"
    )


@pytest.fixture(scope="session")
def mqtt_url(mqtt_broker: LocalBroker | str) -> str:
    """The URL of the session's broker."""
    return mqtt_broker if isinstance(mqtt_broker, str) else mqtt_broker.url


@pytest.fixture
def private_broker() -> Iterator[LocalBroker]:
    """A Mosquitto of this test's own, which the test may stop and start."""
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.fail("this test needs Mosquitto: apt-get install mosquitto")
    broker = LocalBroker().start()
    yield broker
    broker.close()


@pytest.fixture
def site_id() -> str:
    """A site id no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return list(process.cmdline())
    except psutil.NoSuchProcess:
        return [f"pid {process.pid}, gone"]


def _running(process: psutil.Process) -> bool:
    """Alive and not a zombie; a process that ends while it is looked at is not running."""
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(autouse=True)
def _no_leftover_threads_or_processes() -> Iterator[None]:
    """Fail a test that leaves threads or child processes running."""
    threads_before = set(threading.enumerate())
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 5
    while True:
        extra_threads = [
            t for t in threading.enumerate() if t not in threads_before and t.is_alive()
        ]
        extra_children = [
            p for p in me.children(recursive=True) if p.pid not in children_before and _running(p)
        ]
        if (not extra_threads and not extra_children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra_threads, f"test left threads running: {[t.name for t in extra_threads]}"
    assert not extra_children, (
        f"test left processes running: {[_cmdline(p) for p in extra_children]}"
    )

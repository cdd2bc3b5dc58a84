"""`tonle demo` as a newcomer runs it: a subprocess with nothing configured.

Each test starts the real command with TONLE_DATABASE_URL and TONLE_MQTT_URL removed,
so it brings up its own embedded PostgreSQL and broker, and talks to what it prints.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from tonle.local_services import EmbeddedPostgres, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.mqtt, pytest.mark.db]

READY = "Ctrl-C to stop."
SITES = {"garment-pp", "food-pp"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TONLE_DATABASE_URL", "TONLE_MQTT_URL")}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra})
    return env


class Demo:
    """A running `tonle demo` and the lines it has printed."""

    def __init__(self, workdir: Path, *args: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tonle", "demo", "--workdir", str(workdir), *args],
            env=_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout_s: float) -> None:
        """Read lines until one contains ``text``; fail with the output otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return
        pytest.fail(f"`tonle demo` never printed {text!r}:\n" + self.output)

    def finish(self, timeout_s: float) -> int:
        """Wait for the exit; the exit status."""
        code = self.process.wait(timeout=timeout_s)
        self._reader.join(10)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None) is not None:
            self.lines.append(line)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def printed(self, label: str) -> str:
        """The value printed after ``label`` on the where-to-look lines."""
        for line in self.lines:
            found = re.match(rf"\s+{label}\s+(\S+)", line)
            if found:
                return found[1]
        pytest.fail(f"no {label!r} line in:\n{self.output}")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "demo"
    # Nothing of the demo may outlive it: no process names its work directory.
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if _mentions(p, tmp_path)]
    assert left == []


def _mentions(process: psutil.Process, path: Path) -> bool:
    try:
        return any(str(path) in part for part in process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _get(url: str, token: str | None) -> Any:
    """GET ``url`` and decode its JSON; fail unless it answers 200."""
    request = urllib.request.Request(url)  # noqa: S310 - http://127.0.0.1 only
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.status == 200
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        pytest.fail(f"GET {url}: {exc.code} {exc.read()[:500]!r}")


def _readings(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (sensor_id, ts)) FROM readings"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_demo_serves_streams_stops_and_reuses(workdir: Path) -> None:
    port = free_port()
    demo = Demo(workdir, "--days", "0.05", "--port", str(port))
    try:
        demo.wait_for(READY, timeout_s=150)
        token = demo.printed("API token")
        database_url = demo.printed("database")
        assert f"http://127.0.0.1:{port}/#token={token}" in demo.output
        children = psutil.Process(demo.process.pid).children(recursive=True)
        assert len(children) >= 5  # broker, ingester, API, two feeds
        base = f"http://127.0.0.1:{port}"
        assert _get(f"{base}/healthz", None) == {"status": "ok"}
        portfolio = _get(f"{base}/portfolio", token)
        assert {site["site"] for site in portfolio} == SITES
        assert _get(f"{base}/sites/garment-pp/energy", token)["intervals"]
        # Live data keeps arriving (most series are sampled every 10 s, so wait for it).
        before, _ = _readings(database_url)
        deadline = time.monotonic() + 40
        while (after := _readings(database_url)[0]) == before and time.monotonic() < deadline:
            time.sleep(1)
        assert after > before
        after, distinct = _readings(database_url)
        assert distinct == after
        demo.process.send_signal(signal.SIGINT)
        assert demo.finish(timeout_s=90) == 0, demo.output
    finally:
        if demo.process.poll() is None:  # a failed assertion above: stop it all the same
            demo.process.send_signal(signal.SIGINT)
            try:
                demo.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.process.kill()
                demo.process.wait()
    assert "stopped cleanly" in demo.output
    # multiprocessing's resource tracker leaves once it sees the demo gone: a moment later.
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    stored_first = after

    again = Demo(workdir, "--no-live")
    assert again.finish(timeout_s=120) == 0, again.output
    for site in SITES:
        assert f"{site}: reusing the stored readings" in again.output
    # Only the minutes since the first run are backfilled, not the whole history again.
    emitted = [int(n.replace(",", "")) for n in re.findall(r"of ([\d,]+) readings", again.output)]
    assert len(emitted) == 2 and sum(emitted) < stored_first / 4, again.output
    server = EmbeddedPostgres(workdir / "pg").start()
    try:
        total, distinct = _readings(server.database_url("tonle"))
    finally:
        server.stop()
    assert distinct == total
    assert stored_first <= total < stored_first * 1.25


def test_demo_on_amqtt_backfills_exactly(workdir: Path) -> None:
    demo = Demo(workdir, "--days", "0.03", "--no-live", TONLE_DEMO_BROKER="amqtt")
    assert demo.finish(timeout_s=150) == 0, demo.output
    assert "private amqtt broker" in demo.output
    exact = [line for line in demo.lines if "exactly" in line]
    assert len(exact) == 2, demo.output

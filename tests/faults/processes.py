"""`tonle ingest` and an edge gateway as separate processes, which a test may kill.

Shared by the fault matrix (``tests/faults``) and the ingester crash tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from tests.mqtt_helpers import wait_until

REPO = Path(__file__).resolve().parents[2]


class _ChildProcess:
    """A child process whose stderr lines are collected as they come."""

    name = "child"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.reader = threading.Thread()

    def _spawn(self, argv: Sequence[str]) -> None:
        self.lines = []
        self.process = subprocess.Popen(
            list(argv),
            env=self.env,
            cwd=REPO,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        stream = self.process.stderr
        assert stream is not None
        self.reader = threading.Thread(
            target=lambda: self.lines.extend(stream), name=f"{self.name}-stderr", daemon=True
        )
        self.reader.start()

    def wait_for_line(self, text: str, timeout_s: float = 20) -> None:
        """Wait until the process has logged a line containing ``text``."""
        try:
            wait_until(lambda: any(text in line for line in self.lines), timeout_s=timeout_s)
        except AssertionError:
            raise AssertionError(
                f"{self.name} did not log {text!r} within {timeout_s} s; its last lines:\n"
                + "".join(self.lines[-20:])
            ) from None

    def logged(self, text: str) -> int:
        """How many lines so far contain ``text``."""
        return sum(text in line for line in self.lines)

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> int:
        """Send ``signum``, wait for the exit and every line written; return the exit code."""
        assert self.process is not None
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self.reader.join(10)
            raise AssertionError(
                f"{self.name} did not exit within 30 s; its last lines:\n"
                + "".join(self.lines[-20:])
            ) from None
        self.process = None
        self.reader.join(10)  # every line the process wrote has been read
        return code

    def wait_exit(self, timeout_s: float = 30) -> int:
        """Wait for the process to end by itself; return its exit code."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still runs after {timeout_s} s; its last lines:\n"
                + "".join(self.lines[-20:])
            ) from None
        self.process = None
        self.reader.join(10)
        return code

    def close(self) -> None:
        """Kill the process if it still runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            self.reader.join(10)


class IngestProcess(_ChildProcess):
    """`tonle ingest` as a separate process, as an operator runs it."""

    name = "tonle ingest"

    def __init__(
        self,
        database_url: str,
        mqtt_url: str,
        client_id: str,
        group: str,
        **ingest: str,
    ) -> None:
        env = {
            **os.environ,
            "TONLE_DATABASE_URL": database_url,
            "TONLE_MQTT_URL": mqtt_url,
            "TONLE_INGEST__CLIENT_ID": client_id,
            "TONLE_INGEST__GROUP": group,
            "TONLE_INGEST__MAX_DELAY_S": "0.2",
        }
        env.update({f"TONLE_INGEST__{key.upper()}": value for key, value in ingest.items()})
        super().__init__(env)
        self.client_id = client_id

    def start(self, *, wait_subscribed: bool = True) -> None:
        """Start the process and, by default, wait until it has subscribed."""
        self._spawn([sys.executable, "-m", "tonle", "ingest"])
        if wait_subscribed:
            self.wait_for_line("subscribed to")


class EdgeProcess(_ChildProcess):
    """An edge agent as a separate process (``tests.faults.edge_child``), which may be killed."""

    name = "edge agent"

    def __init__(self, config: Path, sampled_log: Path) -> None:
        super().__init__({**os.environ})
        self.config = config
        self.sampled_log = sampled_log

    def start(self, *, first: int, count: int, rate_per_s: float) -> None:
        """Sample readings ``first`` … ``first + count - 1`` at ``rate_per_s``."""
        self._spawn(
            [
                sys.executable,
                "-m",
                "tests.faults.edge_child",
                str(self.config),
                str(self.sampled_log),
                str(first),
                str(count),
                str(rate_per_s),
            ]
        )
        self.wait_for_line("running 1 sources")

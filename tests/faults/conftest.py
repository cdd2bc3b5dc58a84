"""Fixtures for the fault matrix: processes the tests start, kill and always clean up."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.faults.processes import EdgeProcess, IngestProcess


@pytest.fixture
def ingest_processes() -> Iterator[Callable[..., IngestProcess]]:
    """Make `tonle ingest` processes (not yet started); every one is killed at the end."""
    made: list[IngestProcess] = []

    def make(database_url: str, mqtt_url: str, *, group: str, **ingest: str) -> IngestProcess:
        client_id = f"fault-{uuid.uuid4().hex[:8]}"
        proc = IngestProcess(database_url, mqtt_url, client_id, group, **ingest)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.close()


@pytest.fixture
def group() -> str:
    """A shared-subscription group no other test uses."""
    return f"g{uuid.uuid4().hex[:8]}"


@pytest.fixture
def edge_processes() -> Iterator[list[EdgeProcess]]:
    """Edge processes a test registers here are killed at the end."""
    made: list[EdgeProcess] = []
    yield made
    for proc in made:
        proc.close()

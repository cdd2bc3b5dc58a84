"""``tonle edge --check``: what the devices said, and whether every one answered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edge.check import run_check
from edge.sources import Sample

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@dataclass
class Device:
    """A source that reports its status, then readings, every few milliseconds."""

    machine: str
    online: bool = True
    name: str = "device"
    realtime: bool = True

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        yield Sample("l", self.machine, "device_online", T0, 1.0 if self.online else 0.0)
        i = 0
        while self.online and not stop.wait(0.01):
            yield Sample(
                "l", self.machine, "active_power", T0 + timedelta(seconds=i), float(i), "W"
            )
            i += 1


class Broken:
    """A source whose library raised."""

    name = "broken"
    realtime = True

    def samples(self, stop: threading.Event) -> Iterator[Sample]:
        raise RuntimeError("serial port vanished")
        yield  # pragma: no cover - makes this a generator


def test_the_latest_reading_of_every_series_is_kept() -> None:
    result = run_check([Device("m1"), Device("m2")], seconds=0.3)
    assert result.ok
    assert result.machines() == [("l", "m1"), ("l", "m2")]
    latest = result.latest[("l", "m1", "active_power")]
    assert latest.value > 3  # the last of many, not the first
    assert result.readings > 8


def test_an_offline_device_fails_the_check() -> None:
    result = run_check([Device("m1"), Device("m2", online=False)], seconds=0.2)
    assert result.offline() == [("l", "m2")]
    assert not result.ok


def test_a_failing_source_is_reported_and_the_others_still_read() -> None:
    result = run_check([Device("m1"), Broken()], seconds=0.2)
    assert result.failed_sources == ["broken: serial port vanished"]
    assert ("l", "m1", "active_power") in result.latest
    assert not result.ok


def test_nothing_read_is_not_a_pass() -> None:
    assert not run_check([], seconds=0.05).ok

"""The sampling discipline of polled and subscribed devices: a steady clock and a deadband.

:class:`Ticker` keeps a source on its grid (``start + k * interval``) however long each
poll takes: a late poll does not shift the ones after it, and polls missed while the
device was slow are skipped and counted, never fired in a burst.

:class:`ChangeFilter` decides which readings are worth publishing. With no deadband
set for a metric, every reading is; with one, a reading goes out when it moved more
than the deadband from the last one published, or when the heartbeat is due, so a
flat value still shows that the device answers. Cumulative registers (``energy``)
pass through as read: the analytics turn counter readings into kWh.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from edge.config import MetricSampling, SamplingRules
from edge.sources import Sample

_EVERY_READING = MetricSampling()


def rule_for(rules: SamplingRules, metric: str) -> MetricSampling:
    """The rule of ``metric``: its own, else the ``"*"`` default, else every reading."""
    return rules.get(metric) or rules.get("*") or _EVERY_READING


@dataclass(slots=True)
class _Last:
    value: float
    ts: datetime
    published: Sample
    at_s: float  # the gateway's monotonic clock when it was published


class ChangeFilter:
    """Deadband and heartbeat per (line, machine, metric).

    Args:
        rule: the sampling rule of a sample's series.
        clock: the gateway's monotonic clock, for heartbeats (a test passes a fake one).
    """

    def __init__(
        self, rule: Callable[[Sample], MetricSampling], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rule = rule
        self._clock = clock
        self._last: dict[tuple[str, str, str], _Last] = {}
        self.suppressed = 0  # readings held back by a deadband

    def admit(self, sample: Sample) -> bool:
        """True if ``sample`` is to be published (and remember it if so)."""
        rule = self._rule(sample)
        key = (sample.line, sample.machine, sample.metric)
        last = self._last.get(key)
        if rule.deadband is not None and last is not None and not self._due(rule, last, sample):
            self.suppressed += 1
            return False
        self._last[key] = _Last(sample.value, sample.ts, sample, self._clock())
        return True

    def heartbeats(self) -> list[Sample]:
        """The last published value of every deadbanded series whose heartbeat is due:
        for subscriptions, where an unchanged value sends nothing.

        Due and stamped by the time gone by on the gateway's own clock since the value
        was published, added to the value's timestamp: a device whose clock is off
        gets its heartbeats at the right pace, in its own time. Call it only while the
        device is known to be connected, so a value is never repeated for a device that
        stopped answering.
        """
        now_s = self._clock()
        due: list[Sample] = []
        for key, last in self._last.items():
            rule = self._rule(last.published)
            elapsed_s = now_s - last.at_s
            if rule.deadband is None or elapsed_s < rule.heartbeat_s:
                continue
            ts = last.ts + timedelta(milliseconds=round(elapsed_s * 1000))
            sample = replace(last.published, ts=ts)
            self._last[key] = _Last(last.value, ts, sample, now_s)
            due.append(sample)
        return due

    def forget(self, line: str, machine: str) -> None:
        """Drop what was published for a machine, so its next reading goes out (after an outage)."""
        for key in [k for k in self._last if k[0] == line and k[1] == machine]:
            del self._last[key]

    @staticmethod
    def _due(rule: MetricSampling, last: _Last, sample: Sample) -> bool:
        if sample.ts - last.ts >= timedelta(seconds=rule.heartbeat_s):
            return True
        if math.isnan(sample.value) or math.isnan(last.value):
            return math.isnan(sample.value) != math.isnan(last.value)
        deadband = rule.deadband or 0.0
        change = abs(sample.value - last.value)
        return change > deadband if deadband > 0 else change != 0


class Ticker:
    """Ticks on the grid ``first + k * interval_s`` of the monotonic clock.

    Args:
        interval_s: time between ticks.
        clock: the monotonic clock (a test passes a fake one).
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = interval_s
        self.missed = 0  # ticks skipped because the previous work overran them
        self._clock = clock
        self._next: float | None = None

    def wait(self, stop: threading.Event) -> bool:
        """Sleep until the next tick; False if ``stop`` was set first.

        The first call returns at once. A tick whose time has passed by more than one
        interval is skipped (counted in ``missed``) rather than fired late.
        """
        now = self._clock()
        if self._next is None:
            self._next = now
        elif now > self._next:
            behind = int((now - self._next) // self.interval_s)
            self.missed += behind
            self._next += behind * self.interval_s
        delay = self._next - now
        if delay > 0 and stop.wait(delay):
            return False
        self._next += self.interval_s
        return not stop.is_set()

"""The sampling discipline: the ticker keeps its grid, the deadband and heartbeat filter."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from edge.config import MetricSampling
from edge.discipline import ChangeFilter, Ticker, rule_for
from edge.sources import Sample

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that advances only when the fake stop event waits on it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ClockedStop(threading.Event):
    """An event whose ``wait`` advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        self.clock.now += timeout
        return self.is_set()


def sample(value: float, seconds: float, metric: str = "active_power") -> Sample:
    return Sample("line-1", "m1", metric, T0 + timedelta(seconds=seconds), value, "W")


def test_ticks_stay_on_the_grid_however_long_the_work_takes() -> None:
    clock = FakeClock()
    stop = ClockedStop(clock)
    ticker = Ticker(10.0, clock=clock)
    fired: list[float] = []
    for work_s in (0.0, 3.0, 9.5, 0.2):
        assert ticker.wait(stop)
        fired.append(clock.now)
        clock.now += work_s
    assert fired == [100.0, 110.0, 120.0, 130.0]  # no drift from the work's length
    assert ticker.missed == 0


def test_overrun_ticks_are_skipped_and_counted_never_fired_in_a_burst() -> None:
    clock = FakeClock()
    stop = ClockedStop(clock)
    ticker = Ticker(10.0, clock=clock)
    assert ticker.wait(stop)  # 100
    clock.now += 34.0  # a poll that hung for three intervals and more
    assert ticker.wait(stop)
    assert clock.now == 134.0  # at once: the tick due at 130 is late but not skipped
    assert ticker.missed == 2  # 110 and 120 were skipped
    assert ticker.wait(stop)
    assert clock.now == 140.0  # back on the grid


def test_the_ticker_stops_when_stop_is_set() -> None:
    clock = FakeClock()
    stop = ClockedStop(clock)
    ticker = Ticker(5.0, clock=clock)
    assert ticker.wait(stop)
    stop.set()
    assert not ticker.wait(stop)


def test_no_deadband_publishes_every_reading() -> None:
    clock = FakeClock()
    gate = ChangeFilter(lambda s: MetricSampling(), clock=clock)
    assert [gate.admit(sample(1.0, t)) for t in range(4)] == [True] * 4
    clock.now += 3600
    assert gate.heartbeats() == []


def test_deadband_holds_small_changes_and_measures_from_the_last_published_value() -> None:
    gate = ChangeFilter(lambda s: MetricSampling(deadband=5.0, heartbeat_s=60))
    values = [100.0, 103.0, 104.9, 105.1, 108.0, 110.2, 99.0]
    admitted = [v for i, v in enumerate(values) if gate.admit(sample(v, i))]
    # 105.1 is 5.1 from 100 (published); 110.2 is 5.1 from 105.1; 99 is 11.2 below.
    assert admitted == [100.0, 105.1, 110.2, 99.0]
    assert gate.suppressed == 3


def test_zero_deadband_publishes_changes_only() -> None:
    gate = ChangeFilter(lambda s: MetricSampling(deadband=0.0, heartbeat_s=60))
    admitted = [v for i, v in enumerate([2.0, 2.0, 2.0, 1.0, 1.0]) if gate.admit(sample(v, i))]
    assert admitted == [2.0, 1.0]


def test_a_flat_value_still_goes_out_at_every_heartbeat() -> None:
    gate = ChangeFilter(lambda s: MetricSampling(deadband=1.0, heartbeat_s=30))
    times = [t for t in range(0, 100, 10) if gate.admit(sample(50.0, t))]
    assert times == [0, 30, 60, 90]


def test_heartbeats_restamp_the_last_value_of_a_quiet_subscription() -> None:
    clock = FakeClock()
    gate = ChangeFilter(lambda s: MetricSampling(deadband=1.0, heartbeat_s=30), clock=clock)
    assert gate.admit(sample(7.5, 0))
    clock.now += 29
    assert gate.heartbeats() == []
    clock.now += 1
    due = gate.heartbeats()
    assert [(s.value, s.ts) for s in due] == [(7.5, T0 + timedelta(seconds=30))]
    clock.now += 15
    assert gate.heartbeats() == []  # the heartbeat counts as published
    assert not gate.admit(sample(7.9, 50))  # within the deadband of 7.5
    assert gate.admit(sample(7.9, 60))  # the next heartbeat


def test_a_device_clock_far_behind_gets_heartbeats_at_the_right_pace_in_its_own_time() -> None:
    clock = FakeClock()
    gate = ChangeFilter(lambda s: MetricSampling(deadband=1.0, heartbeat_s=30), clock=clock)
    behind = sample(7.5, 0).ts - timedelta(hours=3)  # a controller whose clock is 3 h slow
    assert gate.admit(Sample("line-1", "m1", "active_power", behind, 7.5, "W"))
    clock.now += 10
    assert gate.heartbeats() == []  # not every call: only once 30 s have gone by here
    clock.now += 20.4
    (due,) = gate.heartbeats()
    assert due.ts == behind + timedelta(seconds=30.4)


def test_forget_lets_the_first_reading_after_an_outage_out() -> None:
    gate = ChangeFilter(lambda s: MetricSampling(deadband=10.0, heartbeat_s=600))
    assert gate.admit(sample(1.0, 0))
    assert not gate.admit(sample(2.0, 1))
    gate.forget("line-1", "m1")
    assert gate.admit(sample(2.0, 2))
    assert gate.heartbeats() == []


def test_series_are_filtered_apart() -> None:
    gate = ChangeFilter(lambda s: MetricSampling(deadband=1.0, heartbeat_s=600))
    assert gate.admit(sample(1.0, 0, "active_power"))
    assert gate.admit(sample(1.0, 0, "current"))
    assert not gate.admit(sample(1.5, 1, "current"))


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("energy", None), ("active_power", 25.0), ("current", 0.5)],
)
def test_a_metric_rule_overrides_the_star_default(metric: str, expected: float | None) -> None:
    rules = {"*": MetricSampling(deadband=0.5), "active_power": MetricSampling(deadband=25.0)}
    rules["energy"] = MetricSampling()
    assert rule_for(rules, metric).deadband == expected
    assert rule_for({}, metric).deadband is None

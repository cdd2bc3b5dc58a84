"""Grid outages and sags: the truth and the meter's readings agree, and machines stop in the gap."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta
from itertools import pairwise

import pytest

from edge.sources import Sample
from simulators.grid import DEAD, GENERATOR, GRID, Grid
from simulators.layout import Generator, GridModel
from simulators.timebase import MS_PER_DAY
from simulators.truth import Outage, Truth
from tests.simulators.helpers import build, layout_document, run, series

NOMINAL_V = 230.0


@pytest.fixture(scope="module")
def tiny_days() -> tuple[list[Sample], Truth]:
    return run("tiny", seed=3, days=3.0)


def event_at(truth: Truth, ts: object) -> Outage | None:
    return next((o for o in truth.outages if o.start <= ts < o.end), None)  # type: ignore[operator]


def test_the_meter_sees_outages_sags_and_the_generator_as_the_truth_says(
    tiny_days: tuple[list[Sample], Truth],
) -> None:
    samples, truth = tiny_days
    kinds = {o.kind for o in truth.outages}
    assert kinds == {"outage", "sag"}
    generator_on = dict(series(samples, "meter-01", "generator_on"))
    seen = {"dead": 0, "generator": 0, "sag": 0, "normal": 0}
    for ts, volts in series(samples, "meter-01", "voltage"):
        event = event_at(truth, ts)
        if event is None:
            assert volts > 0.9 * NOMINAL_V and generator_on[ts] == 0.0
            seen["normal"] += 1
        elif event.kind == "sag":
            assert volts < 0.9 * NOMINAL_V and generator_on[ts] == 0.0
            assert volts == pytest.approx(event.min_voltage, rel=0.05)
            seen["sag"] += 1
        elif event.generator_start is None or ts < event.generator_start:
            assert volts < 1.0 and generator_on[ts] == 0.0
            seen["dead"] += 1
        else:
            assert volts > 0.9 * NOMINAL_V and generator_on[ts] == 1.0
            seen["generator"] += 1
    assert min(seen.values()) > 0


def test_the_generator_takes_the_load_after_its_start_delay(
    tiny_days: tuple[list[Sample], Truth],
) -> None:
    _, truth = tiny_days
    for outage in (o for o in truth.outages if o.kind == "outage"):
        assert outage.min_voltage == 0.0
        if outage.end - outage.start > timedelta(seconds=60):
            assert outage.generator_start == outage.start + timedelta(seconds=60)
        else:
            assert outage.generator_start is None
    for sag in (o for o in truth.outages if o.kind == "sag"):
        assert 0.70 * NOMINAL_V <= sag.min_voltage <= 0.88 * NOMINAL_V
        assert sag.generator_start is None


def test_machines_stop_until_the_generator_starts(tiny_days: tuple[list[Sample], Truth]) -> None:
    samples, truth = tiny_days
    dead_windows = [
        (o.start, o.generator_start or o.end) for o in truth.outages if o.kind == "outage"
    ]
    checked = 0
    for machine, metric in (
        ("sew-01", "active_power"),
        ("comp-01", "active_power"),
        ("sew-01", "machine_state"),
    ):
        for ts, value in series(samples, machine, metric):
            if any(start <= ts < end for start, end in dead_windows):
                assert value == 0.0
                checked += 1
    assert checked > 0
    for start, end in dead_windows:
        middle = start + (end - start) / 2
        assert truth.state_at("line-1", "comp-01", middle) == "off"


def test_without_a_generator_the_site_stays_dark_for_the_whole_outage() -> None:
    document = layout_document("tiny")
    document.pop("generator")
    samples, truth = run(build(document), seed=3, days=3.0)
    outages = [o for o in truth.outages if o.kind == "outage"]
    assert outages and all(o.generator_start is None for o in outages)
    for ts, volts in series(samples, "meter-01", "voltage"):
        if any(o.start <= ts < o.end for o in outages):
            assert volts < 1.0
    assert {v for _, v in series(samples, "meter-01", "generator_on")} == {0.0}


def test_outages_and_sags_come_at_the_configured_rates() -> None:
    config = GridModel(outage_rate_per_day=0.5, mean_outage_s=900, sag_rate_per_day=2.0)
    grid = Grid(config, Generator(start_delay_s=30), random.Random(1), 0)
    days = 2000
    grid.status(days * MS_PER_DAY)
    events = grid.events_before(days * MS_PER_DAY)
    outages = [e for e in events if e.kind == "outage"]
    sags = [e for e in events if e.kind == "sag"]
    assert len(outages) == pytest.approx(0.5 * days, rel=0.1)
    assert len(sags) == pytest.approx(2.0 * days, rel=0.1)
    assert statistics.fmean((e.end_ms - e.start_ms) / 1000 for e in outages) == pytest.approx(
        900, rel=0.1
    )
    assert all(b.start_ms >= a.end_ms for a, b in pairwise(events))


def test_grid_status_inside_and_outside_an_event() -> None:
    config = GridModel(outage_rate_per_day=1.0, sag_rate_per_day=0.0, mean_outage_s=3600)
    grid = Grid(config, Generator(start_delay_s=30), random.Random(2), 0)
    grid.status(10 * MS_PER_DAY)
    outage = next(e for e in grid.history if e.generator_ms is not None)
    fresh = Grid(config, Generator(start_delay_s=30), random.Random(2), 0)
    assert fresh.status(outage.start_ms - 1) == (GRID, 1.0)
    assert fresh.status(outage.start_ms) == (DEAD, 0.0)
    assert fresh.status(outage.start_ms + 29_999) == (DEAD, 0.0)
    assert fresh.status(outage.start_ms + 30_000) == (GENERATOR, 1.0)
    assert fresh.status(outage.end_ms) == (GRID, 1.0)

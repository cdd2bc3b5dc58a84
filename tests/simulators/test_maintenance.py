"""Preventive maintenance stops a machine, renews it, cuts degradations short; all recorded."""

from __future__ import annotations

import csv
import threading
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from edge.sources import Sample
from simulators.degradation import MaintenancePlan
from simulators.hourly import with_sample_interval
from simulators.layout import Condition, Layout
from simulators.randomness import seeded
from simulators.source import SimulatorSource
from simulators.timebase import MS_PER_DAY
from simulators.truth import Truth
from tests.simulators.helpers import MONDAY, build, layout_document, run, series, state_lookup

HEALTHY = {"mean_life_days": 10_000.0, "life_spread": 0.0, "initial_age": [0.0, 0.0]}
QUIET = {"disturbance_rate_per_30d": 0.0, "remount_shift": 0.0}
EVERY_TWO_DAYS = {"pm_interval_days": 2.0, "pm_duration_h": 4.0}
SAMPLE = timedelta(seconds=60)


def _tiny(compressor: dict[str, Any], sew: dict[str, Any] | None = None) -> Layout:
    """The tiny site without grid events, sampled every minute, with condition blocks."""
    document = layout_document("tiny")
    document["grid"] = {"outage_rate_per_day": 0, "sag_rate_per_day": 0}
    machines = document["lines"][0]["machines"]
    machines[1]["condition"] = {"iso_class": "I", **compressor}
    if sew is not None:
        machines[0]["condition"] = sew
        machines[0]["metrics"] = [*machines[0]["metrics"], "vibration_rms"]
    return with_sample_interval(build(document), 60.0)


@pytest.fixture(scope="module")
def maintained() -> tuple[list[Sample], Truth]:
    plan = {**HEALTHY, **QUIET, **EVERY_TWO_DAYS}
    return run(_tiny(plan, sew=plan), seed=4, days=9.0)


def test_the_plan_is_due_within_the_first_interval_then_every_jittered_interval() -> None:
    config = Condition.model_validate({"pm_interval_days": 90.0, "pm_jitter": 0.2})
    firsts = []
    for machine in range(100):
        plan = MaintenancePlan(config, seeded(f"pm/{machine}"), 1_000)
        assert plan.enabled and plan.duration_ms() == 4 * 3_600_000
        assert 1_000 <= plan.due_ms < 1_000 + 90 * MS_PER_DAY
        firsts.append(plan.due_ms)
        plan.reschedule(5_000)
        assert 5_000 + 72 * MS_PER_DAY <= plan.due_ms <= 5_000 + 108 * MS_PER_DAY
    assert min(firsts) < 1_000 + 10 * MS_PER_DAY and max(firsts) > 1_000 + 80 * MS_PER_DAY
    for off in (None, 0.0):
        plan = MaintenancePlan(
            Condition.model_validate({"pm_interval_days": off}), seeded("pm"), 1_000
        )
        assert not plan.enabled and plan.due_ms > 10**15


def test_maintenance_stops_each_machine_for_its_duration_at_its_interval(
    maintained: tuple[list[Sample], Truth],
) -> None:
    samples, truth = maintained
    assert truth.failures == []
    for machine, stopped_state in (("comp-01", "fault"), ("sew-01", "off")):
        visits = [m for m in truth.maintenance if m.machine == machine]
        assert 4 <= len(visits) <= 6  # first within 2 days, then every 1.6-2.4 days
        assert visits[0].start < MONDAY + timedelta(days=2) + SAMPLE
        for earlier, later in pairwise(visits):
            gap = later.start - earlier.start
            assert timedelta(days=1.6) <= gap < timedelta(days=2.4) + SAMPLE
        state = state_lookup(truth, "line-1", machine)
        power = series(samples, machine, "active_power")
        for visit in visits:
            assert visit.line == "line-1" and visit.degradation_start is None
            assert visit.end - visit.start == timedelta(hours=4)
            assert state(visit.start) == stopped_state
            assert state(visit.end - SAMPLE) == stopped_state
            during = [p for ts, p in power if visit.start <= ts < visit.end]
            assert len(during) == 240 and set(during) == {0.0}


def test_maintenance_cuts_a_degradation_short_so_the_machine_never_fails() -> None:
    # Lives of 3 days whose last 2 show; maintenance every 2 days comes first.
    wearing = {
        **QUIET,
        "mean_life_days": 3.0,
        "life_spread": 0.0,
        "initial_age": [0.0, 0.0],
        "pf_days": [2.0, 2.0],
        "modes": ["misalignment"],
    }
    _, unmaintained = run(_tiny(wearing), seed=4, days=8.0)
    assert len(unmaintained.failures) == 2  # at 3 days, and 3 days after the repair
    samples, truth = run(_tiny({**wearing, **EVERY_TWO_DAYS}), seed=4, days=8.0)
    assert truth.failures == []
    visits = [m for m in truth.maintenance if m.machine == "comp-01"]
    assert len(visits) >= 3
    cut = [m for m in visits if m.degradation_start is not None]
    assert len(cut) >= len(visits) - 1
    for earlier, later in pairwise(visits):
        # Renewed at the end of a visit: the next degradation starts a day later.
        assert later.degradation_start is not None
        onset_after = later.degradation_start - (earlier.end + timedelta(days=1))
        assert timedelta(0) <= onset_after < SAMPLE
    vibration = series(samples, "comp-01", "vibration_rms")
    for visit in cut:
        before = [v for ts, v in vibration if visit.start - timedelta(hours=2) <= ts < visit.start]
        after = [v for ts, v in vibration if visit.end <= ts < visit.end + timedelta(hours=2)]
        if before and after and max(before) > 0.2:
            assert sum(after) / len(after) < sum(before) / len(before)


def test_maintenance_and_disturbances_are_written_beside_the_other_truth(tmp_path: Path) -> None:
    layout = _tiny({**HEALTHY, **EVERY_TWO_DAYS, "disturbance_rate_per_30d": 30.0})
    truth = Truth("tiny", directory=tmp_path)
    source = SimulatorSource(layout, seed=4, start=MONDAY, days=5.0, truth=truth)
    for _ in source.samples(threading.Event()):
        pass
    assert truth.maintenance and truth.disturbances

    def rows(name: str) -> list[dict[str, str]]:
        with (tmp_path / name).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    maintenance = rows("maintenance.csv")
    assert [list(r) for r in maintenance[:1]] == [
        ["site", "line", "machine", "start", "end", "degradation_start"]
    ]
    assert len(maintenance) == len(truth.maintenance)
    assert {r["degradation_start"] for r in maintenance} == {""}
    assert maintenance[0]["start"] == truth.maintenance[0].start.isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    disturbances = rows("disturbances.csv")
    assert list(disturbances[0]) == ["site", "line", "machine", "start", "end", "factor"]
    assert len(disturbances) == len(truth.disturbances)
    assert all(1.3 <= float(r["factor"]) <= 2.2 for r in disturbances)


def test_a_maintenance_that_misses_the_fault_leaves_it_to_run_on_to_failure() -> None:
    wearing = {
        **QUIET,
        "mean_life_days": 3.0,
        "life_spread": 0.0,
        "initial_age": [0.0, 0.0],
        "pf_days": [2.0, 2.0],
        "modes": ["misalignment"],
        **EVERY_TWO_DAYS,
    }
    _, found = run(_tiny({**wearing, "pm_finds_fault": 1.0}), seed=4, days=8.0)
    _, default = run(_tiny(wearing), seed=4, days=8.0)
    assert found.maintenance == default.maintenance and found.failures == []
    _, truth = run(_tiny({**wearing, "pm_finds_fault": 0.0}), seed=4, days=8.0)
    visits = [m for m in truth.maintenance if m.machine == "comp-01"]
    assert visits and all(m.degradation_start is None for m in visits)  # nothing cut short
    assert len(truth.failures) >= 2
    missed = 0
    for failure in truth.failures:
        missed += sum(failure.degradation_start < m.start < failure.failed_at for m in visits)
        # The visit renewed nothing: the whole P–F interval shows before the failure.
        assert failure.failed_at - failure.degradation_start >= timedelta(days=2)
    assert missed >= 2


def test_a_service_finds_a_fault_at_its_chance_from_a_stream_of_its_own() -> None:
    config = Condition.model_validate({"pm_interval_days": 90.0, "pm_finds_fault": 0.6})
    plan = MaintenancePlan(config, seeded("pm"), 0, inspection=seeded("inspection"))
    found = sum(plan.finds_fault() for _ in range(2000))
    assert 1100 <= found <= 1300  # 1200 expected, within ±4.5 standard deviations
    again = MaintenancePlan(config, seeded("pm"), 0, inspection=seeded("other"))
    assert again.due_ms == plan.due_ms  # the schedule does not depend on the inspections

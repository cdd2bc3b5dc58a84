"""The simulator as a source: deterministic, counted, on the contract, backfill and real time."""

from __future__ import annotations

import csv
import math
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from edge.sources import Sample, Source
from simulators.layout import load_layout
from simulators.run import build_source
from simulators.source import SimulatorSource, first_tick_ms
from simulators.truth import Truth
from tests.simulators.helpers import MONDAY, run
from tonle.contract import format_timestamp, is_valid_id, is_valid_metric

ID_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
METRIC_RULE = re.compile(r"^[a-z][a-z0-9_]*$")


@pytest.fixture(scope="module")
def tiny_day() -> tuple[list[Sample], Truth]:
    return run("tiny", seed=11, days=1.0)


def test_the_same_seed_gives_the_same_stream_and_another_seed_does_not() -> None:
    first, _ = run("tiny", seed=5, days=0.5)
    second, _ = run("tiny", seed=5, days=0.5)
    other, _ = run("tiny", seed=6, days=0.5)
    assert first == second
    assert len(first) == len(other)  # the sampling grid does not depend on the seed...
    assert [s.value for s in first] != [s.value for s in other]  # ...the values do


def test_samples_come_in_timestamp_order_as_aware_utc_on_whole_milliseconds(
    tiny_day: tuple[list[Sample], Truth],
) -> None:
    samples, _ = tiny_day
    stamps = [s.ts for s in samples]
    assert stamps == sorted(stamps)
    assert all(ts.tzinfo is UTC and ts.microsecond % 1000 == 0 for ts in stamps)
    assert stamps[0] >= MONDAY and stamps[-1] < MONDAY + timedelta(days=1)


def test_one_day_has_exactly_one_sample_per_interval_per_metric(
    tiny_day: tuple[list[Sample], Truth],
) -> None:
    samples, _ = tiny_day
    counts = Counter((s.machine, s.metric) for s in samples)
    assert counts[("sew-01", "active_power")] == 8640  # every 10 s
    assert counts[("sew-01", "units_good")] == 1440  # every minute
    assert counts[("comp-01", "pressure")] == 2880  # every 30 s
    assert counts[("comp-01", "vibration_rms")] == 1440  # every minute
    assert counts[("meter-01", "generator_on")] == 8640
    assert len(samples) == 3 * 8640 + 2 * 1440 + 4 * 2880 + 2 * 1440 + 4 * 8640


def test_no_series_repeats_a_timestamp(tiny_day: tuple[list[Sample], Truth]) -> None:
    samples, _ = tiny_day
    keys = [(s.line, s.machine, s.metric, format_timestamp(s.ts)) for s in samples]
    assert len(keys) == len(set(keys))


def test_ids_metrics_units_and_values_follow_the_contract() -> None:
    samples, _ = run("garment", seed=3, days=0.25)
    assert {s.line for s in samples} == {"sewing-a", "sewing-b", "cutting", "utilities"}
    for line, machine, metric, unit in {(s.line, s.machine, s.metric, s.unit) for s in samples}:
        assert ID_RULE.fullmatch(line) and is_valid_id(line)
        assert ID_RULE.fullmatch(machine) and is_valid_id(machine)
        assert METRIC_RULE.fullmatch(metric) and is_valid_metric(metric)
        assert unit is None or 0 < len(unit) <= 16
    assert all(isinstance(s.value, float) and math.isfinite(s.value) for s in samples)


def test_emitted_counts_equal_what_was_yielded(tiny_day: tuple[list[Sample], Truth]) -> None:
    samples, truth = tiny_day
    counts = Counter((s.line, s.machine, s.metric) for s in samples)
    assert truth.emitted == dict(counts)
    assert truth.total_emitted == len(samples)


def test_a_backfill_stopped_midway_counts_only_what_it_yielded() -> None:
    stop = threading.Event()
    source = SimulatorSource(load_layout("tiny"), seed=1, start=MONDAY, days=1.0)
    taken = []
    for sample in source.samples(stop):
        taken.append(sample)
        if len(taken) == 1000:
            stop.set()
    assert len(taken) == 1000
    assert source.truth.total_emitted == 1000
    assert source.truth.finished
    assert source.truth.end == taken[-1].ts + timedelta(milliseconds=1)


def test_a_source_yields_once() -> None:
    source = SimulatorSource(load_layout("tiny"), seed=1, start=MONDAY, days=0.01)
    list(source.samples(threading.Event()))
    with pytest.raises(RuntimeError, match="once"):
        next(iter(source.samples(threading.Event())))


def test_it_is_an_edge_source() -> None:
    source: Source = SimulatorSource(load_layout("tiny"), seed=1, start=MONDAY, days=0.01)
    assert source.name == "simulator-tiny"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "days"),
        ({"speed": 0}, "speed"),
        ({"start": datetime(2026, 3, 2)}, "timezone"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SimulatorSource(load_layout("tiny"), seed=1, **kwargs)  # type: ignore[arg-type]


def test_first_tick_is_the_first_grid_point_at_or_after_the_start() -> None:
    assert first_tick_ms(10_000, 10_000, 250) == 10_250
    assert first_tick_ms(10_250, 10_000, 250) == 10_250
    assert first_tick_ms(10_251, 10_000, 250) == 20_250
    assert first_tick_ms(0, 60_000, 999) == 999


def test_the_truth_is_written_as_csv_when_the_run_ends(tmp_path: Path) -> None:
    source, truth = build_source("tiny", 4, MONDAY, 1.0, False, tmp_path / "truth")
    samples = list(source.samples(threading.Event()))
    files = {p.name for p in (tmp_path / "truth").iterdir()}
    assert files == {
        "states.csv",
        "failures.csv",
        "maintenance.csv",
        "disturbances.csv",
        "sensor_faults.csv",
        "outages.csv",
        "emitted.csv",
    }

    def rows(name: str) -> list[dict[str, str]]:
        with (tmp_path / "truth" / name).open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    emitted = rows("emitted.csv")
    assert list(emitted[0]) == ["site", "line", "machine", "metric", "count"]
    assert sum(int(r["count"]) for r in emitted) == len(samples) == truth.total_emitted
    states = rows("states.csv")
    assert list(states[0]) == ["site", "line", "machine", "state", "start", "end"]
    assert {r["state"] for r in states} <= {"off", "idle", "running", "fault"}
    assert {r["start"] for r in states if r["start"] < "2026-03-01T17:00:10"} == {
        "2026-03-01T17:00:00.000Z"
    }
    outages = rows("outages.csv")
    assert len(outages) == len(truth.outages)
    assert all(r["kind"] in ("outage", "sag") and r["site"] == "tiny" for r in outages)
    with (tmp_path / "truth" / "failures.csv").open(encoding="utf-8") as handle:
        assert handle.readline().strip() == (
            "site,line,machine,kind,degradation_start,failed_at,repaired_at"
        )


def test_state_intervals_tile_the_simulated_time_for_each_machine() -> None:
    _, truth = run("tiny", seed=2, days=1.0)
    for machine in ("sew-01", "comp-01"):
        intervals = truth.states_of("line-1", machine)
        assert intervals[0].start == MONDAY
        assert intervals[-1].end == MONDAY + timedelta(days=1)
        for before, after in pairwise(intervals):
            assert before.end == after.start and before.state != after.state
    assert truth.states_of("line-1", "meter-01") == []  # a meter has no state


def test_real_time_follows_the_clock_times_speed() -> None:
    # One simulated hour at 7200x takes half a second of wall time.
    start = datetime(2026, 3, 2, 1, tzinfo=UTC)
    source = SimulatorSource(
        load_layout("tiny"), seed=1, start=start, days=1 / 24, realtime=True, speed=7200.0
    )
    began = time.monotonic()
    samples = list(source.samples(threading.Event()))
    assert time.monotonic() - began >= 0.45
    assert samples[-1].ts < start + timedelta(hours=1) <= samples[-1].ts + timedelta(seconds=10)
    assert source.truth.total_emitted == len(samples)


def test_real_time_without_an_end_runs_from_now_until_stopped() -> None:
    source, truth = build_source("tiny", 1, None, None, True, None, speed=100.0)
    stop = threading.Event()
    received: list[Sample] = []

    def consume() -> None:
        for sample in source.samples(stop):
            received.append(sample)

    worker = threading.Thread(target=consume, name="simulator-test")
    before = datetime.now(UTC)
    worker.start()
    deadline = time.monotonic() + 10
    while len(received) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert len(received) >= 20
    assert before - timedelta(seconds=1) <= received[0].ts <= before + timedelta(minutes=5)
    assert truth.finished and truth.total_emitted == len(received)


def test_build_source_loads_a_layout_by_name_and_starts_where_asked(tmp_path: Path) -> None:
    start = datetime.fromisoformat("2026-03-02T00:00:00+07:00")
    source, truth = build_source("tiny", 7, start, 0.01, False, tmp_path)
    assert source.start == MONDAY and source.site == "tiny" and source.truth is truth
    assert len(list(source.samples(threading.Event()))) == truth.total_emitted
    assert (tmp_path / "emitted.csv").exists()


def test_a_backfill_without_a_start_ends_now() -> None:
    source, _ = build_source("tiny", 7, None, 0.5, False, None)
    assert source.start is not None
    assert abs(source.start + timedelta(days=0.5) - datetime.now(UTC)) < timedelta(minutes=1)

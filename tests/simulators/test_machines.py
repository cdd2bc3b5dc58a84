"""Machine behaviour: shifts, idle draw by drive, energy, output, compressors and cold rooms."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from edge.sources import Sample
from simulators.layout import Layout, load_layout
from simulators.truth import Truth
from tests.simulators.helpers import MONDAY, SUNDAY, build, run, series, state_lookup

LOCAL = timedelta(hours=7)  # Phnom Penh


@pytest.fixture(scope="module")
def garment_day() -> tuple[list[Sample], Truth]:
    return run("garment", seed=7, days=1.0)


@pytest.fixture(scope="module")
def tiny_two_weekdays() -> tuple[list[Sample], Truth]:
    return run("tiny", seed=7, days=2.0)


def running_seconds(truth: Truth, line: str, machine: str) -> float:
    return sum(
        (i.end - i.start).total_seconds()
        for i in truth.states_of(line, machine)
        if i.state == "running"
    )


# -- shifts ------------------------------------------------------------------------


def test_nothing_runs_at_three_in_the_morning_on_a_weekday(
    tiny_two_weekdays: tuple[list[Sample], Truth], garment_day: tuple[list[Sample], Truth]
) -> None:
    samples, truth = tiny_two_weekdays
    for day in (0, 1):
        three_am = MONDAY + timedelta(days=day, hours=3)
        assert truth.state_at("line-1", "sew-01", three_am) == "off"
        night = [
            v
            for ts, v in series(samples, "sew-01", "active_power")
            if MONDAY + timedelta(days=day)
            <= ts
            < MONDAY + timedelta(days=day, hours=6, minutes=59)
        ]
        assert len(night) == 6 * 360 + 59 * 6 and set(night) == {0.0}
    _, garment = garment_day
    layout = load_layout("garment")
    for line, machine in layout.machines():
        if machine.kind == "production":
            assert garment.state_at(line, machine.id, MONDAY + timedelta(hours=3)) in (
                "off",
                "idle",
            )


def test_machines_run_only_in_the_shift(tiny_two_weekdays: tuple[list[Sample], Truth]) -> None:
    _, truth = tiny_two_weekdays
    for interval in truth.states_of("line-1", "sew-01"):
        if interval.state in ("running", "idle"):
            start_local = (interval.start + LOCAL).time()
            end_local = (interval.end + LOCAL).time()
            assert start_local.isoformat() >= "07:00" and end_local.isoformat() <= "16:06"
        if interval.state == "running":
            assert not ("11:02" <= (interval.start + LOCAL).time().isoformat() < "12:00")


def test_sunday_is_off_for_production_while_leaks_keep_the_compressor_cycling() -> None:
    samples, truth = run("tiny", seed=7, start=SUNDAY, days=1.0)
    (whole_day,) = truth.states_of("line-1", "sew-01")
    assert (whole_day.state, whole_day.end - whole_day.start) == ("off", timedelta(days=1))
    assert sum(v for _, v in series(samples, "sew-01", "units_good")) == 0
    assert {i.state for i in truth.states_of("line-1", "comp-01")} >= {"running", "idle"}
    assert statistics.fmean(v for _, v in series(samples, "comp-01", "active_power")) > 500


def test_only_machines_configured_to_report_their_state_do(
    garment_day: tuple[list[Sample], Truth],
) -> None:
    samples, _ = garment_day
    assert {s.machine for s in samples if s.metric == "machine_state"} == {"sew-b01", "comp-01"}


def test_reported_machine_state_matches_the_truth(
    tiny_two_weekdays: tuple[list[Sample], Truth],
) -> None:
    samples, truth = tiny_two_weekdays
    state = state_lookup(truth, "line-1", "sew-01")
    codes = {"off": 0.0, "idle": 1.0, "running": 2.0, "fault": 3.0}
    reported = series(samples, "sew-01", "machine_state")
    assert all(value == codes[state(ts)] for ts, value in reported)
    assert {v for _, v in reported} >= {0.0, 1.0, 2.0}


# -- power by drive ------------------------------------------------------------------


def power_by_state(
    samples: list[Sample], truth: Truth, line: str, machine: str
) -> dict[str, list[float]]:
    state = state_lookup(truth, line, machine)
    by_state: dict[str, list[float]] = defaultdict(list)
    for ts, value in series(samples, machine, "active_power"):
        by_state[state(ts)].append(value)
    return by_state


def test_clutch_motors_draw_sizeable_power_idle_and_servos_almost_none(
    garment_day: tuple[list[Sample], Truth],
) -> None:
    samples, truth = garment_day
    for machine in ("sew-a01", "sew-a02", "sew-a03"):
        power = power_by_state(samples, truth, "sewing-a", machine)
        assert statistics.fmean(power["idle"]) == pytest.approx(125.0, rel=0.03)  # 250 W x 0.5
        assert 0.7 * 250 * 0.9 < statistics.fmean(power["running"]) < 250 * 1.05
        assert set(power["off"]) == {0.0}
    for machine in ("sew-b01", "sew-b02", "sew-b03"):
        power = power_by_state(samples, truth, "sewing-b", machine)
        assert statistics.fmean(power["idle"]) == pytest.approx(5.5, rel=0.05)  # 550 W x 0.01
        assert statistics.fmean(power["running"]) == pytest.approx(550 * 0.15, rel=0.05)


def test_the_servo_line_uses_much_less_energy_than_the_clutch_line(
    garment_day: tuple[list[Sample], Truth],
) -> None:
    samples, _ = garment_day
    clutch = sum(
        v for s in samples if s.line == "sewing-a" and s.metric == "active_power" for v in [s.value]
    )
    servo = sum(
        v for s in samples if s.line == "sewing-b" and s.metric == "active_power" for v in [s.value]
    )
    assert 0.5 < 1 - servo / clutch < 0.85  # DOMAIN.md: ~67 % saving with servo motors


# -- energy ----------------------------------------------------------------------------


def test_energy_counters_never_decrease(garment_day: tuple[list[Sample], Truth]) -> None:
    samples, _ = garment_day
    counters: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        if sample.metric == "energy":
            counters[sample.machine].append(sample.value)
    assert set(counters) == {"cut-01", "comp-01", "meter-main"}
    for values in counters.values():
        assert all(b >= a for a, b in pairwise(values))
        assert values[0] == 0.0 and values[-1] > 0.0


@pytest.mark.parametrize(("layout", "machine"), [("tiny", "sew-01"), ("tiny", "meter-01")])
def test_an_energy_counter_is_the_integral_of_the_power_before_it(
    layout: str, machine: str
) -> None:
    samples, _ = run(layout, seed=7, days=1.0)
    power = series(samples, machine, "active_power")
    energy = series(samples, machine, "energy")
    assert [ts for ts, _ in power] == [ts for ts, _ in energy]
    integral = sum(p * (t1 - t0).total_seconds() / 3600.0 for (t0, p), (t1, _) in pairwise(power))
    assert energy[-1][1] == pytest.approx(integral, abs=1.0)


def test_the_main_meter_sums_the_machines_and_a_base_load(
    garment_day: tuple[list[Sample], Truth],
) -> None:
    samples, _ = garment_day
    meter = dict(series(samples, "meter-main", "active_power"))
    at_three = [
        v
        for ts, v in meter.items()
        if MONDAY + timedelta(hours=3) <= ts < MONDAY + timedelta(hours=3, minutes=10)
    ]
    # At night: 6 kW base, comp-01 cycling on leaks, some machines left idling.
    assert 6000 < statistics.fmean(at_three) < 6000 + 22000
    at_ten = [
        v
        for ts, v in meter.items()
        if MONDAY + timedelta(hours=10) <= ts < MONDAY + timedelta(hours=10, minutes=10)
    ]
    assert statistics.fmean(at_ten) > 60000


# -- output ----------------------------------------------------------------------------


def test_units_are_made_only_while_running_at_the_ideal_rate_or_slower(
    tiny_two_weekdays: tuple[list[Sample], Truth],
) -> None:
    samples, truth = tiny_two_weekdays
    made = sum(v for _, v in series(samples, "sew-01", "units_good")) + sum(
        v for _, v in series(samples, "sew-01", "units_reject")
    )
    run_s = running_seconds(truth, "line-1", "sew-01")
    cycle_s = 40.0
    assert 0.75 * (run_s - 60) / cycle_s - 1 <= made <= run_s / cycle_s + 1
    running = [i for i in truth.states_of("line-1", "sew-01") if i.state == "running"]
    counted = 0
    for ts, value in series(samples, "sew-01", "units_good"):
        if value > 0:  # some running in the minute this count covers
            assert any(i.start < ts and i.end > ts - timedelta(seconds=60) for i in running)
            counted += 1
    assert counted > 0


def test_rejects_come_at_the_configured_rate() -> None:
    samples, _ = run("food", seed=7, days=1.0)
    good = sum(v for _, v in series(samples, "fill-01", "units_good"))
    reject = sum(v for _, v in series(samples, "fill-01", "units_reject"))
    assert good > 10_000
    assert reject / (good + reject) == pytest.approx(0.02, abs=0.004)
    temps = series(samples, "past-01", "product_temp")
    assert max(v for _, v in temps) == pytest.approx(72.0, abs=1.5)


# -- compressors and cold rooms, against closed forms -------------------------------------


def single_machine(machine: dict[str, Any], **site: Any) -> Layout:
    document: dict[str, Any] = {
        "site": "bench",
        "timezone": "Asia/Phnom_Penh",
        "grid": {"outage_rate_per_day": 0, "sag_rate_per_day": 0},
        "lines": [{"id": "utilities", "machines": [machine]}],
    }
    document.update(site)
    return build(document)


@pytest.mark.parametrize(
    ("demand", "power_fraction", "states"),
    [
        # Loaded for the demanded share of the time; unloaded at 15 % the rest.
        (0.25, 0.25 + 0.75 * 0.15, {"running", "idle"}),
        # So little demand that the motor stops after 600 s unloaded: per cycle
        # 63.2 s loaded, 600 s unloaded, 600 s stopped.
        (0.05, (60 / 0.95 + 600 * 0.15) / (60 / 0.95 + 1200), {"running", "idle", "off"}),
    ],
)
def test_a_compressor_on_leaks_alone_follows_the_load_unload_balance(
    demand: float, power_fraction: float, states: set[str]
) -> None:
    layout = single_machine(
        {
            "id": "comp",
            "kind": "compressor",
            "rated_power_w": 10000,
            "demand_off": demand,
            "demand_noise": 0.0,
            "metrics": ["active_power", "energy"],
        }
    )
    samples, truth = run(layout, days=1.0)
    mean_w = statistics.fmean(v for _, v in series(samples, "comp", "active_power"))
    assert mean_w == pytest.approx(10000 * power_fraction, rel=0.02)
    assert {i.state for i in truth.states_of("utilities", "comp")} == states
    assert running_seconds(truth, "utilities", "comp") / 86400 == pytest.approx(demand, abs=0.01)


@pytest.mark.parametrize(("air_c", "duty"), [(27.0, 0.62), (32.0, 0.62 * 1.19 / (1 - 0.00714 * 5))])
def test_a_cold_room_runs_its_design_hours_and_longer_in_heat(air_c: float, duty: float) -> None:
    layout = single_machine(
        {
            "id": "cold",
            "kind": "cold_room",
            "rated_power_w": 5000,
            "fan_power_w": 0,
            "door_openings_per_h": 0,
            "metrics": ["active_power", "room_temp"],
        },
        climate={
            "monthly_max_c": [air_c] * 12,
            "monthly_min_c": [air_c] * 12,
            "day_to_day_sd_k": 0,
        },
    )
    samples, truth = run(layout, days=2.0)
    assert running_seconds(truth, "utilities", "cold") / (2 * 86400) == pytest.approx(
        duty, abs=0.01
    )
    temps = [v for _, v in series(samples, "cold", "room_temp")]
    assert min(temps) > 0.5 and max(temps) < 3.5  # 2 °C +/- 1 K, plus sensor noise


def test_a_cold_room_warms_while_its_compressor_is_down() -> None:
    document = {
        "id": "cold",
        "kind": "cold_room",
        "rated_power_w": 5000,
        "metrics": ["room_temp", "machine_state"],
    }
    layout = single_machine(
        document,
        grid={"outage_rate_per_day": 4, "mean_outage_s": 3600, "sag_rate_per_day": 0},
    )
    samples, truth = run(layout, days=2.0)
    assert any(o.kind == "outage" for o in truth.outages)
    assert max(v for _, v in series(samples, "cold", "room_temp")) > 4.0


def test_ambient_follows_the_phnom_penh_day(garment_day: tuple[list[Sample], Truth]) -> None:
    samples, _ = garment_day
    by_hour: dict[int, list[float]] = defaultdict(list)
    for ts, value in series(samples, "ambient-01", "ambient_temp"):
        by_hour[(ts + LOCAL).hour].append(value)
    means = {hour: statistics.fmean(values) for hour, values in by_hour.items()}
    hottest = max(means, key=lambda h: means[h])
    coolest = min(means, key=lambda h: means[h])
    assert 13 <= hottest <= 16 and 4 <= coolest <= 7
    # March in Phnom Penh: 24-34 °C outdoors, the factory floor 2 K warmer (+/- weather).
    assert means[hottest] - means[coolest] == pytest.approx(10.0, abs=1.5)
    assert 23.0 < means[coolest] < 30.0


def test_nothing_is_emitted_before_the_start() -> None:
    start = datetime(2026, 3, 2, 8, 0, 0, 500_000, tzinfo=UTC)
    samples, _ = run("tiny", start=start, days=0.01)
    assert min(s.ts for s in samples) >= start

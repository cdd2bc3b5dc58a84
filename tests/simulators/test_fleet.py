"""The fleet generator: months of condition data, the same as the sample stream, with the truth."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from datetime import timedelta
from itertools import pairwise

import numpy as np
import pytest

from simulators.fleet import (
    DEFAULT_START,
    FLEET_METRICS,
    Fleet,
    fleet_layout,
    rated_power_w,
    simulate_fleet,
)
from simulators.layout import (
    CONDITION_METRICS,
    FAILURE_MODE_NAMES,
    Compressor,
    Cycling,
    ProductionMachine,
    load_layout,
)
from simulators.source import SimulatorSource
from simulators.timebase import MS_PER_DAY, to_ms


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    """A dozen machines for four months, sampled every half hour to keep the test quick."""
    return simulate_fleet(seed=1, days=120.0, sample_s=1800.0, machines=12)


def _same(a: Fleet, b: Fleet) -> bool:
    if (a.site, a.start_ms, a.end_ms) != (b.site, b.start_ms, b.end_ms):
        return False
    if (a.failures, a.maintenance, a.disturbances) != (b.failures, b.maintenance, b.disturbances):
        return False
    if a.sensor_faults != b.sensor_faults:
        return False
    for x, y in zip(a.machines, b.machines, strict=True):
        if not np.array_equal(x.ts_ms, y.ts_ms):
            return False
        if any(
            not np.array_equal(x.metrics[m], y.metrics[m], equal_nan=True) for m in FLEET_METRICS
        ):
            return False
    return True


def test_the_fleet_layout_mixes_kinds_classes_and_failure_modes() -> None:
    layout = load_layout("fleet")
    machines = [m for _, m in layout.machines()]
    assert layout.site == "fleet" and len(machines) >= 12
    first = machines[:12]
    assert {type(m) for m in first} == {Compressor, ProductionMachine, Cycling}
    conditions = [m.condition for m in first]
    assert all(c is not None for c in conditions)
    assert {c.iso_class for c in conditions if c} == {"I", "II"}
    assert {mode for c in conditions if c for mode in c.modes} == set(FAILURE_MODE_NAMES)
    for c in conditions:
        assert c is not None and 60.0 <= c.mean_life_days <= 120.0
        if "lubrication" in c.modes:
            assert c.pf_days is not None and c.pf_days[1] <= 60.0
        if "lubricant_loss" in c.modes:
            assert c.pf_days is None  # an override would stretch its 1-4 days
        # Every machine's sensors fail, and services miss faults, at the same rates.
        assert (c.gain_step_rate_per_year, c.spike_rate_per_30d) == (1.0, 1.0)
        assert (c.stuck_rate_per_30d, c.dropout_rate_per_30d) == (0.5, 1.0)
        assert c.pm_finds_fault == 0.6
    planned = [c for c in conditions if c and c.pm_interval_days]
    assert 0 < len(planned) < len(conditions)  # some run to failure
    for m in machines:
        assert set(FLEET_METRICS) <= set(m.reported_metrics())


def test_fleet_layout_takes_the_first_machines_at_one_sample_interval() -> None:
    layout = fleet_layout(machines=6, sample_s=300.0)
    machines = [m for _, m in layout.machines()]
    assert [m.id for m in machines] == [m.id for _, m in load_layout("fleet").machines()][:6]
    assert {(m.interval_s, m.condition_interval_s) for m in machines} == {(300.0, 300.0)}
    with pytest.raises(ValueError, match="machines must be between 1 and"):
        fleet_layout(machines=0)
    with pytest.raises(ValueError, match="machines must be between 1 and"):
        fleet_layout(machines=99)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"days": 0.0}, "days must be positive"), ({"sample_s": -1.0}, "sample_s must be positive")],
)
def test_bad_arguments_are_refused(kwargs: dict[str, float], message: str) -> None:
    arguments = {"seed": 1, "days": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate_fleet(**arguments)  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_fleet_and_another_seed_another() -> None:
    first = simulate_fleet(seed=3, days=15.0, machines=3)
    again = simulate_fleet(seed=3, days=15.0, machines=3)
    other = simulate_fleet(seed=4, days=15.0, machines=3)
    assert _same(first, again)
    assert not _same(first, other)
    assert not np.array_equal(
        first.machines[0].metrics["vibration_rms"], other.machines[0].metrics["vibration_rms"]
    )


def test_the_readings_are_exactly_what_the_sample_stream_reports() -> None:
    fleet = simulate_fleet(seed=5, days=10.0, machines=4, sample_s=600.0)
    source = SimulatorSource(
        fleet_layout(machines=4, sample_s=600.0), seed=5, start=DEFAULT_START, days=10.0
    )
    streamed: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for sample in source.samples(threading.Event()):
        streamed[(sample.machine, sample.metric)].append((to_ms(sample.ts), sample.value))
    gaps = 0
    for history in fleet.machines:
        for metric in FLEET_METRICS:
            ts_ms, values = zip(*streamed[(history.machine, metric)], strict=True)
            # A dropout sends no sample and leaves NaN in the fleet's row.
            sent = ~np.isnan(history.metrics[metric])
            assert np.array_equal(history.ts_ms[sent], np.asarray(ts_ms, dtype=np.int64))
            assert np.array_equal(history.metrics[metric][sent], np.asarray(values))
            gaps += int((~sent).sum())
    assert gaps > 0
    assert fleet.failures == source.truth.failures
    assert fleet.maintenance == source.truth.maintenance
    assert fleet.disturbances == source.truth.disturbances
    assert fleet.sensor_faults == source.truth.sensor_faults


def test_every_machine_has_aligned_rows_at_its_sample_interval(fleet: Fleet) -> None:
    assert fleet.site == "fleet" and fleet.start_ms == to_ms(DEFAULT_START)
    assert fleet.end_ms - fleet.start_ms == 120 * MS_PER_DAY
    assert len(fleet.machines) == 12
    layout = dict((m.id, m) for _, m in load_layout("fleet").machines())
    for history in fleet.machines:
        assert history.ts_ms.dtype == np.int64
        assert len(history.ts_ms) == 120 * 48  # every 30 minutes
        assert set(np.diff(history.ts_ms).tolist()) == {1_800_000}
        assert fleet.start_ms <= history.ts_ms[0] < fleet.start_ms + 1_800_000
        assert set(history.metrics) == set(FLEET_METRICS)
        for metric, values in history.metrics.items():
            assert values.dtype == np.float64 and values.shape == history.ts_ms.shape
            if metric not in CONDITION_METRICS:  # the meters never drop out
                assert not np.isnan(values).any()
        # The condition sensors send all four or none, and none only in a dropout.
        missing = np.isnan(history.metrics["vibration_rms"])
        for metric in CONDITION_METRICS:
            assert np.array_equal(np.isnan(history.metrics[metric]), missing)
        dropped = np.zeros_like(missing)
        for fault in fleet.sensor_faults:
            if fault.machine == history.machine and fault.kind == "dropout":
                assert fault.end is not None
                dropped |= (history.ts_ms >= to_ms(fault.start)) & (
                    history.ts_ms < to_ms(fault.end)
                )
        assert np.array_equal(missing, dropped)
        assert history.rated_power_w == rated_power_w(layout[history.machine])
        assert history.kind == layout[history.machine].kind
        assert np.nanmax(history.metrics["active_power"]) <= 1.2 * history.rated_power_w


def test_a_fleet_fails_is_maintained_and_disturbed(fleet: Fleet) -> None:
    machines = {h.machine for h in fleet.machines}
    assert len(fleet.failures) >= 10
    assert len({f.machine for f in fleet.failures}) >= 7
    assert len({f.kind for f in fleet.failures}) >= 3
    assert len(fleet.maintenance) >= 6
    assert sum(m.degradation_start is not None for m in fleet.maintenance) >= 2
    # About 2 per machine-month: 96 expected, within ±4 standard deviations.
    assert 57 <= len(fleet.disturbances) <= 135
    counts = Counter(d.machine for d in fleet.disturbances)
    assert set(counts) <= machines and len(counts) >= 10
    for event in (*fleet.failures, *fleet.maintenance, *fleet.disturbances):
        assert event.machine in machines


def test_vibration_rises_before_each_failure_and_heat_before_a_lost_lubricant(
    fleet: Fleet,
) -> None:
    day = 48  # samples in 24 h of running at 30 minutes
    checked = hot = 0
    for failure in fleet.failures:
        history = fleet.history(failure.machine)
        vibration = history.metrics["vibration_rms"]
        bearing = history.metrics["bearing_temp"]
        running = history.metrics["active_power"] > 0.05 * history.rated_power_w
        failed_ms = to_ms(failure.failed_at)
        last_day = np.flatnonzero(running & (history.ts_ms < failed_ms))[-day:]
        healthy = running.copy()
        for onset_ms, end_ms, _ in fleet.degradations(failure.machine, include_open=True):
            healthy &= ~((history.ts_ms >= onset_ms) & (history.ts_ms < end_ms + 3 * MS_PER_DAY))
        calm = np.flatnonzero(healthy)
        if len(last_day) < day or len(calm) < 5 * day:
            continue
        month = calm[history.ts_ms[calm] < history.ts_ms[calm[0]] + 30 * MS_PER_DAY]
        # Medians, as a spike burst or a dropout (NaN) may fall in either stretch.
        ratio = np.nanmedian(vibration[last_day]) / np.nanmedian(vibration[month])
        if failure.kind == "lubricant_loss":
            # It shows in the heat of the last running hours, hardly in the vibration.
            assert ratio < 1.5
            assert np.nanmax(bearing[last_day[-12:]]) > np.nanmedian(bearing[month]) + 15.0
            hot += 1
        else:
            assert ratio > 2.0
            checked += 1
    assert checked >= 8 and hot >= 1


def test_degradations_come_from_failures_and_the_maintenance_that_cut_them(
    fleet: Fleet,
) -> None:
    seen_failures = seen_cuts = 0
    for history in fleet.machines:
        machine = history.machine
        spans = fleet.degradations(machine)
        assert spans == sorted(spans)
        failures = [f for f in fleet.failures if f.machine == machine]
        cuts = [m for m in fleet.maintenance if m.machine == machine and m.degradation_start]
        assert [s for s in spans if s[2] == "failure"] == [
            (to_ms(f.degradation_start), to_ms(f.failed_at), "failure") for f in failures
        ]
        assert sorted(s for s in spans if s[2] == "maintenance") == sorted(
            (to_ms(m.degradation_start), to_ms(m.start), "maintenance")
            for m in cuts
            if m.degradation_start
        )
        for (_, end, _), (start, _, _) in pairwise(spans):
            assert end <= start  # one life at a time
        with_open = fleet.degradations(machine, include_open=True)
        if machine in fleet.open_degradations:
            assert with_open[-1] == (fleet.open_degradations[machine], fleet.end_ms, "end")
            assert with_open[:-1] == spans
        else:
            assert with_open == spans
        seen_failures += len(failures)
        seen_cuts += len(cuts)
    assert seen_failures == len(fleet.failures) and seen_cuts >= 2
    assert fleet.open_degradations  # some machine is degrading when the run ends
    with pytest.raises(KeyError):
        fleet.history("no-such-machine")
    for failure in fleet.failures:
        assert failure.degradation_start < failure.failed_at < failure.repaired_at
        # The longest P–F interval of the fleet's modes is the belt's 120 days.
        assert failure.failed_at - failure.degradation_start <= timedelta(days=120)


@pytest.fixture(scope="module")
def half_years() -> list[Fleet]:
    """Seeds 1-3: a dozen machines for six months, sampled every half hour."""
    return [simulate_fleet(seed=s, days=180.0, sample_s=1800.0, machines=12) for s in (1, 2, 3)]


def test_a_lost_lubricant_is_one_failure_in_ten_or_so(half_years: list[Fleet]) -> None:
    kinds = Counter(f.kind for fleet in half_years for f in fleet.failures)
    assert set(kinds) == set(FAILURE_MODE_NAMES)
    share = kinds["lubricant_loss"] / kinds.total()
    assert 0.07 <= share <= 0.25
    for fleet in half_years:
        for failure in fleet.failures:
            if failure.kind == "lubricant_loss":
                # 1-4 days, and a machine at rest over a Sunday cannot fail before Monday.
                warning = failure.failed_at - failure.degradation_start
                assert timedelta(days=1) <= warning <= timedelta(days=6)


def test_the_sensors_of_a_fleet_fail_at_their_rates(half_years: list[Fleet]) -> None:
    machine_months = 3 * 12 * 6
    events: Counter[str] = Counter()
    for fleet in half_years:
        machines = {h.machine for h in fleet.machines}
        for fault in fleet.sensor_faults:
            assert fault.machine in machines
            assert fault.metric in FLEET_METRICS and fault.metric in CONDITION_METRICS
            if fault.metric == "vibration_rms":  # every kind touches it once
                events[fault.kind] += 1
        # Rows per fault: the accelerometer's two metrics, or all four of the transmitter.
        rows = Counter(f.kind for f in fleet.sensor_faults)
        counted = Counter(f.kind for f in fleet.sensor_faults if f.metric == "vibration_rms")
        assert rows == Counter({k: n * (2 if k in {"gain_step", "spike"} else 4)
                                for k, n in counted.items()})  # fmt: skip
    # Poisson counts within ±4 standard deviations of their expected numbers.
    for kind, per_machine_month in (("spike", 1.0), ("stuck", 0.5), ("dropout", 1.0)):
        expected = per_machine_month * machine_months
        assert abs(events[kind] - expected) <= 4 * expected**0.5
    assert 5 <= events["gain_step"] <= 35  # 18 expected at one a machine-year

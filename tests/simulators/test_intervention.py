"""A known intervention changes the power of the machines it targets, and nothing else."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from simulators.hourly import hourly_site, with_sample_interval
from simulators.layout import Intervention, Layout, load_layout
from simulators.source import SimulatorSource
from tests.simulators.helpers import MONDAY, build, layout_document, run

NOON = MONDAY + timedelta(hours=12)  # Monday 12:00 local, mid-shift
ELECTRICAL = {"active_power", "current", "energy", "power_factor"}
# The generator's voltage and frequency sag with the load it carries.
METER_ELECTRICAL = ELECTRICAL | {"voltage", "frequency"}


def intervened(layout: Layout, **factors: object) -> Layout:
    plan = Intervention.model_validate({"start": NOON, **factors})
    return layout.model_copy(update={"intervention": plan})


def _by_key(layout: Layout) -> dict[tuple[str, str, datetime], float]:
    samples, _ = run(layout, seed=11, start=MONDAY, days=1.0)
    return {(s.machine, s.metric, s.ts): s.value for s in samples}


def test_same_seed_differs_only_in_the_power_of_targeted_machines_after_the_start() -> None:
    garment = load_layout("garment")
    plain = _by_key(garment)
    changed = _by_key(
        intervened(garment, idle_power_factor=0.85, running_power_factor=0.95, base_load_factor=0.9)
    )
    assert plain.keys() == changed.keys()
    targets = {m.id for _, m in garment.machines() if m.kind in ("production", "compressor")}
    differing = {key for key in plain if plain[key] != changed[key]}
    assert differing, "the intervention changed nothing"
    for machine, metric, ts in differing:
        assert ts >= NOON, f"{machine}/{metric} changed before the intervention"
        if machine == "meter-main":
            assert metric in METER_ELECTRICAL
        else:
            assert machine in targets and metric in ELECTRICAL, f"{machine}/{metric} changed"
    # Production counts, states and condition are untouched.
    assert not {key for key in differing if key[1] in {"units_good", "machine_state"}}


def test_running_and_idle_draw_scale_by_their_factors() -> None:
    garment = load_layout("garment")
    plain = _by_key(garment)
    changed = _by_key(intervened(garment, idle_power_factor=0.5, running_power_factor=0.8))
    ratios = {
        round(changed[key] / plain[key], 2)
        for key in plain
        if key[0] == "sew-a02" and key[1] == "active_power" and key[2] >= NOON and plain[key] > 20
    }
    # Clutch motor: 250 W rated, idle at half of it; readings are rounded to 0.1 W.
    assert ratios <= {0.5, 0.8}
    assert ratios == {0.5, 0.8}


def test_an_intervention_on_one_machine_leaves_the_others_alone() -> None:
    garment = load_layout("garment")
    plain = _by_key(garment)
    changed = _by_key(intervened(garment, machines=["comp-01"], running_power_factor=0.9))
    machines = {key[0] for key in plain if plain[key] != changed[key]}
    assert machines == {"comp-01", "meter-main"}


def test_an_intervention_naming_an_unknown_machine_is_refused() -> None:
    document = layout_document("garment")
    document["intervention"] = {"start": "2026-03-02T05:00:00Z", "machines": ["irons-01"]}
    with pytest.raises(Exception, match="not production machines or compressors"):
        build(document)


def test_hourly_figures_match_the_samples_of_the_same_run() -> None:
    layout = with_sample_interval(load_layout("garment"), 120.0)
    hours = hourly_site(layout, seed=5, start=MONDAY, days=2.0)
    source = SimulatorSource(layout, seed=5, start=MONDAY, days=2.0)
    samples = list(source.samples(threading.Event()))
    meter = [s.value for s in samples if s.machine == "meter-main" and s.metric == "energy"]
    units = sum(s.value for s in samples if s.metric == "units_good")
    assert len(hours.energy_kwh) == 48
    # The meter's first reading holds its starting value; hourly energy is what follows.
    assert sum(hours.energy_kwh) * 1000.0 == pytest.approx(meter[-1] - meter[0], abs=1.0)
    assert sum(hours.units) == units
    assert hours.hour_start_ms[1] - hours.hour_start_ms[0] == 3_600_000
    assert 20.0 < min(hours.ambient_c) < max(hours.ambient_c) < 40.0
    assert max(hours.operating_fraction) == 1.0 and min(hours.operating_fraction) == 0.0


def test_hourly_figures_are_fixed_by_the_seed() -> None:
    layout = with_sample_interval(load_layout("garment"), 300.0)
    start = datetime(2026, 3, 1, 17, tzinfo=UTC)
    first = hourly_site(layout, seed=3, start=start, days=1.0)
    again = hourly_site(layout, seed=3, start=start, days=1.0)
    other = hourly_site(layout, seed=4, start=start, days=1.0)
    assert first == again
    assert first.energy_kwh != other.energy_kwh


def test_sample_interval_override_reaches_every_channel() -> None:
    layout = with_sample_interval(load_layout("garment"), 60.0)
    for _, machine in layout.machines():
        assert machine.interval_s == 60.0
        assert machine.condition_interval_s == 60.0
        assert getattr(machine, "production_interval_s", 60.0) == 60.0

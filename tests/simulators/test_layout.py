"""Layouts: the packaged ones load, and wrong ones fail with a message that says what is wrong."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from simulators.layout import (
    ColdRoom,
    Compressor,
    Meter,
    Pasteuriser,
    ProductionMachine,
    available_layouts,
    load_layout,
)
from tests.simulators.helpers import build, layout_document
from tonle.errors import ConfigError

ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
METRIC = re.compile(r"^[a-z][a-z0-9_]*$")


def test_the_packaged_layouts_are_garment_food_tiny_and_fleet() -> None:
    assert available_layouts() == ["fleet", "food", "garment", "tiny"]


@pytest.mark.parametrize("name", ["garment", "food", "tiny", "fleet"])
def test_every_packaged_layout_loads_with_valid_ids_and_metrics(name: str) -> None:
    layout = load_layout(name)
    assert ID.fullmatch(layout.site)
    for line, machine in layout.machines():
        assert ID.fullmatch(line)
        assert ID.fullmatch(machine.id)
        for metric in machine.reported_metrics():
            assert METRIC.fullmatch(metric)
    assert layout.timezone == "Asia/Phnom_Penh"


def test_garment_is_modest_and_has_the_parts_the_analytics_need() -> None:
    layout = load_layout("garment")
    machines = dict(((line, m.id), m) for line, m in layout.machines())
    assert 10 <= len(machines) <= 14
    assert {line.id for line in layout.lines} == {"sewing-a", "sewing-b", "cutting", "utilities"}
    clutch = [
        m for m in machines.values() if isinstance(m, ProductionMachine) and m.drive == "clutch"
    ]
    servo = [
        m for m in machines.values() if isinstance(m, ProductionMachine) and m.drive == "servo"
    ]
    assert len(clutch) == 3 and len(servo) == 3
    assert {m.idle_power_fraction() for m in clutch} == {0.5}
    assert {m.idle_power_fraction() for m in servo} == {0.01}
    meter = machines[("utilities", "meter-main")]
    assert isinstance(meter, Meter)
    assert set(meter.reported_metrics()) == {
        "voltage",
        "current",
        "active_power",
        "energy",
        "power_factor",
        "frequency",
        "generator_on",
    }
    assert isinstance(machines[("utilities", "comp-01")], Compressor)
    assert machines[("utilities", "ambient-01")].reported_metrics() == ("ambient_temp",)
    shift = layout.shifts[0]
    assert (shift.start, shift.end) == (time(7), time(16))
    assert shift.days == ["mon", "tue", "wed", "thu", "fri", "sat"]
    assert layout.generator is not None


def test_food_has_cold_rooms_a_pasteuriser_and_a_packaging_line() -> None:
    layout = load_layout("food")
    kinds = [type(m) for _, m in layout.machines()]
    assert kinds.count(ColdRoom) == 2
    assert kinds.count(Pasteuriser) == 1
    assert [m.id for m in next(li for li in layout.lines if li.id == "packaging").machines] == [
        "fill-01",
        "seal-01",
        "case-01",
    ]


def test_tiny_has_one_line_a_rotating_machine_with_vibration_and_a_meter() -> None:
    layout = load_layout("tiny")
    assert [line.id for line in layout.lines] == ["line-1"]
    metrics = {m.id: m.reported_metrics() for _, m in layout.machines()}
    assert set(metrics) == {"sew-01", "comp-01", "meter-01"}
    assert "vibration_rms" in metrics["comp-01"]
    assert "machine_state" in metrics["sew-01"]


def test_a_layout_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text((Path(__file__).parents[2] / "simulators/layouts/tiny.yaml").read_text())
    assert load_layout(path).site == "tiny"
    assert load_layout(str(path)).site == "tiny"


def test_an_unknown_name_lists_the_packaged_layouts() -> None:
    with pytest.raises(ConfigError, match=r"no packaged layout named 'shoes'.*garment"):
        load_layout("shoes")


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_layout(tmp_path / "none.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(site="Tiny Site"), "site"),
        (lambda d: d["lines"][0].update(id="_line"), "lines.0.id"),
        (lambda d: d["lines"][0]["machines"][0].update(id="Sew 01"), "id"),
        (lambda d: d.update(timezone="Mars/Olympus"), "unknown time zone"),
        (lambda d: d["lines"][0]["machines"][0].update(metrics=["Active-Power"]), "metrics"),
        (lambda d: d["lines"][0]["machines"][0].update(metrics=["pressure"]), "cannot report"),
        (
            lambda d: d["lines"][0]["machines"][0].update(metrics=["vibration_rms"]),
            "need a `condition:` block",
        ),
        (lambda d: d["lines"][0]["machines"].append(dict(d["lines"][0]["machines"][0])), "twice"),
        (lambda d: d["lines"][0]["machines"][0].update(kind="loom"), "kind"),
        (lambda d: d["lines"][0]["machines"][1].update(load_bar=8.0), "load_bar"),
        (lambda d: d["grid"].update(sag_depth=[0.9, 0.7]), "sag_depth"),
        (lambda d: d["lines"][0]["machines"][0].update(colour="red"), "colour"),
    ],
)
def test_a_wrong_layout_is_rejected_with_the_reason(change: object, message: str) -> None:
    document = layout_document("tiny")
    change(document)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=re.escape(message)):
        build(document)


def test_unquoted_yaml_clock_times_are_read_as_clock_times() -> None:
    document = layout_document("tiny")
    # YAML 1.1 reads an unquoted 16:00 as the base-60 integer 960.
    document["shifts"][0].update(start=420, end=960)
    shift = build(document).shifts[0]
    assert (shift.start, shift.end) == (time(7, 0), time(16, 0))


def test_series_lists_every_reported_metric() -> None:
    layout = load_layout("tiny")
    assert ("line-1", "meter-01", "generator_on") in layout.series()
    assert len(layout.series()) == sum(len(m.reported_metrics()) for _, m in layout.machines())

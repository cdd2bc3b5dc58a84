"""The maintenance benchmark's claims that are cheap enough to check on every run."""

from __future__ import annotations

from tests.conftest import SHARED
from tonle.cli.bench_maintenance import met, nab_figures

NAB = SHARED / "datasets" / "nab"


def test_the_monitor_beats_the_isolation_forest_on_nab_machine_temperature() -> None:
    figures = nab_figures(NAB)
    assert figures["nab_windows_scored"] == 3
    assert figures["nab_windows_found"] >= 2
    assert figures["nab_false_per_week"] < figures["nab_iforest_false_per_week"]


def test_targets_read_both_ways() -> None:
    assert met("event_recall", 0.95) == "yes"
    assert met("event_recall", 0.85) == "NO"
    assert met("false_per_1000h", 0.4) == "yes"
    assert met("false_per_1000h", 0.6) == "NO"
    assert met("healthy_hours", 1.0) == ""

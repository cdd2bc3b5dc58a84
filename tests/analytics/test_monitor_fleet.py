"""The condition monitor on a simulated fleet whose failures are known."""

from __future__ import annotations

from analytics.maintenance_eval import combine, score_machine
from analytics.monitor import monitor
from tonle.cli.bench_maintenance import truth_of
from tonle.cli.rul_training import samples_of, simulated_fleet


def test_the_monitor_warns_of_simulated_failures_without_crying_wolf() -> None:
    fleet = simulated_fleet(seed=21, machines=6, days=120)
    scores = []
    for history in fleet.machines:
        truth, resets = truth_of(fleet, history)
        watched = monitor(samples_of(history), fleet.start_ms, fleet.end_ms, resets)
        scores.append(score_machine([a.episode for a in watched.alerts], truth))
        for alert in watched.alerts:
            assert alert.severity in {"warning", "critical"}
            assert alert.reasons, "every alert says what moved"
    score = combine(scores)
    assert score.failures >= 3, "the fleet must fail a few times to be a test at all"
    assert score.event_recall >= 0.75
    assert score.median_lead_h >= 24.0
    assert score.false_per_1000h <= 1.0

"""OEE and the six big losses on closed-form examples."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.oee import machine_oee, oee

MIN = 60_000  # ms


def test_the_textbook_example() -> None:
    # 480 min planned, 420 operating, 1 min ideal cycle, 400 made, 380 good.
    availability, performance, quality, overall = oee(480 * 60, 420 * 60, 60, 400, 380)
    assert availability == 0.875
    assert round(performance * 100, 2) == 95.24
    assert quality == 0.95
    assert round(overall * 100, 2) == 79.17
    assert oee(0, 0, 60, 0, 0) == (0.0, 0.0, 0.0, 0.0)


def test_six_big_losses_of_one_shift() -> None:
    # 07:00–16:00 with lunch 11:00–12:00: 480 planned minutes (times in minutes from 07:00).
    spans = [  # (start, end, state)
        (0, 120, 2),  # running
        (120, 150, 3),  # breakdown: 30 min
        (150, 155, 1),  # minor stop: 5 min
        (155, 240, 2),
        (240, 300, 1),  # lunch: planned, not a loss
        (300, 420, 2),
        (420, 440, 1),  # setup: 20 min (≥ 10 min)
        (440, 540, 2),
    ]
    starts = np.array([a * MIN for a, _, _ in spans], dtype=np.int64)
    ends = np.array([b * MIN for _, b, _ in spans], dtype=np.int64)
    states = np.array([s for _, _, s in spans], dtype=np.int64)
    good_ts = np.array([60 * MIN, 200 * MIN, 400 * MIN], dtype=np.int64)
    good = np.array([100.0, 150.0, 130.0])
    reject_ts = np.array([3 * MIN, 300 * MIN], dtype=np.int64)  # one at start-up, one later
    rejects = np.array([4.0, 6.0])
    result = machine_oee(
        period=(0, 540 * MIN),
        breaks=[(240 * MIN, 300 * MIN)],
        state_starts_ms=starts,
        state_ends_ms=ends,
        states=states,
        good_ts_ms=good_ts,
        good=good,
        reject_ts_ms=reject_ts,
        rejects=rejects,
        ideal_cycle_s=60.0,
    )
    assert result.planned_s == 480 * 60
    assert (result.breakdown_s, result.setup_s, result.minor_stop_s) == (1800, 1200, 300)
    assert result.operating_s == (480 - 30 - 20) * 60
    assert (result.good_units, result.startup_reject_units, result.defect_units) == (380, 4, 6)
    assert result.total_units == 390
    assert result.availability == pytest.approx(430 / 480)
    assert result.performance == pytest.approx(390 * 60 / (430 * 60))
    assert result.quality == pytest.approx(380 / 390)
    assert result.oee == pytest.approx(380 * 60 / (480 * 60))  # good units × cycle / planned
    # Reduced speed: net operating time (less minor stops) beyond the ideal time for the units.
    assert result.reduced_speed_s == (430 - 5) * 60 - 390 * 60


@pytest.mark.db
def test_line_oee_sums_its_machines(database_url: str) -> None:
    import psycopg

    columns = (
        "site, line, machine, bucket_start, bucket_end, label, planned_s, operating_s, "
        "total_units, good_units, ideal_cycle_s, availability, performance, quality, oee, "
        "breakdown_s, setup_s, minor_stop_s, reduced_speed_s, startup_reject_units, "
        "defect_units, run_id"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        (run_id,) = conn.execute(
            "INSERT INTO analytics_runs (site, period_start, period_end, model_version) "
            "VALUES ('s', now(), now(), 't') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        rows = [  # the textbook shift, and a machine half as long with nothing lost
            ("m1", 480 * 60, 420 * 60, 60.0, 400, 380),
            ("m2", 240 * 60, 240 * 60, 60.0, 240, 240),
        ]
        for machine, planned, operating, ideal, total, good in rows:
            conn.execute(
                f"INSERT INTO oee_shifts ({columns}) VALUES ('s', 'l', %s, "
                "'2026-01-05 00:00Z', '2026-01-05 08:00Z', 'day', %s, %s, %s, %s, %s, "
                "0, 0, 0, 0, 0, 0, 0, 0, 0, 0, %s)",
                (machine, planned, operating, total, good, ideal, run_id),
            )
        line = conn.execute(
            "SELECT machines, availability, performance, quality, oee FROM oee_lines"
        ).fetchone()
    assert line is not None
    machines, availability, performance, quality, overall = line
    assert machines == 2
    assert availability == pytest.approx(660 / 720)
    assert performance == pytest.approx(640 / 660)
    assert quality == pytest.approx(620 / 640)
    assert overall == pytest.approx(620 / 720)
    assert overall == pytest.approx(availability * performance * quality)

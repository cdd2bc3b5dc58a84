"""Idle waste per bucket and the ranking of machines by it."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.energy import BucketEnergy
from analytics.idle import idle_energy, rank_by_idle
from analytics.series import Series

MIN_MS = 60_000


def test_only_idle_readings_count() -> None:
    ts = np.arange(7, dtype=np.int64) * 10 * MIN_MS  # readings every 10 minutes for an hour
    power = Series(ts, np.array([600.0, 600.0, 1200.0, 1200.0, 600.0, 0.0, 0.0]))
    states = np.array([1, 1, 2, 2, 1, 0, 0], dtype=np.int8)
    buckets = idle_energy(power, states, [0, 30 * MIN_MS, 60 * MIN_MS], max_gap_s=900)
    assert buckets.energy_kwh.tolist() == pytest.approx([0.2, 0.1])


def test_states_must_match_readings() -> None:
    with pytest.raises(ValueError, match="one entry per"):
        idle_energy(Series.of([0, 1], [1.0, 1.0]), [1], [0, 1])


def test_ranking_puts_the_largest_idle_draw_first() -> None:
    edges = np.array([0, 1], dtype=np.int64)
    bucket = BucketEnergy(edges, np.array([2.5]), np.array([1.0]), np.array([0.0]))
    assert rank_by_idle({"sew-a01": 1.0, "comp-01": bucket, "sew-b01": 0.1}) == [
        ("comp-01", 2.5),
        ("sew-a01", 1.0),
        ("sew-b01", 0.1),
    ]

"""NAB machine temperature: loader, probation, range scoring and the IsolationForest reference."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from analytics.episodes import Episode
from analytics.nab import (
    MS_PER_WEEK,
    isolation_forest_nab,
    load_nab,
    probation_end_ms,
    score_nab,
    window_features,
)
from analytics.series import to_ms
from tests.conftest import SHARED

NAB = SHARED / "datasets" / "nab"


def utc_ms(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


def test_load_nab_reads_the_machine_temperature_file() -> None:
    ts, values, windows = load_nab(NAB)
    # 22,695 rows in the file; the hour from 2014-01-07 02:00 is written twice.
    assert ts.size == values.size == 22_695 - 12
    assert ts.dtype == np.int64 and values.dtype == np.float64
    assert bool(np.all(np.diff(ts) == 300_000))
    assert int(ts[0]) == utc_ms("2013-12-02 21:15:00")
    assert values[0] == pytest.approx(73.96732207)
    assert len(windows) == 4
    assert windows[0] == (utc_ms("2013-12-10 06:25:00"), utc_ms("2013-12-12 05:35:00"))
    assert windows[3] == (utc_ms("2014-02-07 14:55:00"), utc_ms("2014-02-09 14:05:00"))


def test_load_nab_keeps_the_first_reading_of_a_repeated_time(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text(
        "timestamp,value\n"
        "2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n"
        "2014-01-01 00:00:00,9\n2014-01-01 00:05:00,9\n2014-01-01 00:10:00,3\n"
    )
    (tmp_path / "windows.json").write_text(
        json.dumps({"x/m.csv": [["2014-01-01 00:05:00.000000", "2014-01-01 00:10:00.000000"]]})
    )
    ts, values, windows = load_nab(tmp_path, "m")
    assert values.tolist() == [1.0, 2.0, 3.0]
    assert (ts - ts[0]).tolist() == [0, 300_000, 600_000]
    assert windows == [(int(ts[1]), int(ts[2]))]


def test_probation_is_the_first_fifteen_percent_of_rows() -> None:
    ts = np.arange(100, dtype=np.int64) * 10
    assert probation_end_ms(ts) == 150
    assert probation_end_ms(ts, fraction=0.5) == 500
    assert probation_end_ms(ts, max_rows=7) == 70


def test_nab_probation_leaves_three_windows_to_score() -> None:
    ts, _, windows = load_nab(NAB)
    end = probation_end_ms(ts)
    assert end == int(ts[math.floor(0.15 * ts.size)]) == utc_ms("2013-12-14 16:45:00")
    span = (int(ts[0]), int(ts[-1]))
    assert score_nab([], windows, end, span).windows_scored == 3
    # NAB's own scorer caps the probation at 750 rows, before the first window.
    assert score_nab([], windows, probation_end_ms(ts, max_rows=750), span).windows_scored == 4


def test_score_nab_by_range() -> None:
    windows = [(100, 300), (400, 500), (600, 700)]
    end = 250
    found = [
        Episode(120, 150, 0, 1.0),  # during probation: neither scored nor false
        Episode(150, 420, 0, 1.0),  # opened in probation, overlaps window 2: finds it
        Episode(260, 270, 0, 1.0),  # overlaps only the probation window: not false
        Episode(450, 460, 0, 1.0),  # window 2 again
        Episode(520, 530, 0, 1.0),  # between windows: false
        Episode(700, None, 0, 1.0),  # opens as window 3 ends, still open: false
    ]
    score = score_nab(found, windows, end, (0, end + 2 * MS_PER_WEEK))
    assert (score.windows_scored, score.windows_found, score.false_episodes) == (2, 1, 2)
    assert (score.weeks, score.false_per_week) == (2.0, 1.0)


def test_score_nab_with_nothing_scored() -> None:
    score = score_nab([Episode(10, 20, 0, 1.0)], [(0, 5)], 100, (0, 100))
    assert (score.windows_scored, score.false_episodes, score.weeks) == (0, 0, 0.0)
    assert score.false_per_week == 0.0


def test_window_features_look_only_at_the_past() -> None:
    ts = np.arange(200, dtype=np.int64) * 300_000
    values = np.sin(np.arange(200) / 7.0)
    changed = values.copy()
    changed[150:] += 50.0
    before = window_features(ts, values)
    after = window_features(ts, changed)
    assert before.shape == (200, 5)
    np.testing.assert_array_equal(before[:150], after[:150])
    assert not np.array_equal(before[150:], after[150:])


def test_isolation_forest_reference_on_machine_temperature() -> None:
    ts, values, windows = load_nab(NAB)
    end = probation_end_ms(ts)
    found = isolation_forest_nab(ts, values, end, random_state=0)
    assert all(e.start_ms >= end for e in found)
    score = score_nab(found, windows, end, (int(ts[0]), int(ts[-1])))
    assert score.windows_scored == 3
    assert 1 <= score.windows_found <= 3
    assert 0.2 <= score.false_per_week <= 2.0
    assert score.weeks == pytest.approx(9.56, abs=0.01)


def test_isolation_forest_reference_needs_a_probation_period() -> None:
    ts = np.arange(10, dtype=np.int64)
    with pytest.raises(ValueError, match="two non-empty parts"):
        isolation_forest_nab(ts, np.zeros(10), probation_end_ms=0)

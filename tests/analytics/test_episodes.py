"""Alert episodes: hysteresis, persistence and merging, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.episodes import Episode, Hysteresis, alerts, episodes, merge

TS = np.arange(20, dtype=np.int64) * 10
SCORE = np.array([0, 5, 5, 5, 6, 2, 5, 0, 0, 0, 0, 0, 0, 5, 5, 5, np.nan, 5, 0, 0], dtype=float)


def test_an_alert_opens_after_persistence_and_closes_after_quiet() -> None:
    found = alerts(TS, SCORE, Hysteresis(4, 1, open_after=3, close_after=3, merge_gap_ms=0))
    assert found == [Episode(30, 90, 4, 6.0), Episode(150, None, 13, 5.0)]


def test_a_score_between_the_thresholds_keeps_an_alert_open() -> None:
    score = np.array([5, 5, 5, 3, 3, 3, 3, 0, 0], dtype=float)
    ts = np.arange(9, dtype=np.int64)
    found = alerts(ts, score, Hysteresis(4, 2, open_after=3, close_after=2, merge_gap_ms=0))
    assert found == [Episode(2, 8, 0, 5.0)]


def test_missing_windows_neither_open_nor_close() -> None:
    score = np.array([5, np.nan, 5, np.nan, 5, 0, np.nan, 0], dtype=float)
    ts = np.arange(8, dtype=np.int64)
    found = alerts(ts, score, Hysteresis(4, 1, open_after=3, close_after=2, merge_gap_ms=0))
    assert found == [Episode(4, 7, 0, 5.0)]


def test_episodes_close_together_merge() -> None:
    rule = Hysteresis(4, 1, open_after=3, close_after=3, merge_gap_ms=60)
    assert episodes(TS, SCORE, rule) == [Episode(30, None, 4, 6.0)]
    assert merge([Episode(0, 10, 0, 1.0), Episode(100, 110, 5, 2.0)], 50) == [
        Episode(0, 10, 0, 1.0),
        Episode(100, 110, 5, 2.0),
    ]


def test_an_episode_overlaps_what_it_touches() -> None:
    assert Episode(10, 20, 0, 1.0).overlaps(19, 30)
    assert not Episode(10, 20, 0, 1.0).overlaps(20, 30)
    assert Episode(10, None, 0, 1.0).overlaps(1000, 2000)


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="close_at"):
        Hysteresis(1, 2)
    with pytest.raises(ValueError, match="at least 1"):
        Hysteresis(2, 1, open_after=0)

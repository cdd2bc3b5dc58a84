"""Fleet event scoring on hand-made truth, and the rolling z-score baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.episodes import Episode, Hysteresis
from analytics.maintenance_eval import (
    FleetScore,
    MachineTruth,
    combine,
    fleet_score,
    rolling_zscore,
    score_machine,
    trailing_moments,
    zscore_episodes,
)

H = 3_600_000
D = 24 * H


def ep(start_d: float, end_d: float | None) -> Episode:
    """An episode from day numbers (peak fields do not matter to the scoring)."""
    return Episode(int(start_d * D), None if end_d is None else int(end_d * D), 0, 5.0)


# Machine A, observed for 100 days: two failures, both warned of.
TRUTH_A = MachineTruth(
    span_ms=(0, 100 * D),
    failures_ms=(50 * D, 90 * D),
    degradation_ms=((40 * D, 50 * D), (85 * D, 90 * D)),
    excluded_ms=((50 * D, 52 * D), (90 * D, 91 * D)),
)
EPISODES_A = [
    ep(5, 6),  # warm-up: not counted
    ep(30, 31),  # healthy time: false
    ep(45, 46),  # in the 14 days before the first failure: caught it, 120 h ahead
    ep(51, 51.5),  # repair downtime: not counted
    ep(70, None),  # opened 20 days ahead, still open when the fault began 5 days ahead
    ep(88, 89),  # also before the second failure, but later than the open one
]

# Machine B, 60 days: one failure in the warm-up, one missed.
TRUTH_B = MachineTruth(
    span_ms=(0, 60 * D),
    failures_ms=(10 * D, 40 * D),
    degradation_ms=((3 * D, 10 * D), (35 * D, 40 * D)),
    excluded_ms=((10 * D, 11 * D), (40 * D, 41 * D)),
)
EPISODES_B = [
    ep(8, 12),  # warm-up (and stands over the unscored failure): not counted
    ep(20, 26),  # closes exactly 14 days before the failure: misses it, false
]


def test_score_machine_catches_both_failures_of_machine_a() -> None:
    score = score_machine(EPISODES_A, TRUTH_A)
    assert (score.failures, score.caught, score.event_recall) == (2, 2, 1.0)
    # The open episode warned of the second failure only from the fault's onset.
    assert score.lead_times_h == (120.0, 120.0)
    assert score.median_lead_h == 120.0
    assert score.p10_lead_h == 120.0
    assert (score.episodes, score.true_episodes, score.false_episodes) == (4, 3, 1)
    assert score.episode_precision == 0.75
    # 86 days after the warm-up, less 10 + 5 days of degradation and 2 + 1 of repairs.
    assert score.healthy_hours == 68 * 24
    assert score.false_per_1000h == pytest.approx(1000 / 1632, rel=1e-12)


def test_score_machine_skips_warm_up_failure_and_misses_closed_episode() -> None:
    score = score_machine(EPISODES_B, TRUTH_B)
    assert (score.failures, score.caught, score.event_recall) == (1, 0, 0.0)
    assert score.lead_times_h == ()
    assert (score.median_lead_h, score.p10_lead_h) == (0.0, 0.0)
    assert (score.episodes, score.true_episodes, score.false_episodes) == (1, 0, 1)
    assert score.episode_precision == 0.0
    # 46 days after the warm-up, less 5 days of degradation and 1 of repair.
    assert score.healthy_hours == 40 * 24
    assert score.false_per_1000h == pytest.approx(1000 / 960, rel=1e-12)


def test_an_episode_open_one_ms_into_the_warning_window_catches() -> None:
    truth = MachineTruth(span_ms=(0, 60 * D), failures_ms=(40 * D,))
    just_in = Episode(20 * D, 26 * D + 1, 0, 5.0)
    assert score_machine([just_in], truth).caught == 1
    assert score_machine([just_in], truth).lead_times_h == (20 * 24.0,)


def test_an_episode_opening_at_the_failure_does_not_catch_it() -> None:
    truth = MachineTruth(span_ms=(0, 60 * D), failures_ms=(40 * D,))
    assert score_machine([ep(40, None)], truth).caught == 0


def test_no_episodes_gives_precision_one_and_no_false_alarms() -> None:
    score = score_machine([], TRUTH_A)
    assert (score.failures, score.caught, score.event_recall) == (2, 0, 0.0)
    assert (score.episodes, score.episode_precision, score.false_per_1000h) == (0, 1.0, 0.0)
    assert score.healthy_hours == 68 * 24


def test_a_machine_without_failures_or_alerts_scores_one_and_one() -> None:
    score = score_machine([], MachineTruth(span_ms=(0, 30 * D)))
    assert (score.failures, score.event_recall, score.episode_precision) == (0, 1.0, 1.0)
    assert score.healthy_hours == 16 * 24


def test_warm_up_and_warning_window_are_parameters() -> None:
    # Without warm-up the first failure of B is scored, and caught by the episode at day 8.
    score = score_machine(EPISODES_B, TRUTH_B, warmup_ms=0)
    assert (score.failures, score.caught) == (2, 1)
    assert score.lead_times_h == (48.0,)
    assert (score.episodes, score.true_episodes) == (2, 1)
    # A one-day warning window misses the episode closing eight days before the failure.
    no_onset = MachineTruth(span_ms=(0, 60 * D), failures_ms=(40 * D,))
    assert score_machine([ep(30, 32)], no_onset, warn_ms=D).caught == 0
    assert score_machine([ep(30, 32)], no_onset, warn_ms=10 * D).caught == 1
    # Nor does an episode that closed before the fault began (day 35) warn of it.
    assert score_machine([ep(30, 32)], TRUTH_B, warn_ms=10 * D).caught == 0


def test_episodes_outside_the_span_are_not_counted() -> None:
    truth = MachineTruth(span_ms=(10 * D, 40 * D))
    assert score_machine([ep(5, 6), ep(40, 41)], truth).episodes == 0


def test_combine_sums_counts_and_pools_lead_times() -> None:
    fleet = combine([score_machine(EPISODES_A, TRUTH_A), score_machine(EPISODES_B, TRUTH_B)])
    assert (fleet.failures, fleet.caught) == (3, 2)
    assert fleet.event_recall == pytest.approx(2 / 3, rel=1e-12)
    assert (fleet.episodes, fleet.true_episodes, fleet.false_episodes) == (5, 3, 2)
    assert fleet.episode_precision == 0.6
    assert fleet.healthy_hours == 2592.0
    assert fleet.false_per_1000h == pytest.approx(2000 / 2592, rel=1e-12)
    assert fleet.lead_times_h == (120.0, 120.0)
    assert fleet.median_lead_h == 120.0


def test_combine_of_nothing_is_an_empty_score() -> None:
    empty = combine([])
    assert empty == FleetScore(0, 0, 1.0, 0, 0, 1.0, 0, 0.0, 0.0, (), 0.0, 0.0)


def test_fleet_score_rejects_inconsistent_counts() -> None:
    with pytest.raises(ValueError, match="one lead time per caught failure"):
        fleet_score(2, 1, 0, 0, 10.0, [])
    with pytest.raises(ValueError, match="between 0 and their totals"):
        fleet_score(1, 2, 0, 0, 10.0, [1.0, 2.0])


def test_machine_truth_rejects_backward_intervals() -> None:
    with pytest.raises(ValueError, match="span"):
        MachineTruth(span_ms=(5, 5))
    with pytest.raises(ValueError, match="ends before it starts"):
        MachineTruth(span_ms=(0, 10), degradation_ms=((6, 4),))


def test_rolling_zscore_on_a_tiny_series() -> None:
    ts = np.arange(5, dtype=np.int64)
    z = rolling_zscore(ts, np.array([1.0, 2.0, 3.0, 4.0, 10.0]), window_ms=3, min_history=2)
    assert math.isnan(z[0]) and math.isnan(z[1])
    # t=2: window {1, 2}: mean 1.5, sample std √0.5; t=3: {1, 2, 3}; t=4: {2, 3, 4}.
    assert z[2] == pytest.approx(1.5 * math.sqrt(2), rel=1e-12)
    assert z[3] == pytest.approx(2.0, rel=1e-12)
    assert z[4] == pytest.approx(7.0, rel=1e-12)


def test_rolling_zscore_waits_for_min_history_and_skips_nan() -> None:
    ts = np.arange(6, dtype=np.int64) * 1000
    values = np.array([1.0, 3.0, np.nan, 2.0, 5.0, 2.0])
    z = rolling_zscore(ts, values, window_ms=10_000, min_history=3)
    assert np.isnan(z[:4]).all()
    # t=4: window {1, 3, 2} (the NaN left out): mean 2, std 1.
    assert z[4] == pytest.approx(3.0, rel=1e-12)
    assert z[5] == pytest.approx(0.75 / np.std([1, 3, 2, 5], ddof=1), rel=1e-12)


def test_rolling_zscore_of_a_step_is_large() -> None:
    ts = np.arange(60, dtype=np.int64) * 60_000
    values = np.where(np.arange(60) % 2 == 0, 1.0, -1.0)
    values[40:] += 10.0
    z = rolling_zscore(ts, values, window_ms=20 * 60_000, min_history=10)
    assert np.nanmax(z[:40]) < 1.1
    # 20 readings of ±1: mean 0, std √(20/19); the step stands 11 above it.
    assert z[40] == pytest.approx(11.0 / math.sqrt(20 / 19), rel=1e-12)


def test_rolling_zscore_of_a_flat_window_is_finite() -> None:
    ts = np.arange(4, dtype=np.int64)
    z = rolling_zscore(ts, np.array([2.0, 2.0, 2.0, 2.5]), window_ms=10, min_history=2)
    assert z[2] == 0.0
    assert z[3] == pytest.approx(0.5 / 1e-9)


def test_trailing_moments_with_the_current_reading() -> None:
    ts = np.array([0, 10, 20, 30], dtype=np.int64)
    count, mean, std = trailing_moments(
        ts, np.array([1.0, 2.0, 3.0, 7.0]), 20, include_current=True
    )
    assert count.tolist() == [1, 2, 3, 3]
    assert mean.tolist() == pytest.approx([1.0, 1.5, 2.0, 4.0])
    assert math.isnan(std[0])
    assert std[3] == pytest.approx(np.std([2.0, 3.0, 7.0], ddof=1), rel=1e-12)


def test_trailing_moments_rejects_unsorted_time() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        trailing_moments(np.array([0, 2, 1]), np.zeros(3), 5, include_current=False)


def test_zscore_episodes_opens_at_a_spike_train() -> None:
    ts = np.arange(80, dtype=np.int64) * 60_000
    values = np.where(np.arange(80) % 2 == 0, 1.0, -1.0)
    values[50:53] = 30.0
    rule = Hysteresis(open_at=3.0, close_at=2.0, open_after=2, close_after=3, merge_gap_ms=0)
    found = zscore_episodes(ts, values, window_ms=20 * 60_000, min_history=10, rule=rule)
    assert len(found) == 1
    assert found[0].start_ms == int(ts[51])
    assert found[0].end_ms is not None and found[0].end_ms > found[0].start_ms

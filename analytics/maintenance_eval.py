"""Scoring of maintenance alerts against what really happened, and a rolling z-score baseline.

Fleet event scoring, per machine (simulated machines with ground truth), for one
detector's :class:`~analytics.episodes.Episode` list:

- a failure is *caught* if an episode that started before the failure is standing at
  some time within the 14 days before it while the fault was there (``overlaps(max(fail
  − 14 d, onset), fail)``, where the onset is the start of the degradation interval that
  ends at the failure, if the truth has one); its *lead time* is failure − the later of
  that episode's start and the onset (the earliest such episode): an alert that stood
  before the fault began warned of nothing until it began. Failures in the
  first 14 days of the observation span are not scored (no chance to warn); the
  warm-up is a parameter.
- an episode is *true* if it overlaps any degradation interval of its machine
  (extended to the failure/maintenance end), else *false*; episodes that start within
  an excluded interval or the warm-up period (e.g. while the model had no healthy
  history yet) are not counted; the warm-up is a parameter.
- healthy machine-hours: calendar hours of the span outside degradation intervals and
  excluded intervals (after the warm-up).

A degradation interval runs from the onset of a fault to the failure, or to the
preventive maintenance that cut it short. Excluded intervals are repair and
maintenance downtime. All intervals are half-open ``[start_ms, end_ms)`` in UTC epoch
milliseconds, and only failures and episode starts inside the observation span count.

The ratios never come out NaN: with no episodes the precision is 1.0 (no alert was
wrong), and with no scored failures the recall is 1.0 (none was missed); the counts
beside them say which case it is.

:func:`rolling_zscore` is the reference for what a simple threshold system does: how
many trailing standard deviations a reading sits from the trailing mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from analytics.episodes import Episode, Hysteresis, episodes
from analytics.series import MS_PER_HOUR, FloatArray, Int64Array

MS_PER_DAY = 24 * MS_PER_HOUR
WARN_MS = 14 * MS_PER_DAY
"""How long before a failure a standing alert counts as a warning of it."""
WARMUP_MS = 14 * MS_PER_DAY
"""The start of the observation span in which failures and episodes are not scored."""

ZSCORE_RULE = Hysteresis(open_at=3.0, close_at=2.0, open_after=3, close_after=6)
"""Open at z ≥ 3 for 3 windows, close after 6 windows below 2, merge within 24 h."""

Interval = tuple[int, int]


@dataclass(frozen=True, slots=True)
class MachineTruth:
    """What happened to one machine while it was observed (UTC epoch ms, half-open).

    ``degradation_ms`` holds ``(onset, failure or preventive maintenance)`` pairs and
    ``excluded_ms`` the repair and maintenance downtime.
    """

    span_ms: Interval
    failures_ms: tuple[int, ...] = ()
    degradation_ms: tuple[Interval, ...] = ()
    excluded_ms: tuple[Interval, ...] = ()

    def __post_init__(self) -> None:
        if not self.span_ms[0] < self.span_ms[1]:
            raise ValueError("the observation span must end after it starts")
        for start, end in (*self.degradation_ms, *self.excluded_ms):
            if end < start:
                raise ValueError(f"interval ({start}, {end}) ends before it starts")


@dataclass(frozen=True, slots=True)
class FleetScore:
    """Event recall, lead times and false alerts of a detector on one machine or a fleet.

    ``event_recall`` and ``episode_precision`` are fractions (0–1), 1.0 when there is
    nothing to score (see the module docstring). ``false_per_1000h`` is false episodes
    per 1000 healthy machine-hours (0.0 without healthy hours). ``median_lead_h`` and
    ``p10_lead_h`` (10th percentile) are over the caught failures, 0.0 if none.
    """

    failures: int
    caught: int
    event_recall: float
    episodes: int
    true_episodes: int
    episode_precision: float
    false_episodes: int
    healthy_hours: float
    false_per_1000h: float
    lead_times_h: tuple[float, ...]
    median_lead_h: float
    p10_lead_h: float


def fleet_score(
    failures: int,
    caught: int,
    episodes: int,
    true_episodes: int,
    healthy_hours: float,
    lead_times_h: Sequence[float],
) -> FleetScore:
    """A :class:`FleetScore` from its counts, with the ratios and lead statistics derived."""
    if not 0 <= caught <= failures or not 0 <= true_episodes <= episodes:
        raise ValueError("caught and true_episodes must lie between 0 and their totals")
    if len(lead_times_h) != caught:
        raise ValueError("there must be one lead time per caught failure")
    false_episodes = episodes - true_episodes
    leads = np.asarray(lead_times_h, dtype=np.float64)
    return FleetScore(
        failures=failures,
        caught=caught,
        event_recall=caught / failures if failures else 1.0,
        episodes=episodes,
        true_episodes=true_episodes,
        episode_precision=true_episodes / episodes if episodes else 1.0,
        false_episodes=false_episodes,
        healthy_hours=healthy_hours,
        false_per_1000h=1000.0 * false_episodes / healthy_hours if healthy_hours > 0 else 0.0,
        lead_times_h=tuple(float(h) for h in leads),
        median_lead_h=float(np.median(leads)) if leads.size else 0.0,
        p10_lead_h=float(np.percentile(leads, 10)) if leads.size else 0.0,
    )


def score_machine(
    found: Sequence[Episode],
    truth: MachineTruth,
    *,
    warn_ms: int = WARN_MS,
    warmup_ms: int = WARMUP_MS,
) -> FleetScore:
    """Score one machine's episodes against its truth (definitions in the module docstring)."""
    span_start, span_end = truth.span_ms
    scored_from = span_start + warmup_ms

    lead_times_h: list[float] = []
    failures = 0
    e_min = -(2**62)  # no onset known: an episode's own start is its warning
    for fail_ms in sorted(truth.failures_ms):
        if not scored_from <= fail_ms < span_end:
            continue
        failures += 1
        onset = next((a for a, b in truth.degradation_ms if a < fail_ms <= b), None)
        since = fail_ms - warn_ms if onset is None else max(fail_ms - warn_ms, onset)
        earliest = onset if onset is not None else e_min
        # overlaps() needs start < fail, so only episodes open before the failure count.
        starts = [max(e.start_ms, earliest) for e in found if e.overlaps(since, fail_ms)]
        if starts:
            lead_times_h.append((fail_ms - min(starts)) / MS_PER_HOUR)

    counted = [
        e
        for e in found
        if scored_from <= e.start_ms < span_end
        and not any(start <= e.start_ms < end for start, end in truth.excluded_ms)
    ]
    true_episodes = sum(
        1 for e in counted if any(e.overlaps(start, end) for start, end in truth.degradation_ms)
    )
    unhealthy_ms = _union_ms((*truth.degradation_ms, *truth.excluded_ms), scored_from, span_end)
    healthy_ms = max(0, span_end - scored_from) - unhealthy_ms
    return fleet_score(
        failures=failures,
        caught=len(lead_times_h),
        episodes=len(counted),
        true_episodes=true_episodes,
        healthy_hours=healthy_ms / MS_PER_HOUR,
        lead_times_h=lead_times_h,
    )


def combine(scores: Iterable[FleetScore]) -> FleetScore:
    """One :class:`FleetScore` for a fleet from its machines' scores (counts are summed)."""
    parts = list(scores)
    return fleet_score(
        failures=sum(s.failures for s in parts),
        caught=sum(s.caught for s in parts),
        episodes=sum(s.episodes for s in parts),
        true_episodes=sum(s.true_episodes for s in parts),
        healthy_hours=sum(s.healthy_hours for s in parts),
        lead_times_h=[h for s in parts for h in s.lead_times_h],
    )


def _union_ms(intervals: Iterable[Interval], lo: int, hi: int) -> int:
    """Length of the union of ``intervals`` clipped to ``[lo, hi)``."""
    total = 0
    reached = lo
    for start, end in sorted(intervals):
        start, end = max(start, reached), min(end, hi)
        if end > start:
            total += end - start
            reached = end
    return total


def trailing_moments(
    ts_ms: Int64Array, values: FloatArray, window_ms: int, *, include_current: bool
) -> tuple[Int64Array, FloatArray, FloatArray]:
    """Count, mean and sample standard deviation of the readings in a trailing window.

    The window of the reading at ``t`` holds the readings at ``[t − window_ms, t)``, or
    ``[t − window_ms, t]`` with ``include_current``; NaN readings are left out. The
    mean is NaN without readings, the deviation with fewer than two. O(n) through
    cumulative sums; ``ts_ms`` must be strictly increasing.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    x = np.asarray(values, dtype=np.float64)
    if ts.shape != x.shape or ts.ndim != 1:
        raise ValueError("ts_ms and values must be 1-D arrays of the same length")
    if ts.size > 1 and not bool(np.all(np.diff(ts) > 0)):
        raise ValueError("ts_ms must be strictly increasing")
    if window_ms <= 0:
        raise ValueError("window_ms must be positive")
    finite = np.isfinite(x)
    # Sums of deviations from an early reading lose less to cancellation than raw sums.
    ref = float(x[finite][0]) if finite.any() else 0.0
    d = np.where(finite, x - ref, 0.0)
    zero = np.zeros(1)
    c0 = np.concatenate([zero, np.cumsum(finite, dtype=np.float64)])
    c1 = np.concatenate([zero, np.cumsum(d)])
    c2 = np.concatenate([zero, np.cumsum(d * d)])
    lo = np.searchsorted(ts, ts - window_ms, side="left")
    hi = np.arange(ts.size) + (1 if include_current else 0)
    count = c0[hi] - c0[lo]
    s1 = c1[hi] - c1[lo]
    s2 = c2[hi] - c2[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_d = np.where(count > 0, s1 / count, np.nan)
        var = np.where(count > 1, np.maximum(s2 - s1 * mean_d, 0.0) / (count - 1), np.nan)
    counts: Int64Array = np.rint(count).astype(np.int64)
    return counts, mean_d + ref, np.sqrt(var)


def rolling_zscore(
    ts_ms: Int64Array,
    values: FloatArray,
    window_ms: int,
    min_history: int,
    *,
    min_std: float = 1e-9,
) -> FloatArray:
    """How many standard deviations each reading sits from its trailing window's mean.

    ``|value − mean| / std`` over the readings in ``[t − window_ms, t)`` (the past only,
    not the reading itself), with the sample standard deviation floored at ``min_std``
    so a flat window gives a large finite score rather than infinity. NaN until the
    window holds ``min_history`` readings (at least 2) and wherever the value is NaN.
    """
    if min_history < 2:
        raise ValueError("min_history must be at least 2 (a deviation needs two readings)")
    x = np.asarray(values, dtype=np.float64)
    count, mean, std = trailing_moments(ts_ms, x, window_ms, include_current=False)
    z: FloatArray = np.abs(x - mean) / np.maximum(std, min_std)
    z[count < min_history] = np.nan
    return z


def zscore_episodes(
    ts_ms: Int64Array,
    values: FloatArray,
    window_ms: int,
    min_history: int,
    rule: Hysteresis = ZSCORE_RULE,
) -> list[Episode]:
    """Episodes of the rolling z-score baseline: :func:`rolling_zscore` through ``rule``."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    return episodes(ts, rolling_zscore(ts, values, window_ms, min_history), rule)

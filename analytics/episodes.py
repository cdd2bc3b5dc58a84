"""Alert episodes from an anomaly score: open and close with hysteresis, merge near ones.

A score crosses ``open_at`` for ``open_after`` consecutive windows to open an alert, and
must stay below ``close_at`` (lower than ``open_at``) for ``close_after`` windows to close
it, so a score hovering around one threshold does not flap. Alerts that close and reopen
within ``merge_gap_ms`` are one episode: a fault that comes and goes is one story for the
maintenance team, not ten. Missing windows (NaN scores, a machine at rest) neither open
nor close anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analytics.series import FloatArray, Int64Array


@dataclass(frozen=True, slots=True)
class Hysteresis:
    """Thresholds and persistence of an alert on a score where higher is worse."""

    open_at: float
    close_at: float
    open_after: int = 3
    close_after: int = 6
    merge_gap_ms: int = 24 * 3_600_000

    def __post_init__(self) -> None:
        if not self.close_at <= self.open_at:
            raise ValueError("close_at must not exceed open_at")
        if self.open_after < 1 or self.close_after < 1:
            raise ValueError("open_after and close_after must be at least 1")
        if self.merge_gap_ms < 0:
            raise ValueError("merge_gap_ms must not be negative")


@dataclass(frozen=True, slots=True)
class Episode:
    """Windows ``[start_ms, end_ms)`` during which an alert stood; ``end_ms`` is None if open.

    ``start_ms`` is the end of the window that opened the alert (when it could first be
    known); ``peak_index`` points at the window with the highest score.
    """

    start_ms: int
    end_ms: int | None
    peak_index: int
    peak_score: float

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        """Whether the episode stood at any time in ``[start_ms, end_ms)``."""
        stop = self.end_ms if self.end_ms is not None else math.inf
        return self.start_ms < end_ms and stop > start_ms


def alerts(ts_ms: Int64Array, score: FloatArray, rule: Hysteresis) -> list[Episode]:
    """Alerts (before merging) over windows ending at ``ts_ms`` with ``score``.

    ``ts_ms`` must be increasing. An alert opens at the window completing ``open_after``
    consecutive scores at or above ``open_at`` and closes at the window completing
    ``close_after`` consecutive scores below ``close_at``; one still open at the end has
    ``end_ms`` None.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    if ts.shape != s.shape:
        raise ValueError("ts_ms and score must have the same length")
    result: list[Episode] = []
    is_open = False
    above = below = 0
    start_ms = 0
    peak_index = -1
    peak = -math.inf
    for i in range(ts.size):
        value = float(s[i])
        if math.isnan(value):
            continue
        if not is_open:
            if value >= rule.open_at:
                above += 1
                # The run that opens an alert may hold its peak already.
                if above == 1 or value > peak:
                    peak_index, peak = i, value
            else:
                above = 0
            if above >= rule.open_after:
                is_open, below = True, 0
                start_ms = int(ts[i])
            continue
        if value > peak:
            peak_index, peak = i, value
        below = below + 1 if value < rule.close_at else 0
        if below >= rule.close_after:
            result.append(Episode(start_ms, int(ts[i]), peak_index, peak))
            is_open, above = False, 0
    if is_open:
        result.append(Episode(start_ms, None, peak_index, peak))
    return result


def merge(found: list[Episode], gap_ms: int) -> list[Episode]:
    """Join episodes whose gap (close to next open) is at most ``gap_ms``."""
    merged: list[Episode] = []
    for episode in sorted(found, key=lambda e: e.start_ms):
        if merged:
            last = merged[-1]
            if last.end_ms is None or episode.start_ms - last.end_ms <= gap_ms:
                better = episode.peak_score > last.peak_score
                merged[-1] = Episode(
                    last.start_ms,
                    None
                    if last.end_ms is None or episode.end_ms is None
                    else max(last.end_ms, episode.end_ms),
                    episode.peak_index if better else last.peak_index,
                    max(last.peak_score, episode.peak_score),
                )
                continue
        merged.append(episode)
    return merged


def episodes(ts_ms: Int64Array, score: FloatArray, rule: Hysteresis) -> list[Episode]:
    """Alerts with hysteresis, merged into episodes (the whole rule in one call)."""
    return merge(alerts(ts_ms, score, rule), rule.merge_gap_ms)

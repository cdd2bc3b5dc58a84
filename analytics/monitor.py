"""Condition monitoring of one machine over a period: learn, assess, alert, explain.

A machine's life is cut into segments by its resets — a repair after a failure, a
preventive maintenance, a new sensor — because afterwards its healthy vibration is not
what it was. In each segment the first ``learn_ms`` of running (at least the model's
``min_windows`` windows) are its healthy period: a :class:`HealthModel` is fitted on them
and assesses the rest of the segment. The scores then open and close alerts with
hysteresis, merged into episodes (:mod:`analytics.episodes`), each with a severity and
the features that moved at its worst window.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np

from analytics.condition import Samples, Windows
from analytics.episodes import Episode, Hysteresis, episodes
from analytics.health import Assessment, HealthModel, Reason, explain
from analytics.series import MS_PER_HOUR, FloatArray

MS_PER_DAY: Final = 24 * MS_PER_HOUR
# Open at a smoothed score of 4 held for 3 h; close after 12 h below 2.5; episodes less
# than two days apart are one.
DEFAULT_RULE: Final = Hysteresis(
    open_at=4.0, close_at=2.5, open_after=3, close_after=12, merge_gap_ms=2 * MS_PER_DAY
)
CRITICAL_HEALTH: Final = 30.0
# A machine that did not run enough to learn from in its first week gets a day more at a
# time, for this long, before it is left without a model until its next reset.
LEARN_SEARCH_MS: Final = 30 * MS_PER_DAY


@dataclass(frozen=True)
class Alert:
    """An anomaly episode of one machine, with its severity and what moved."""

    episode: Episode
    severity: str  # "warning" or "critical"
    min_health: float
    reasons: list[Reason]


@dataclass(frozen=True)
class ModelRecord:
    """A model fitted while monitoring: used from ``valid_from_ms`` to ``valid_to_ms``.

    ``status`` is ``"active"`` for a model that assessed its period, ``"rejected"`` for a
    retrained candidate that did not replace the model in use (``reason`` says why).
    """

    model: HealthModel
    segment_start_ms: int
    valid_from_ms: int
    valid_to_ms: int
    status: str
    reason: str


# How far a retrained model's healthy level may move from the one in use (log units for
# vibration, about 10 %; kelvins for the bearing): more than sensor drift and re-mounting
# do in a month, less than a developing fault does.
MAX_DRIFT: Final = {"vibration_rms": 0.10, "vibration_peak": 0.10, "bearing_temp": 2.0}


def review(
    active: HealthModel,
    candidate: HealthModel,
    samples: Samples,
    start_ms: int,
    end_ms: int,
    scores: FloatArray,
    rule: Hysteresis = DEFAULT_RULE,
) -> tuple[bool, str]:
    """Whether ``candidate``, fitted on ``[start_ms, end_ms)``, may replace ``active``; and why.

    ``scores`` are the active model's scores over that period. A candidate is refused
    when the period was not healthy by the active model (it would learn a fault as
    normal) or when its healthy level moved further than drift explains.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size < active.min_windows:
        return False, f"only {finite.size} running windows to retrain on"
    worst = float(finite.max())
    if worst >= rule.open_at:
        return False, f"the period was not healthy (score up to {worst:.1f}): kept the model"
    old = active.expected(samples, start_ms, end_ms)
    new = candidate.expected(samples, start_ms, end_ms)
    moves = []
    for name, limit in MAX_DRIFT.items():
        if name in old and name in new:
            delta = new[name] - old[name]
            delta = delta[np.isfinite(delta)]
            if delta.size == 0:
                continue
            move = float(np.median(delta))
            if abs(move) > limit:
                return (
                    False,
                    f"{name} healthy level moved {move:+.3f}, beyond drift: kept the model",
                )
            moves.append(f"{name} {move:+.3f}")
    return True, "retrained on a healthy period; level moved " + (", ".join(moves) or "0")


@dataclass(frozen=True)
class Monitoring:
    """Health of one machine over a period, the models behind it and its alerts.

    ``assessment`` covers every window of the period (NaN while a model is learning or
    the machine is at rest); ``models`` every model fitted, in order, used or refused;
    ``learning`` the periods spent learning.
    """

    assessment: Assessment
    models: list[ModelRecord] = field(default_factory=list)
    learning: list[tuple[int, int]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def _empty_assessment(start_ms: int, end_ms: int, window_ms: int) -> Assessment:
    n = max(0, (end_ms - start_ms) // window_ms)
    ends = start_ms + window_ms * (np.arange(n, dtype=np.int64) + 1)
    nan = np.full(n, np.nan)
    return Assessment(Windows(ends, np.zeros(n, np.int64), nan, {}, {}), {}, {}, nan, nan)


def _concat(parts: list[Assessment]) -> Assessment:
    parts = [p for p in parts if len(p.windows)]
    if not parts:
        return _empty_assessment(0, 0, MS_PER_HOUR)
    features = sorted({k for p in parts for k in p.z})
    metrics = sorted({k for p in parts for k in p.windows.level})

    def cat(get: object, keys: list[str]) -> dict[str, FloatArray]:
        out: dict[str, FloatArray] = {}
        for key in keys:
            chunks = []
            for p in parts:
                values = get(p).get(key)  # type: ignore[operator]
                chunks.append(values if values is not None else np.full(len(p.windows), np.nan))
            out[key] = np.concatenate(chunks)
        return out

    windows = Windows(
        np.concatenate([p.windows.end_ms for p in parts]),
        np.concatenate([p.windows.count for p in parts]),
        np.concatenate([p.windows.load for p in parts]),
        cat(lambda p: p.windows.level, metrics),
        cat(lambda p: p.windows.spread, metrics),
    )
    return Assessment(
        windows,
        cat(lambda p: p.z, features),
        cat(lambda p: p.change, features),
        np.concatenate([p.score for p in parts]),
        np.concatenate([p.health for p in parts]),
    )


def learning_end(
    samples: Samples, model: HealthModel, start_ms: int, end_ms: int, learn_ms: int
) -> int:
    """When a segment has had ``learn_ms`` and at least ``min_windows`` running windows."""
    ts = samples.between(start_ms, end_ms).ts_ms
    if ts.size == 0:
        return end_ms
    hours = np.unique((ts - start_ms) // model.window_ms)
    enough = (
        start_ms + (int(hours[model.min_windows - 1]) + 1) * model.window_ms
        if (hours.size >= model.min_windows)
        else end_ms
    )
    return min(end_ms, max(start_ms + learn_ms, enough))


def monitor(
    samples: Samples,
    start_ms: int,
    end_ms: int,
    resets_ms: list[int],
    *,
    learn_ms: int = 7 * MS_PER_DAY,
    retrain_ms: int = 30 * MS_PER_DAY,
    rule: Hysteresis = DEFAULT_RULE,
    template: HealthModel | None = None,
) -> Monitoring:
    """Learn and assess each segment of ``[start_ms, end_ms)`` between ``resets_ms``.

    Windows are aligned to ``start_ms``; resets are rounded up to the next window. A
    segment learns from its first ``learn_ms`` (a day more at a time, for up to
    :data:`LEARN_SEARCH_MS`, while the machine has not run enough). Every
    ``retrain_ms`` (0: never) a candidate is fitted on the last ``learn_ms`` and replaces
    the model in use only if :func:`review` accepts it; either way it is recorded.
    """
    base = template if template is not None else HealthModel()
    window = base.window_ms
    cuts = sorted(
        {start_ms, end_ms}
        | {
            start_ms + -(-(r - start_ms) // window) * window
            for r in resets_ms
            if start_ms < r < end_ms
        }
    )
    parts: list[Assessment] = []
    records: list[ModelRecord] = []
    learning: list[tuple[int, int]] = []
    for seg_start, seg_end in itertools.pairwise(cuts):
        model = HealthModel(**base.get_params())
        search_end = min(seg_end, seg_start + learn_ms + LEARN_SEARCH_MS)
        learnt = learning_end(samples, model, seg_start, search_end, learn_ms)
        fitted = False
        for attempt in range(learnt, search_end, MS_PER_DAY):
            try:
                model.fit(samples, seg_start, attempt)
            except ValueError:
                continue
            learnt, fitted = attempt, True
            break
        if not fitted:
            learnt = seg_end
        learning.append((seg_start, learnt))
        parts.append(_empty_assessment(seg_start, learnt, window))
        if not fitted:
            continue
        reason = "fitted on the first healthy period after a reset"
        t = learnt
        while t < seg_end:
            until = min(seg_end, t + retrain_ms) if retrain_ms else seg_end
            part = model.assess(samples.between(t - 2 * MS_PER_DAY, until), t, until)
            parts.append(part)
            records.append(ModelRecord(model, seg_start, t, until, "active", reason))
            t = until
            if t >= seg_end:
                break
            candidate = HealthModel(**base.get_params())
            since = t - learn_ms
            recent = part.score[part.windows.end_ms > since]
            try:
                candidate.fit(samples, since, t)
            except ValueError as exc:
                reason = f"kept: {exc}"
                continue
            accepted, why = review(model, candidate, samples, since, t, recent, rule)
            if accepted:
                model, reason = candidate, why
            else:
                records.append(ModelRecord(candidate, seg_start, t, t, "rejected", why))
                reason = "kept after a refused retrain"
    assessment = _concat(parts)
    # An alert never outlives a reset: the repair or the service answered it.
    found: list[Alert] = []
    for seg_start, seg_end in itertools.pairwise(cuts):
        lo, hi = np.searchsorted(assessment.windows.end_ms, [seg_start, seg_end], side="right")
        for alert in alerts_of(_slice(assessment, int(lo), int(hi)), rule, offset=int(lo)):
            if alert.episode.end_ms is None and seg_end < end_ms:
                closed = replace(alert.episode, end_ms=seg_end)
                alert = replace(alert, episode=closed)
            found.append(alert)
    return Monitoring(assessment, records, learning, found)


def _slice(assessment: Assessment, lo: int, hi: int) -> Assessment:
    w = assessment.windows
    return Assessment(
        Windows(
            w.end_ms[lo:hi],
            w.count[lo:hi],
            w.load[lo:hi],
            {k: v[lo:hi] for k, v in w.level.items()},
            {k: v[lo:hi] for k, v in w.spread.items()},
        ),
        {k: v[lo:hi] for k, v in assessment.z.items()},
        {k: v[lo:hi] for k, v in assessment.change.items()},
        assessment.score[lo:hi],
        assessment.health[lo:hi],
    )


def alerts_of(
    assessment: Assessment, rule: Hysteresis = DEFAULT_RULE, offset: int = 0
) -> list[Alert]:
    """Episodes of an assessment, each with its severity and the features that moved.

    ``offset`` is added to each episode's ``peak_index`` (for a slice of a longer one).
    """
    found = episodes(assessment.windows.end_ms, assessment.score, rule)
    result = []
    for episode in found:
        stop = (
            assessment.windows.end_ms.size
            if episode.end_ms is None
            else int(np.searchsorted(assessment.windows.end_ms, episode.end_ms, side="right"))
        )
        first = int(np.searchsorted(assessment.windows.end_ms, episode.start_ms))
        health = assessment.health[first:stop]
        lowest = float(np.nanmin(health)) if np.isfinite(health).any() else float("nan")
        severity = "critical" if lowest < CRITICAL_HEALTH else "warning"
        reasons = explain(assessment, episode.peak_index)
        shifted = Episode(
            episode.start_ms, episode.end_ms, episode.peak_index + offset, episode.peak_score
        )
        result.append(Alert(shifted, severity, lowest, reasons))
    return result

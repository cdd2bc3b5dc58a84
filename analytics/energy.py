"""Energy per interval, from cumulative meters or by integrating active power, and into buckets.

Both sources become :class:`EnergyIncrements`: the energy between each pair of
consecutive readings. Within a pair the energy is spread evenly over time, so a bucket
edge that falls inside a pair takes its share by time. Bucket edges are the caller's
(15 minutes, hours, days, shift boundaries), so the same function serves them all.

Meters (``energy`` in Wh, cumulative):

* a drop to near zero is a **reset**: the meter counts again from zero, so the new
  reading is the energy since the reset;
* a drop from near ``rollover_kwh`` to near zero is a **rollover**: the register wrapped;
* any other drop is a glitch: the register is held at its highest value until readings
  pass it again, so no energy is counted twice and none is negative;
* a pair further apart than ``max_gap_s`` is a **gap**: the meter still counted the energy,
  so it is kept and spread evenly across the gap, and the pair is flagged.

Power (``active_power`` in W): each reading holds until the next (``method="hold"``,
left Riemann sum, for instantaneous readings) or each reading is the mean power since the
previous one (``method="mean"``, for meters that integrate between samples). A pair
further apart than ``max_gap_s`` is a gap: it contributes nothing and is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from analytics.series import MS_PER_HOUR, MS_PER_S, FloatArray, Int64Array, Series

BoolArray = npt.NDArray[np.bool_]

WH_PER_KWH: Final = 1_000.0
DEFAULT_GAP_INTERVALS: Final = 5.0  # max_gap_s defaults to this many nominal intervals
_RESET_FRACTION: Final = 0.1  # a reading below this share of the previous one is a reset
_ROLLOVER_ZONE: Final = 0.1  # within this share of the register's top or bottom


@dataclass(frozen=True)
class EnergyIncrements:
    """Energy between consecutive readings of one sensor.

    ``energy_kwh[i]`` and ``gap[i]`` belong to ``[ts_ms[i], ts_ms[i + 1])``; ``gap`` marks
    pairs further apart than the allowed maximum. ``interval_s`` is the nominal sample
    interval used for completeness.
    """

    ts_ms: Int64Array
    energy_kwh: FloatArray
    gap: BoolArray
    interval_s: float

    @property
    def total_kwh(self) -> float:
        """All the energy in the increments."""
        return float(self.energy_kwh.sum())


@dataclass(frozen=True)
class BucketEnergy:
    """Energy per bucket ``[edges_ms[k], edges_ms[k + 1])``.

    ``completeness`` is the share of expected readings present (0 to 1) and ``gap_s`` the
    seconds of the bucket not covered by a normal pair of readings (gaps, and time before
    the first or after the last reading).
    """

    edges_ms: Int64Array
    energy_kwh: FloatArray
    completeness: FloatArray
    gap_s: FloatArray


def nominal_interval_s(ts_ms: Int64Array) -> float:
    """The typical sample interval: the median spacing of the readings (0 with fewer than two)."""
    if ts_ms.size < 2:
        return 0.0
    return float(np.median(np.diff(ts_ms))) / MS_PER_S


def _max_gap_ms(interval_s: float, max_gap_s: float | None) -> float:
    if max_gap_s is not None:
        if max_gap_s <= 0:
            raise ValueError(f"max_gap_s must be positive, got {max_gap_s}")
        return max_gap_s * MS_PER_S
    return DEFAULT_GAP_INTERVALS * interval_s * MS_PER_S if interval_s > 0 else np.inf


def meter_increments(
    series: Series,
    *,
    rollover_kwh: float | None = None,
    max_gap_s: float | None = None,
    interval_s: float | None = None,
) -> EnergyIncrements:
    """Energy between readings of a cumulative ``energy`` meter (Wh), never negative.

    Args:
        series: the meter's readings in Wh.
        rollover_kwh: the value at which the register wraps to zero (e.g. 999999.9);
            None if it does not wrap.
        max_gap_s: pairs further apart are flagged as gaps (their energy is kept and
            spread across the gap). Default: five nominal intervals.
        interval_s: nominal sample interval; default: the median spacing.
    """
    ts = series.ts_ms
    nominal_s = nominal_interval_s(ts) if interval_s is None else float(interval_s)
    limit_ms = _max_gap_ms(nominal_s, max_gap_s)
    values = np.asarray(series.values, dtype=np.float64)
    if values.size < 2:
        return EnergyIncrements(ts, np.zeros(0), np.zeros(0, dtype=bool), nominal_s)
    if not bool(np.all(np.isfinite(values))):
        keep = np.isfinite(values)
        return meter_increments(
            Series(ts[keep], values[keep]),
            rollover_kwh=rollover_kwh,
            max_gap_s=max_gap_s,
            interval_s=nominal_s,
        )
    before, after = values[:-1], values[1:]
    drop = after < before
    jump = np.zeros(values.size - 1)
    if rollover_kwh is not None:
        top_wh = rollover_kwh * WH_PER_KWH
        wrapped = (
            drop & (before >= (1.0 - _ROLLOVER_ZONE) * top_wh) & (after <= _ROLLOVER_ZONE * top_wh)
        )
        jump[wrapped] = top_wh
        drop &= ~wrapped
    reset = drop & (after <= _RESET_FRACTION * before)
    jump[reset] = before[reset]
    continuous = values + np.concatenate(([0.0], np.cumsum(jump)))
    held = np.maximum.accumulate(continuous)
    energy_kwh = np.diff(held) / WH_PER_KWH
    gap = np.diff(ts) > limit_ms
    return EnergyIncrements(ts, energy_kwh, gap, nominal_s)


def power_increments(
    series: Series,
    *,
    method: Literal["hold", "mean"] = "hold",
    max_gap_s: float | None = None,
    interval_s: float | None = None,
) -> EnergyIncrements:
    """Energy between readings of ``active_power`` (W) by time integration; gaps give nothing.

    Args:
        series: power readings in W; readings that are not finite count as missing.
        method: ``"hold"``: a reading holds until the next; ``"mean"``: a reading is the
            mean power since the previous one.
        max_gap_s: pairs further apart contribute nothing and are flagged as gaps.
            Default: five nominal intervals.
        interval_s: nominal sample interval; default: the median spacing.
    """
    if method not in ("hold", "mean"):
        raise ValueError(f"method must be 'hold' or 'mean', got {method!r}")
    ts = series.ts_ms
    nominal_s = nominal_interval_s(ts) if interval_s is None else float(interval_s)
    limit_ms = _max_gap_ms(nominal_s, max_gap_s)
    if ts.size < 2:
        return EnergyIncrements(ts, np.zeros(0), np.zeros(0, dtype=bool), nominal_s)
    power_w = np.asarray(series.values, dtype=np.float64)
    applied = power_w[:-1] if method == "hold" else power_w[1:]
    dt_ms = np.diff(ts)
    gap = (dt_ms > limit_ms) | ~np.isfinite(applied)
    energy_kwh = np.where(gap, 0.0, applied * dt_ms / MS_PER_HOUR / WH_PER_KWH)
    return EnergyIncrements(ts, energy_kwh, gap, nominal_s)


def cumulative_kwh(increments: EnergyIncrements, at_ms: Int64Array) -> FloatArray:
    """Energy from the first reading up to each instant in ``at_ms`` (spread evenly in pairs)."""
    return _cumulative(increments.ts_ms, increments.energy_kwh, np.asarray(at_ms, np.int64))


def covered_s(increments: EnergyIncrements, at_ms: Int64Array) -> FloatArray:
    """Seconds covered by normal (not gap) pairs from the first reading up to each instant."""
    ts = increments.ts_ms
    span_s = np.where(increments.gap, 0.0, np.diff(ts) / MS_PER_S)
    return _cumulative(ts, span_s, np.asarray(at_ms, np.int64))


def _cumulative(ts_ms: Int64Array, per_pair: FloatArray, at_ms: Int64Array) -> FloatArray:
    if ts_ms.size < 2:
        return np.zeros(at_ms.shape)
    before = np.concatenate(([0.0], np.cumsum(per_pair)))
    pair = np.clip(np.searchsorted(ts_ms, at_ms, side="right") - 1, 0, ts_ms.size - 2)
    start = ts_ms[pair]
    length = ts_ms[pair + 1] - start
    share = np.clip((at_ms - start) / length, 0.0, 1.0)
    result: FloatArray = before[pair] + per_pair[pair] * share
    return result


def bucket_energy(increments: EnergyIncrements, edges_ms: object) -> BucketEnergy:
    """Energy, completeness and uncovered seconds per bucket between consecutive ``edges_ms``.

    Args:
        increments: from :func:`meter_increments` or :func:`power_increments`.
        edges_ms: strictly increasing bucket edges (UTC epoch ms); n edges give n - 1 buckets.
    """
    edges = np.asarray(edges_ms, dtype=np.int64)
    if edges.ndim != 1 or edges.size < 2 or not bool(np.all(np.diff(edges) > 0)):
        raise ValueError("edges_ms must hold at least two strictly increasing instants")
    energy_kwh = np.diff(cumulative_kwh(increments, edges))
    duration_s = np.diff(edges) / MS_PER_S
    gap_s = duration_s - np.diff(covered_s(increments, edges))
    counts = np.diff(np.searchsorted(increments.ts_ms, edges, side="left"))
    if increments.interval_s > 0:
        expected = duration_s / increments.interval_s
        completeness = np.clip(counts / expected, 0.0, 1.0)
    else:
        completeness = np.zeros(duration_s.shape)
    return BucketEnergy(edges, energy_kwh, completeness, np.maximum(gap_s, 0.0))


def regular_edges_ms(start_ms: int, end_ms: int, step_s: float, origin_ms: int = 0) -> Int64Array:
    """Edges every ``step_s`` aligned to ``origin_ms`` (the clock), covering ``[start_ms, end_ms)``.

    Use ``origin_ms`` for a local midnight when buckets of an hour or more must follow the
    site's clock rather than UTC.
    """
    step_ms = round(step_s * MS_PER_S)
    if step_ms <= 0 or end_ms <= start_ms:
        raise ValueError("need step_s > 0 and end_ms > start_ms")
    first = origin_ms + ((start_ms - origin_ms) // step_ms) * step_ms
    last = origin_ms - ((origin_ms - end_ms) // step_ms) * step_ms
    return np.arange(first, last + 1, step_ms, dtype=np.int64)

"""Condition features of a rotating machine over sliding windows: level, spread, trend, shape.

Everything here is a pure function of arrays. :func:`align` puts a machine's condition
readings (``vibration_rms``, ``vibration_peak``, ``bearing_temp``, ``motor_temp``) on one
time grid with its load (``active_power``, else ``current``, as read just before each
sample). :func:`window_stats` summarises the samples taken while the machine was running
over consecutive windows (an hour by default): per metric the level (mean), the spread
(standard deviation) and the load. :func:`trailing_trend` and :func:`trailing_kurtosis`
look back over several windows (a day by default) for a slope and the peakedness of the
distribution — a fault that comes and goes makes a heavy-tailed level.

The signal-level functions (:func:`rms`, :func:`crest_factor`, :func:`kurtosis`,
:func:`slope`) are the textbook definitions: the RMS of a sine of amplitude A is A/√2,
its crest factor √2, and the (Pearson) kurtosis of Gaussian noise 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from analytics.series import MS_PER_HOUR, FloatArray, Int64Array, Series

CONDITION_METRICS: Final = ("vibration_rms", "vibration_peak", "bearing_temp", "motor_temp")
LOAD_METRICS: Final = ("active_power", "current")
# A machine draws at least this share of its reference load while its shaft turns.
RUNNING_LOAD: Final = 0.05
# The load reading must be at most this old to describe a condition sample.
LOAD_STALENESS_MS: Final = 15 * 60_000


def rms(x: FloatArray) -> float:
    """Root mean square of a signal."""
    a = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else float("nan")


def crest_factor(x: FloatArray) -> float:
    """Peak over RMS: √2 for a sine, higher when impacts ride on the signal."""
    a = np.asarray(x, dtype=np.float64)
    r = rms(a)
    return float(np.max(np.abs(a)) / r) if a.size and r > 0 else float("nan")


def kurtosis(x: FloatArray) -> float:
    """Pearson kurtosis (fourth standardised moment): 3 for Gaussian noise, 1.5 for a sine."""
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size < 4:
        return float("nan")
    d = a - a.mean()
    var = float(np.mean(d * d))
    return float(np.mean(d**4) / var**2) if var > 0 else float("nan")


def slope(t: FloatArray, x: FloatArray) -> float:
    """Least-squares slope of ``x`` against ``t`` (NaNs skipped); NaN with fewer than 2 points."""
    tt = np.asarray(t, dtype=np.float64)
    xx = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(tt) & np.isfinite(xx)
    if int(ok.sum()) < 2:
        return float("nan")
    tt, xx = tt[ok], xx[ok]
    dt = tt - tt.mean()
    denominator = float(np.sum(dt * dt))
    return float(np.sum(dt * (xx - xx.mean())) / denominator) if denominator > 0 else float("nan")


@dataclass(frozen=True)
class Samples:
    """A machine's condition readings on one time grid, with its load at each sample.

    ``load_raw`` is the power (W) or current (A) read last before each sample, NaN if
    none within :data:`LOAD_STALENESS_MS`; ``metrics`` holds NaN where a metric has no
    reading at that time.
    """

    ts_ms: Int64Array
    metrics: dict[str, FloatArray]
    load_raw: FloatArray
    load_metric: str | None

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    def between(self, start_ms: int, end_ms: int) -> Samples:
        """The samples in ``[start_ms, end_ms)``."""
        lo, hi = np.searchsorted(self.ts_ms, [start_ms, end_ms])
        return Samples(
            self.ts_ms[lo:hi],
            {m: v[lo:hi] for m, v in self.metrics.items()},
            self.load_raw[lo:hi],
            self.load_metric,
        )


def align(series: dict[str, Series]) -> Samples:
    """Condition metrics on the union of their timestamps, each with the load read before it."""
    present = [m for m in CONDITION_METRICS if m in series and len(series[m])]
    if not present:
        return Samples(np.empty(0, np.int64), {}, np.empty(0), None)
    ts = np.unique(np.concatenate([series[m].ts_ms for m in present]))
    metrics: dict[str, FloatArray] = {}
    for m in present:
        values = np.full(ts.size, np.nan)
        values[np.searchsorted(ts, series[m].ts_ms)] = series[m].values
        metrics[m] = values
    load_metric = next((m for m in LOAD_METRICS if m in series and len(series[m])), None)
    load = np.full(ts.size, np.nan)
    if load_metric is not None:
        source = series[load_metric]
        at = np.searchsorted(source.ts_ms, ts, side="right") - 1
        ok = at >= 0
        fresh = np.zeros(ts.size, dtype=bool)
        fresh[ok] = ts[ok] - source.ts_ms[at[ok]] <= LOAD_STALENESS_MS
        load[fresh] = source.values[at[fresh]]
    return Samples(ts, metrics, load, load_metric)


def reference_load(load_raw: FloatArray) -> float:
    """The machine's full load: the 95th percentile of its positive load readings."""
    positive = load_raw[np.isfinite(load_raw) & (load_raw > 0)]
    return float(np.percentile(positive, 95)) if positive.size else float("nan")


@dataclass(frozen=True)
class Windows:
    """Summaries of the running samples of consecutive windows ending at ``end_ms``.

    ``count`` is the running samples in each window; ``load`` their mean load as a
    fraction of the reference load; ``level``/``spread`` per metric the mean and
    standard deviation (NaN for a window with fewer than ``min_samples``).
    """

    end_ms: Int64Array
    count: Int64Array
    load: FloatArray
    level: dict[str, FloatArray]
    spread: dict[str, FloatArray]

    def __len__(self) -> int:
        return int(self.end_ms.size)


def window_stats(
    samples: Samples,
    reference: float,
    start_ms: int,
    end_ms: int,
    window_ms: int = MS_PER_HOUR,
    min_samples: int = 3,
) -> Windows:
    """Per-window level and spread of each metric over the samples taken while running.

    Windows are ``[start_ms + k·window_ms, start_ms + (k+1)·window_ms)`` up to ``end_ms``.
    A sample counts as running when its load is at least :data:`RUNNING_LOAD` of
    ``reference``; with no load metric at all every sample counts.
    """
    if window_ms <= 0:
        raise ValueError("window_ms must be positive")
    n = max(0, (end_ms - start_ms) // window_ms)
    ends = start_ms + window_ms * (np.arange(n, dtype=np.int64) + 1)
    inside = (samples.ts_ms >= start_ms) & (samples.ts_ms < start_ms + n * window_ms)
    if samples.load_metric is None:
        load = np.ones(len(samples))
    else:
        load = samples.load_raw / reference if reference > 0 else np.full(len(samples), np.nan)
    running = inside & np.isfinite(load) & (load >= RUNNING_LOAD)
    index = (samples.ts_ms[running] - start_ms) // window_ms
    count = np.bincount(index, minlength=n).astype(np.int64)[:n]

    def per_window(values: FloatArray) -> tuple[FloatArray, FloatArray]:
        v = values[running]
        ok = np.isfinite(v)
        k = np.bincount(index[ok], minlength=n)[:n].astype(np.float64)
        s = np.bincount(index[ok], weights=v[ok], minlength=n)[:n]
        ss = np.bincount(index[ok], weights=v[ok] * v[ok], minlength=n)[:n]
        enough = k >= min_samples
        safe = np.where(enough, k, 1.0)
        mean = np.where(enough, s / safe, np.nan)
        var = np.maximum(ss / safe - (s / safe) ** 2, 0.0)
        # The sample (n − 1) standard deviation, as for any small sample.
        std = np.where(enough, np.sqrt(var * safe / np.maximum(safe - 1.0, 1.0)), np.nan)
        return mean, std

    level: dict[str, FloatArray] = {}
    spread: dict[str, FloatArray] = {}
    for metric, values in samples.metrics.items():
        level[metric], spread[metric] = per_window(values)
    mean_load, _ = per_window(load)
    return Windows(ends, count, mean_load, level, spread)


def _trailing(x: FloatArray, span: int) -> FloatArray:
    """Each value with the ``span − 1`` before it, as rows (NaN-padded at the start)."""
    padded = np.concatenate([np.full(span - 1, np.nan), np.asarray(x, dtype=np.float64)])
    rows: FloatArray = np.lib.stride_tricks.sliding_window_view(padded, span)
    return rows


def trailing_trend(end_ms: Int64Array, x: FloatArray, span: int) -> FloatArray:
    """Slope per day of ``x`` over each window and the ``span − 1`` before it (NaNs skipped).

    NaN where fewer than half of the ``span`` windows have a value.
    """
    t = _trailing(np.asarray(end_ms, dtype=np.float64) / (24.0 * MS_PER_HOUR), span)
    v = _trailing(x, span)
    ok = np.isfinite(t) & np.isfinite(v)
    k = ok.sum(axis=1).astype(np.float64)
    safe_k = np.maximum(k, 1.0)
    t0 = np.where(ok, t, 0.0)
    v0 = np.where(ok, v, 0.0)
    dt = np.where(ok, t0 - (t0.sum(axis=1) / safe_k)[:, None], 0.0)
    dv = np.where(ok, v0 - (v0.sum(axis=1) / safe_k)[:, None], 0.0)
    sxx = np.sum(dt * dt, axis=1)
    out: FloatArray = np.where(
        (k * 2 >= span) & (sxx > 0), np.sum(dt * dv, axis=1) / np.where(sxx > 0, sxx, 1.0), np.nan
    )
    return out


def trailing_kurtosis(x: FloatArray, span: int) -> FloatArray:
    """Kurtosis of ``x`` over each window and the ``span − 1`` before it (NaNs skipped).

    NaN where fewer than half of the ``span`` windows have a value.
    """
    v = _trailing(x, span)
    ok = np.isfinite(v)
    k = ok.sum(axis=1).astype(np.float64)
    safe_k = np.maximum(k, 1.0)
    v0 = np.where(ok, v, 0.0)
    d = np.where(ok, v0 - (v0.sum(axis=1) / safe_k)[:, None], 0.0)
    m2 = np.sum(d**2, axis=1) / safe_k
    m4 = np.sum(d**4, axis=1) / safe_k
    out: FloatArray = np.where(
        (k * 2 >= span) & (k >= 4) & (m2 > 0), m4 / np.where(m2 > 0, m2, 1.0) ** 2, np.nan
    )
    return out

"""How well the energy analytics agree with the simulator's ground truth.

``running_f1``: machine states learned from power against the simulator's state
intervals. ``peak_hit_rate``: each month's demand peak found from ``active_power``
samples against the peak of the meter's own energy register (what a utility bills).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from analytics.energy import bucket_energy, meter_increments
from analytics.peaks import demand, monthly_peaks
from analytics.series import Series, to_ms
from analytics.states import IDLE, RUNNING, PowerStateClassifier
from simulators.hourly import with_sample_interval
from simulators.layout import load_layout
from simulators.run import build_source
from simulators.source import SimulatorSource

STATE_NUMBERS = {"off": 0, "idle": 1, "running": 2, "fault": 3}
# Loads whose state follows the shift clock or a thermostat, not their own draw.
NOT_SCORED = ("meter", "irons", "boiler")
Progress = Callable[[str], None]


def _collect(
    source: SimulatorSource, keep: Callable[[str, str, str], bool]
) -> dict[tuple[str, str, str], tuple[list[int], list[float]]]:
    found: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}
    for sample in source.samples(threading.Event()):
        if keep(sample.line, sample.machine, sample.metric):
            ts, values = found.setdefault((sample.line, sample.machine, sample.metric), ([], []))
            ts.append(to_ms(sample.ts))
            values.append(sample.value)
    return found


def running_f1(
    layout: str,
    seed: int,
    *,
    start: datetime = datetime(2026, 11, 23, tzinfo=UTC),
    days: float = 1.0,
    min_dwell_s: float = 0.0,
) -> float:
    """Pooled F1 of "running" against "idle", over machines whose state follows their power.

    Only readings whose true state is idle or running count (off and fault are left
    out); the meter and thermostat-cycled loads are not scored.
    """
    source, truth = build_source(
        layout=layout, seed=seed, start=start, days=days, realtime=False, truth_dir=None
    )
    readings = _collect(source, lambda line, machine, metric: metric == "active_power")
    tp = fp = fn = 0
    for (line, machine, _), (ts, values) in readings.items():
        if machine.startswith(NOT_SCORED):
            continue
        series = Series.of(ts, values)
        model = PowerStateClassifier(min_dwell_s=min_dwell_s, random_state=0)
        predicted = model.fit(series).predict(series)
        spans = truth.states_of(line, machine)
        starts = np.array([to_ms(s.start) for s in spans])
        actual = np.array([STATE_NUMBERS[s.state] for s in spans])[
            np.searchsorted(starts, series.ts_ms, side="right") - 1
        ]
        scored = (actual == IDLE) | (actual == RUNNING)
        is_running, said_running = actual[scored] == RUNNING, predicted[scored] == RUNNING
        tp += int(np.sum(is_running & said_running))
        fp += int(np.sum(~is_running & said_running))
        fn += int(np.sum(is_running & ~said_running))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def peak_hit_rate(
    layout: str,
    seed: int,
    *,
    start: datetime = datetime(2025, 12, 31, 17, tzinfo=UTC),
    months: int = 12,
    sample_interval_s: float = 60.0,
    window_min: int = 15,
) -> tuple[float, int]:
    """Share of months whose demand peak window is found from power samples; and months.

    The truth is the window with the most energy on the main meter's register (the
    billing measure); the estimate comes from :func:`analytics.peaks.demand` on the
    meter's ``active_power`` readings.
    """
    coarse = with_sample_interval(load_layout(layout), sample_interval_s)
    source = SimulatorSource(coarse, seed=seed, start=start, days=months * 30.5)
    meters = [
        (line.id, machine.id)
        for line in coarse.lines
        for machine in line.machines
        if machine.kind == "meter"
    ]
    if not meters:
        raise ValueError(f"layout {layout} has no main meter")
    line, machine = meters[0]
    wanted = {"active_power", "energy"}
    data = _collect(source, lambda ln, m, metric: (ln, m) == (line, machine) and metric in wanted)
    power = Series.of(*data[(line, machine, "active_power")])
    register = Series.of(*data[(line, machine, "energy")])
    windows = demand(power, interval_s=window_min * 60.0, origin_ms=to_ms(start))
    estimated = monthly_peaks(windows, timezone=coarse.timezone)
    edges = np.append(windows.start_ms, windows.end_ms[-1])
    billed = bucket_energy(meter_increments(register), edges)
    truth = monthly_peaks(
        type(windows)(
            windows.start_ms,
            windows.end_ms,
            billed.energy_kwh / (window_min / 60.0),
            billed.completeness,
        ),
        timezone=coarse.timezone,
    )
    true_start = {p.month: p.start_ms for p in truth}
    hits = sum(1 for p in estimated if true_start.get(p.month) == p.start_ms)
    return hits / max(1, len(true_start)), len(true_start)

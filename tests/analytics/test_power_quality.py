"""Outages, sags, generator time and production lost; outages checked against the simulator."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from analytics.power_quality import (
    PowerEvent,
    detect_events,
    generator_intervals,
    generator_s,
    production_lost,
    summarise,
)
from analytics.series import MS_PER_HOUR, Series, to_ms
from simulators.run import build_source

S = 1_000


def test_outages_and_sags_start_and_end_at_sample_times() -> None:
    ts = np.arange(10, dtype=np.int64) * 10 * S
    volts = np.array([230, 230, 0.5, 0.2, 230, 200, 190, 230, 230, 230], dtype=float)
    events = detect_events(Series(ts, volts), 230.0)
    assert events == [
        PowerEvent("outage", 20 * S, 40 * S, 0.2),
        PowerEvent("sag", 50 * S, 70 * S, 190.0),
    ]
    summary = summarise(events)
    assert (summary.outage_count, summary.outage_s, summary.sag_count, summary.sag_s) == (
        1,
        20.0,
        1,
        20.0,
    )


def test_events_one_reading_apart_merge_and_short_ones_can_be_dropped() -> None:
    ts = np.arange(8, dtype=np.int64) * 10 * S
    volts = np.array([230, 0, 230, 0, 0, 230, 150, 230], dtype=float)
    events = detect_events(Series(ts, volts), 230.0)
    assert events == [
        PowerEvent("outage", 10 * S, 50 * S, 0.0),
        PowerEvent("sag", 60 * S, 70 * S, 150.0),
    ]
    assert detect_events(Series(ts, volts), 230.0, min_duration_s=15) == events[:1]


def test_generator_time_counts_as_outage_and_is_summed() -> None:
    ts = np.arange(6, dtype=np.int64) * 10 * S
    volts = np.array([230, 0, 0, 228, 229, 230], dtype=float)
    generator = Series(ts, np.array([0, 0, 0, 1, 1, 0], dtype=float))
    events = detect_events(Series(ts, volts), 230.0, generator_on=generator)
    assert events == [PowerEvent("outage", 10 * S, 50 * S, 0.0)]
    assert generator_intervals(generator) == [(30 * S, 50 * S)]
    assert generator_s(generator) == 20.0


def test_production_lost_against_the_same_hour_of_other_days() -> None:
    hours = np.arange(3 * 24, dtype=np.int64)
    ts = hours * MS_PER_HOUR + MS_PER_HOUR // 2  # one count reading in the middle of each hour
    units = np.where(hours % 24 == 9, 60.0, 0.0)  # 60 units every day at 09:00-10:00
    event = PowerEvent(
        "outage", 48 * MS_PER_HOUR + 9 * MS_PER_HOUR, 48 * MS_PER_HOUR + 10 * MS_PER_HOUR, 0.0
    )
    units[-24 + 9] = 20.0  # the third day made only 20 in that hour
    (loss,) = production_lost([event], Series(ts, units))
    assert (loss.expected_units, loss.actual_units, loss.lost_units) == (60.0, 20.0, 40.0)


def test_every_simulated_outage_is_detected() -> None:
    start = datetime(2026, 11, 23, tzinfo=UTC)
    source, truth = build_source(
        layout="tiny", seed=3, start=start, days=2, realtime=False, truth_dir=None
    )
    readings: dict[str, tuple[list[int], list[float]]] = {}
    for sample in source.samples(threading.Event()):
        if sample.machine == "meter-01" and sample.metric in ("voltage", "generator_on"):
            ts, values = readings.setdefault(sample.metric, ([], []))
            ts.append(to_ms(sample.ts))
            values.append(sample.value)
    voltage = Series.of(*readings["voltage"])
    generator = Series.of(*readings["generator_on"])
    detected = [
        e for e in detect_events(voltage, 230.0, generator_on=generator) if e.kind == "outage"
    ]
    tolerance_ms = 10 * S  # the meter's sample interval
    end_ms = to_ms(truth.end) if truth.end else int(voltage.ts_ms[-1])
    outages = [o for o in truth.outages if o.kind == "outage" and to_ms(o.start) < end_ms]
    assert outages, "the tiny layout should have outages within two days"
    for outage in outages:
        start_ms, stop_ms = to_ms(outage.start), min(to_ms(outage.end), end_ms)
        assert any(
            abs(e.start_ms - start_ms) <= tolerance_ms and abs(e.end_ms - stop_ms) <= tolerance_ms
            for e in detected
        ), outage
    assert len(detected) == len(outages)


def test_bad_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError, match="outage_fraction"):
        detect_events(Series.of([0], [230.0]), 230.0, outage_fraction=0.95)

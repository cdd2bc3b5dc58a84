"""Completeness of a series: readings stored against those its typical interval calls for."""

from __future__ import annotations


def expected_readings(span_s: float, interval_s: float | None) -> int | None:
    """Readings a sensor reporting every ``interval_s`` sends over ``span_s``; None if unknown."""
    if interval_s is None or interval_s <= 0:
        return None
    return max(1, round(span_s / interval_s))


def completeness(stored: int, expected: int | None) -> float | None:
    """``stored / expected`` capped at 1; 0 with nothing stored, None if nothing is expected."""
    if stored == 0:
        return 0.0
    if expected is None:
        return None
    return min(1.0, stored / expected)

"""Outdoor and factory-floor air temperature: monthly means, a daily cycle, day-to-day weather."""

from __future__ import annotations

import calendar
import math
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from simulators.layout import Climate
from simulators.randomness import seeded
from simulators.timebase import from_ms

_MINUTE_MS = 60_000
_COOLEST_H = 6.0  # the daily minimum comes near sunrise
_HOTTEST_H = 15.0  # and the maximum in mid-afternoon


def monthly_mean(values: list[float], day: date) -> float:
    """A monthly series interpolated to ``day``, each month's value sitting at mid-month."""
    days = calendar.monthrange(day.year, day.month)[1]
    position = (day.month - 1) + (day.day - 0.5) / days - 0.5
    index = math.floor(position)
    weight = position - index
    return values[index % 12] * (1.0 - weight) + values[(index + 1) % 12] * weight


def diurnal_fraction(hour: float) -> float:
    """Where the temperature sits between the day's minimum (0) and maximum (1) at ``hour``."""
    if _COOLEST_H <= hour < _HOTTEST_H:
        return (1.0 - math.cos(math.pi * (hour - _COOLEST_H) / (_HOTTEST_H - _COOLEST_H))) / 2.0
    since_peak = (hour - _HOTTEST_H) % 24.0
    return (1.0 + math.cos(math.pi * since_peak / (24.0 - _HOTTEST_H + _COOLEST_H))) / 2.0


class ClimateModel:
    """Air temperature at any time; values are cached per minute, so repeated reads are cheap."""

    def __init__(self, config: Climate, timezone: str, seed_key: str) -> None:
        self._config = config
        self._tz = ZoneInfo(timezone)
        self._seed_key = seed_key
        self._minute = -1
        self._outdoor_c = 0.0
        self._local_hour = 0.0
        self._anomalies: dict[date, float] = {}

    def _anomaly(self, day: date) -> float:
        value = self._anomalies.get(day)
        if value is None:
            draw = seeded(f"{self._seed_key}/weather/{day.isoformat()}")
            value = draw.gauss(0.0, self._config.day_to_day_sd_k)
            if len(self._anomalies) > 64:
                self._anomalies.clear()
            self._anomalies[day] = value
        return value

    def _refresh(self, ts_ms: int) -> None:
        minute = ts_ms // _MINUTE_MS
        if minute == self._minute:
            return
        self._minute = minute
        local = from_ms(minute * _MINUTE_MS).astimezone(self._tz)
        day = local.date()
        hour = local.hour + local.minute / 60.0
        high = monthly_mean(self._config.monthly_max_c, day)
        low = monthly_mean(self._config.monthly_min_c, day)
        # Weather drifts from one day to the next rather than jumping at midnight.
        anomaly = self._anomaly(day) * (1.0 - hour / 24.0) + self._anomaly(
            day + timedelta(days=1)
        ) * (hour / 24.0)
        self._outdoor_c = low + (high - low) * diurnal_fraction(hour) + anomaly
        self._local_hour = hour

    def outdoor_c(self, ts_ms: int) -> float:
        """Outdoor air temperature, °C."""
        self._refresh(ts_ms)
        return self._outdoor_c

    def indoor_c(self, ts_ms: int) -> float:
        """Factory-floor air temperature, °C."""
        self._refresh(ts_ms)
        return self._outdoor_c + self._config.indoor_offset_k

    def local_hour(self, ts_ms: int) -> float:
        """Local clock hour (0–24) at ``ts_ms``, to the minute."""
        self._refresh(ts_ms)
        return self._local_hour

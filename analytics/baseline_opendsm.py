"""The reference hourly baseline: opendsm's CalTRACK hourly model (LF Energy OpenEEmeter).

opendsm is an optional extra used only by the benchmark; it is imported when called,
and :func:`opendsm_available` says whether it can be. Its bundled hourly sample meters
(simulated, with a known 10 % saving after a blackout) are read by
:func:`load_sample_meter`.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.series import FloatArray, Int64Array

INSTALL_HINT = "pip install opendsm 'multimethod<2'"


def opendsm_available() -> bool:
    """Whether the optional ``opendsm`` package is installed."""
    return importlib.util.find_spec("opendsm") is not None


def _series(ts_ms: Int64Array, values: FloatArray, name: str) -> Any:
    import pandas as pd

    index = pd.to_datetime(ts_ms, unit="ms", utc=True)
    return pd.Series(values, index=index, name=name)


def _fahrenheit(temp_c: FloatArray) -> FloatArray:
    return np.asarray(temp_c * 1.8 + 32.0, dtype=np.float64)


def caltrack_hourly_fit(
    baseline_start_ms: Int64Array, baseline_kwh: FloatArray, baseline_temp_c: FloatArray
) -> Any:
    """Fit opendsm's CalTRACK hourly model on a baseline (temperatures in °C, passed in °F)."""
    from opendsm import eemeter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        baseline = eemeter.HourlyCaltrackBaselineData.from_series(
            _series(baseline_start_ms, baseline_kwh, "observed"),
            _series(baseline_start_ms, _fahrenheit(baseline_temp_c), "temperature"),
            is_electricity_data=True,
        )
        return eemeter.HourlyCaltrackModel().fit(baseline)


def caltrack_hourly_model_predict(
    model: Any, start_ms: Int64Array, temp_c: FloatArray
) -> FloatArray:
    """A fitted CalTRACK hourly model's kWh for some hours (NaN where it gives none)."""
    from opendsm import eemeter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reporting = eemeter.HourlyCaltrackReportingData.from_series(
            None,
            _series(start_ms, _fahrenheit(temp_c), "temperature"),
            is_electricity_data=True,
        )
        result = model.predict(reporting)
    index = _series(start_ms, temp_c, "t").index
    predicted = result["predicted"].reindex(index)
    return np.asarray(predicted.to_numpy(dtype=np.float64), dtype=np.float64)


def caltrack_hourly_predict(
    baseline_start_ms: Int64Array,
    baseline_kwh: FloatArray,
    baseline_temp_c: FloatArray,
    reporting_start_ms: Int64Array,
    reporting_temp_c: FloatArray,
) -> FloatArray:
    """Fit opendsm's CalTRACK hourly model on a baseline and predict the reporting hours.

    Temperatures are given in °C and passed in °F, as CalTRACK's temperature bins expect.
    Hours the model leaves without a prediction come back as NaN.
    """
    model = caltrack_hourly_fit(baseline_start_ms, baseline_kwh, baseline_temp_c)
    return caltrack_hourly_model_predict(model, reporting_start_ms, reporting_temp_c)


# opendsm's hourly sample meters with a known saving: simulated loads (base, heating and
# cooling) whose reporting year is 90 % of the baseline year's model.
SAMPLE_METERS = (
    "il-electricity-cdd-hdd-hourly",
    "il-electricity-cdd-only-hourly",
    "il-gas-hdd-only-hourly",
    "il-gas-intercept-only-hourly",
)
_SAMPLE_ZONES = {"il-": "America/Chicago", "uk-": "Europe/London"}


@dataclass(frozen=True)
class SamplePeriod:
    """Aligned hours of a sample meter: start (UTC epoch ms), consumption, air temperature (°C)."""

    start_ms: Int64Array
    kwh: FloatArray
    temp_c: FloatArray


@dataclass(frozen=True)
class SampleMeter:
    """One of opendsm's bundled hourly sample meters, split at its blackout.

    ``true_savings_pct`` is the saving its metadata builds in (reporting over baseline
    annual load); consumption is in the meter's own unit (kWh or therms).
    """

    name: str
    timezone: str
    baseline: SamplePeriod
    reporting: SamplePeriod
    true_savings_pct: float


def load_sample_meter(name: str, days: int = 365) -> SampleMeter:
    """Read a bundled sample meter: ``days`` before its blackout, and ``days`` after it.

    Hours without a reading or a temperature are dropped. The samples ship in the
    package: nothing is downloaded.
    """
    import pandas as pd
    from opendsm import eemeter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name not in eemeter.samples():
            raise ValueError(f"no sample meter {name!r}; try one of {', '.join(SAMPLE_METERS)}")
        # Most samples carry °F; some carry only °C (their temperature file says which).
        listing = importlib.resources.files("opendsm.eemeter.samples") / "metadata.json"
        in_f = "tempF" in json.loads(listing.read_text())[name]["temperature_filename"]
        meter, temperature, metadata = eemeter.load_sample(name, tempF=in_f)
    temp_c = (temperature - 32.0) / 1.8 if in_f else temperature
    hours = pd.concat([meter["value"].rename("kwh"), temp_c.rename("temp_c")], axis=1).dropna()
    span = pd.Timedelta(days=days)
    before = metadata["blackout_start_date"]
    after = metadata["blackout_end_date"]
    zone = next((z for prefix, z in _SAMPLE_ZONES.items() if name.startswith(prefix)), "UTC")
    return SampleMeter(
        name=name,
        timezone=zone,
        baseline=_period(hours[(hours.index >= before - span) & (hours.index < before)]),
        reporting=_period(hours[(hours.index >= after) & (hours.index < after + span)]),
        true_savings_pct=(
            1.0
            - float(metadata["annual_reporting_total_load"])
            / float(metadata["annual_baseline_total_load"])
        )
        * 100.0,
    )


def _period(hours: Any) -> SamplePeriod:
    start_ms = hours.index.as_unit("ms").asi8
    return SamplePeriod(
        np.asarray(start_ms, dtype=np.int64),
        hours["kwh"].to_numpy(dtype=np.float64),
        hours["temp_c"].to_numpy(dtype=np.float64),
    )

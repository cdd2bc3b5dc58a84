"""The reference hourly baseline: opendsm's CalTRACK hourly model (LF Energy OpenEEmeter).

opendsm is an optional extra used only by the benchmark; it is imported when called,
and :func:`opendsm_available` says whether it can be.
"""

from __future__ import annotations

import importlib.util
import warnings
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
    from opendsm import eemeter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        baseline = eemeter.HourlyCaltrackBaselineData.from_series(
            _series(baseline_start_ms, baseline_kwh, "observed"),
            _series(baseline_start_ms, baseline_temp_c * 1.8 + 32.0, "temperature"),
            is_electricity_data=True,
        )
        model = eemeter.HourlyCaltrackModel().fit(baseline)
        reporting = eemeter.HourlyCaltrackReportingData.from_series(
            None,
            _series(reporting_start_ms, reporting_temp_c * 1.8 + 32.0, "temperature"),
            is_electricity_data=True,
        )
        result = model.predict(reporting)
    index = _series(reporting_start_ms, reporting_temp_c, "t").index
    predicted = result["predicted"].reindex(index)
    return np.asarray(predicted.to_numpy(dtype=np.float64), dtype=np.float64)

"""Idle waste: the energy a machine draws while idle, per bucket, and machines ranked by it.

The states come from :class:`analytics.states.PowerStateClassifier` (or from the
machine's own ``machine_state``), one per power reading. Energy is integrated exactly as
in :func:`analytics.energy.power_increments` with the power of every reading that is not
idle set to zero, so the idle energy of a bucket never exceeds its total energy and uses
the same gap rule. With ``method="hold"`` a pair counts as idle when its first reading
is; with ``method="mean"`` when its second is.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

from analytics.energy import BucketEnergy, bucket_energy, power_increments
from analytics.series import Series
from analytics.states import IDLE

K = TypeVar("K", bound=Hashable)


def idle_energy(
    power: Series,
    states: npt.ArrayLike,
    edges_ms: object,
    *,
    method: Literal["hold", "mean"] = "hold",
    max_gap_s: float | None = None,
    interval_s: float | None = None,
) -> BucketEnergy:
    """Energy drawn while idle per bucket between consecutive ``edges_ms``.

    Args:
        power: active power readings (W) of one machine.
        states: one state per reading (0 off, 1 idle, 2 running, 3 fault).
        edges_ms: bucket edges, as for :func:`analytics.energy.bucket_energy`.
        method: how power readings are integrated (see :mod:`analytics.energy`).
        max_gap_s: pairs further apart contribute nothing.
        interval_s: nominal sample interval; default: the median spacing.
    """
    state_array = np.asarray(states)
    if state_array.shape != power.values.shape:
        raise ValueError("states must have one entry per power reading")
    idle_power_w = np.where(state_array == IDLE, power.values, 0.0)
    increments = power_increments(
        Series(power.ts_ms, idle_power_w),
        method=method,
        max_gap_s=max_gap_s,
        interval_s=interval_s,
    )
    return bucket_energy(increments, edges_ms)


def rank_by_idle(idle_kwh: Mapping[K, BucketEnergy | float]) -> list[tuple[K, float]]:
    """Machines with their idle kWh (summed over buckets), largest first; ties keep input order."""
    totals = [
        (key, float(value.energy_kwh.sum()) if isinstance(value, BucketEnergy) else float(value))
        for key, value in idle_kwh.items()
    ]
    return sorted(totals, key=lambda item: -item[1])

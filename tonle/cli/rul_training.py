"""``tonle analytics train-rul``: hours to failure learned from simulated run-to-failure fleets.

A factory rarely has enough failures of its own to learn from, so the fleet-wide
:class:`~analytics.rul_hours.HoursToFailure` learns from simulated fleets
(:func:`simulators.fleet.simulate_fleet`), seen exactly as the maintenance job sees a
real machine: each machine monitored by :func:`analytics.monitor.monitor` with resets
at the repairs and services of the fleet's maintenance log, its assessed windows cut
into lives that end in a failure or a reset. The same code feeds ``tonle bench
maintenance``.

With two fleets or more, each fleet is scored by a model fitted on the others (the
error of the middle estimate and how often the 80 % interval held the truth, over the
last :data:`~analytics.rul_hours.CAP_H` hours before each failure) before the final
fit on all of them. The model is stored in ``maintenance_models`` (kind ``rul``) and
replaces the active one, which is retired with the reason.

This module reads the simulators, so it lives in the command (the analytics never
import them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import psycopg

from analytics.condition import Samples, align
from analytics.model_registry import Fit, RulPromotion, promote_rul
from analytics.monitor import Monitoring, monitor
from analytics.rul_hours import HoursToFailure, Life, RulScore, lives_between, pooled, score_lives
from analytics.series import Series
from analytics.store import Conn, finish_run, jsonable, start_run
from simulators.fleet import Fleet, MachineHistory, simulate_fleet
from tonle.errors import StoreError

Say = Callable[[str], None]

FLEET_START: Final = datetime(2026, 1, 5, tzinfo=UTC)
FLEET_SAMPLE_S: Final = 600.0
MODEL_VERSION: Final = "rul-hours-1"
FLEET_SITE: Final = "*"  # the run that stores a fleet-wide model belongs to no site


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def simulated_fleet(seed: int, machines: int, days: float) -> Fleet:
    """The packaged fleet's first ``machines`` machines for ``days``, sampled every 10 min."""
    return simulate_fleet(
        seed=seed, days=days, sample_s=FLEET_SAMPLE_S, machines=machines, start=FLEET_START
    )


def samples_of(history: MachineHistory) -> Samples:
    """A simulated machine's readings as the analytics see them from the database."""
    series = {}
    for metric, values in history.metrics.items():
        ok = np.isfinite(values)
        series[metric] = Series(history.ts_ms[ok], values[ok])
    return align(series)


def resets_of(fleet: Fleet, machine: str) -> list[int]:
    """The resets a machine's maintenance log shows: its repairs and the ends of services."""
    resets = [_ms(f.repaired_at) for f in fleet.failures if f.machine == machine and f.repaired_at]
    resets += [_ms(m.end) for m in fleet.maintenance if m.machine == machine]
    return sorted(resets)


def failures_of(fleet: Fleet, machine: str) -> list[int]:
    """When a machine failed."""
    return sorted(_ms(f.failed_at) for f in fleet.failures if f.machine == machine)


@dataclass(frozen=True)
class Watched:
    """One simulated machine monitored over its fleet's period, with its log's resets."""

    history: MachineHistory
    samples: Samples
    resets_ms: list[int]
    monitoring: Monitoring


def watch(fleet: Fleet, tick: Say | None = None) -> list[Watched]:
    """Monitor every machine of a fleet as the maintenance job would."""
    out = []
    for history in fleet.machines:
        samples = samples_of(history)
        resets = resets_of(fleet, history.machine)
        watched = monitor(samples, fleet.start_ms, fleet.end_ms, resets)
        out.append(Watched(history, samples, resets, watched))
        if tick is not None:
            tick(f"monitored {history.machine}")
    return out


def lives_of(fleet: Fleet, watched: Watched) -> list[Life]:
    """A monitored machine's lives between resets, each with its failure if it had one."""
    return lives_between(
        watched.monitoring.assessment,
        fleet.start_ms,
        fleet.end_ms,
        watched.resets_ms,
        failures_of(fleet, watched.history.machine),
    )


@dataclass(frozen=True)
class TrainingFleet:
    """The lives of one simulated fleet, and how many failures it had."""

    seed: int
    failures: int
    lives: list[Life]


def training_fleets(
    seed: int, fleets: int, machines: int, days: float, say: Say, tick: Say | None = None
) -> list[TrainingFleet]:
    """Simulate fleets of seeds ``seed``, ``seed + 1``, …; monitor them; cut them into lives."""
    out = []
    for k in range(fleets):
        fleet = simulated_fleet(seed + k, machines, days)
        if tick is not None:
            tick(f"simulated fleet seed {seed + k}")
        lives = [life for watched in watch(fleet, tick) for life in lives_of(fleet, watched)]
        out.append(TrainingFleet(seed + k, len(fleet.failures), lives))
        say(
            f"fleet seed {seed + k}: {machines} machines × {days:g} days, "
            f"{len(fleet.failures)} failures, {len(fleet.maintenance)} services, "
            f"{len(lives)} lives"
        )
    return out


def training_steps(fleets: int, machines: int) -> int:
    """Steps :func:`train_rul` ticks: simulations, machines monitored and fits."""
    held_out = fleets if fleets >= 2 else 0
    return fleets * (machines + 1) + held_out + 1


def _failed(lives: list[Life]) -> int:
    return sum(1 for life in lives if life.failed_ms is not None and len(life.end_ms))


def fit_rul(
    fleets: list[TrainingFleet], random_state: int, say: Say, tick: Say | None = None
) -> tuple[HoursToFailure, dict[str, Any]]:
    """Score each fleet on a model fitted on the others, then fit on all; return figures.

    Raises:
        ValueError: fewer than three lives ended in a failure over all fleets.
    """
    folds: list[dict[str, Any]] = []
    scores: list[RulScore] = []
    if len(fleets) >= 2:
        for held in fleets:
            others = [life for f in fleets if f is not held for life in f.lives]
            fold: dict[str, Any] = {"seed": held.seed}
            try:
                fold_model = HoursToFailure(random_state=random_state).fit(others)
            except ValueError as exc:
                fold["skipped"] = str(exc)
                say(f"held-out fleet seed {held.seed}: not scored, the others {exc}")
            else:
                score = score_lives(fold_model, held.lives)
                scores.append(score)
                fold |= {"windows": score.windows, "mae_h": score.mae_h,
                         "interval_coverage": score.coverage}  # fmt: skip
                say(f"held-out fleet seed {held.seed}: {_describe(score)}")
            folds.append(fold)
            if tick is not None:
                tick(f"scored fleet seed {held.seed}")
    started = time.perf_counter()
    lives = [life for f in fleets for life in f.lives]
    model = HoursToFailure(random_state=random_state).fit(lives)
    if tick is not None:
        tick("fitted on every fleet")
    held_out = pooled(scores)
    figures = model.summary() | {
        "seeds": [f.seed for f in fleets],
        "failures": [f.failures for f in fleets],
        "lives": len(lives),
        "fit_seconds": round(time.perf_counter() - started, 2),
        "heldout_by": "fleet" if folds else None,
        "heldout_folds": folds,
        "heldout_windows": held_out.windows,
        "heldout_mae_h": held_out.mae_h,
        "heldout_interval_coverage": held_out.coverage,
    }
    if not folds:
        figures["heldout_note"] = "one fleet: no held-out score (train on 2 fleets or more)"
    return model, figures


def _describe(score: RulScore) -> str:
    if not score.windows:
        return "no window within the cap of a failure to score"
    return (
        f"MAE {score.mae_h:.0f} h over {score.windows} windows, "
        f"80 % interval held {100 * score.coverage:.0f} %"
    )


@dataclass(frozen=True)
class StoredRul:
    """What ``train-rul`` stored: the new model, the one it retired, and the figures."""

    promotion: RulPromotion
    reason: str
    metrics: dict[str, Any]


def store_rul(
    conn: Conn,
    model: HoursToFailure,
    figures: dict[str, Any],
    *,
    machines: int,
    days: float,
    now: datetime | None = None,
) -> tuple[RulPromotion, str]:
    """Store ``model`` as the active RUL model, under a run of its own; return the promotion.

    The training period recorded is the simulated span (from :data:`FLEET_START`).
    """
    seeds = figures["seeds"]
    named = f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    reason = (
        f"trained on {model.lives_} run-to-failure lives of simulated fleets "
        f"(seeds {named}, {machines} machines × {days:g} d)"
    )
    if figures["heldout_windows"]:
        reason += (
            f"; held out by fleet: MAE {figures['heldout_mae_h']:.0f} h, 80 % interval held "
            f"{100 * figures['heldout_interval_coverage']:.0f} %"
        )
    span_end = FLEET_START + timedelta(days=days)
    run_id = start_run(conn, FLEET_SITE, FLEET_START, span_end, MODEL_VERSION)
    fit = Fit(FLEET_START, FLEET_START, span_end, reason, MODEL_VERSION, figures)
    try:
        promotion = promote_rul(
            conn, model, fit, valid_from=now or datetime.now(UTC), run_id=run_id
        )
    except psycopg.Error as exc:
        finish_run(conn, run_id, None, f"storing the RUL model failed: {exc}")
        raise
    summary = {"rul": {"model_id": promotion.model_id, "retired": promotion.retired_id}}
    finish_run(conn, run_id, jsonable(summary), None)
    return promotion, reason


def _check_schema(conn: Conn) -> None:
    row = conn.execute("SELECT to_regclass('rul_estimates')").fetchone()
    if row is None or row[0] is None:
        raise StoreError("the database has no rul_estimates table yet: run `tonle db migrate`")


def train_rul(
    database_url: str,
    *,
    seed: int = 1000,
    fleets: int = 2,
    machines: int = 12,
    days: float = 180.0,
    say: Say,
    tick: Say | None = None,
) -> StoredRul:
    """Simulate, monitor, fit and store the fleet's RUL model (see the module's notes).

    Raises:
        StoreError: the database cannot be reached or has no RUL schema.
        ValueError: the fleets had fewer than three failures between them.
    """
    started = time.perf_counter()
    try:
        conn = psycopg.connect(database_url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
    with conn:
        # Before minutes of simulation, not after them.
        _check_schema(conn)
        simulated = training_fleets(seed, fleets, machines, days, say, tick)
        failed = sum(_failed(f.lives) for f in simulated)
        if failed < 3:
            raise ValueError(
                f"the simulated fleets had {failed} run-to-failure lives; at least 3 are "
                "needed (raise --days, --machines or --fleets)"
            )
        model, figures = fit_rul(simulated, seed, say, tick)
        figures |= {"machines": machines, "days": days, "sample_s": FLEET_SAMPLE_S}
        figures["seconds"] = round(time.perf_counter() - started, 2)
        promotion, reason = store_rul(conn, model, figures, machines=machines, days=days)
    return StoredRul(promotion, reason, figures)

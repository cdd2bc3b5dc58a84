"""``tonle analytics train-rul`` and the fleet lives it shares with ``tonle bench maintenance``.

A tiny fleet (seed 1000, 4 machines × 90 days: four failures) keeps a training to a
few seconds; the held-out scoring is checked on synthetic lives whose figures are known.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from analytics.condition import Windows
from analytics.health import Assessment
from analytics.model_registry import FLEET, load_rul
from analytics.rul_hours import CAP_H, COLUMNS, HoursToFailure, Life, lives_between
from analytics.series import MS_PER_HOUR
from tonle.cli import app
from tonle.cli.bench_maintenance import fleet_figures
from tonle.cli.rul_training import TrainingFleet, fit_rul, train_rul, training_steps

Conn = psycopg.Connection[tuple[object, ...]]
TINY = ["--seed", "1000", "--fleets", "1", "--machines", "4", "--days", "90"]
MODELS = (
    "SELECT model_id, site, line, machine, status, reason, valid_from, retired_at,"
    " retire_reason, metrics, run_id FROM maintenance_models WHERE kind = 'rul'"
    " ORDER BY model_id"
)


@dataclass(frozen=True)
class Trained:
    output: dict[str, Any]
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def module_conn(database_url: str) -> Iterator[Conn]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def first(database_url: str) -> Trained:
    """The command run once on the tiny fleet."""
    result = CliRunner().invoke(
        app, ["analytics", "train-rul", *TINY], env={"TONLE_DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    return Trained(json.loads(last), result.stdout, result.stderr)


@pytest.mark.db
def test_training_stores_one_active_fleet_wide_rul_model(first: Trained, conn: Conn) -> None:
    ((model_id, site, line, machine, status, reason, _, retired_at, _, metrics, run_id),) = (
        conn.execute(MODELS).fetchall()
    )
    assert (site, line, machine, status, retired_at) == (FLEET, FLEET, FLEET, "active", None)
    assert first.output["model_id"] == model_id and first.output["retired"] is None
    lives = metrics["training_lives"]
    assert reason == (
        f"trained on {lives} run-to-failure lives of simulated fleets"
        " (seeds 1000, 4 machines × 90 d)"
    )
    assert metrics["seeds"] == [1000] and metrics["failures"][0] >= lives >= 3
    assert metrics["training_windows"] > 1000
    assert metrics["heldout_folds"] == [] and metrics["heldout_mae_h"] is None
    assert "no held-out score" in metrics["heldout_note"]
    assert metrics["columns"] == list(COLUMNS) and metrics["cap_h"] == CAP_H
    assert {k: v for k, v in metrics.items() if k not in ("seconds", "fit_seconds")} == {
        k: v for k, v in first.output.items()
        if k not in ("seconds", "fit_seconds", "model_id", "retired")
    }  # fmt: skip
    run = conn.execute(
        "SELECT site, status, model_version FROM analytics_runs WHERE id = %s", (run_id,)
    ).fetchone()
    assert run == ("*", "done", "rul-hours-1")
    assert isinstance(load_rul(conn, model_id), HoursToFailure)
    assert f"RUL model {model_id} stored" in first.stdout
    assert "no RUL model was active before" in first.stderr


@pytest.mark.db
def test_a_second_training_retires_the_first_with_a_reason(
    first: Trained, database_url: str, conn: Conn
) -> None:
    said: list[str] = []
    ticks: list[str] = []
    stored = train_rul(
        database_url, seed=1001, fleets=1, machines=4, days=90, say=said.append,
        tick=ticks.append,
    )  # fmt: skip
    assert len(ticks) == training_steps(1, 4) and ticks[-1] == "fitted on every fleet"
    assert said[0].startswith("fleet seed 1001: 4 machines × 90 days")
    rows = {row[0]: row for row in conn.execute(MODELS).fetchall()}
    old, new = rows[first.output["model_id"]], rows[stored.promotion.model_id]
    assert stored.promotion.retired_id == old[0]
    assert [row[4] for row in rows.values()].count("active") == 1 and new[4] == "active"
    assert old[4] == "retired" and old[7] == new[6]
    assert old[8] == stored.promotion.retire_reason == f"replaced by RUL model {new[0]}: {new[5]}"
    assert "seeds 1001" in new[5]


@pytest.mark.db
def test_without_a_migrated_database_it_says_what_to_do(empty_database_url: str) -> None:
    result = CliRunner().invoke(
        app, ["analytics", "train-rul", *TINY], env={"TONLE_DATABASE_URL": empty_database_url}
    )
    assert result.exit_code == 1
    assert "run `tonle db migrate`" in result.stderr


# --------------------------------------------------------------- pure parts


def _life(rng: np.random.Generator, hours: int, failed: bool, start_ms: int = 0) -> Life:
    """A life whose vibration grows over its last 200 hours when it ends in a failure."""
    ends = start_ms + MS_PER_HOUR * np.arange(1, hours + 1, dtype=np.int64)
    left = (hours - np.arange(1, hours + 1)).astype(np.float64) if failed else np.full(hours, 1e4)
    wear = np.clip(1 - left / 200, 0, None)
    x = np.column_stack(
        [wear, 0.8 * wear, 3 * wear, 1 + 6 * wear, 0.7 + 0.1 * np.sin(np.arange(hours))]
    ) + 0.02 * rng.standard_normal((hours, 5))
    return Life(ends, x, int(ends[-1]) if failed else None)


def test_each_fleet_is_scored_by_a_model_fitted_on_the_others() -> None:
    rng = np.random.default_rng(7)
    a = TrainingFleet(1, 4, [_life(rng, 500 + 40 * k, True) for k in range(4)])
    b = TrainingFleet(2, 2, [_life(rng, 420, True), _life(rng, 300, True), _life(rng, 400, False)])
    said: list[str] = []
    model, figures = fit_rul([a, b], 0, said.append)
    skipped, scored = figures["heldout_folds"]
    # Held out a, the model would learn from b's two failures: too few.
    assert skipped == {"seed": 1, "skipped": "need at least 3 run-to-failure lives, got 2"}
    # Held out b: every window of its failed lives within the cap of the failure.
    assert scored["seed"] == 2 and scored["windows"] == (int(CAP_H) + 1) + 300
    assert figures["heldout_windows"] == scored["windows"]
    assert figures["heldout_mae_h"] == scored["mae_h"] < CAP_H / 2
    assert 0.0 <= figures["heldout_interval_coverage"] == scored["interval_coverage"] <= 1.0
    assert figures["heldout_by"] == "fleet" and "heldout_note" not in figures
    assert figures["seeds"] == [1, 2] and figures["lives"] == 7
    assert model.lives_ == figures["training_lives"] == 6
    assert said == [
        "held-out fleet seed 1: not scored, the others need at least 3 run-to-failure lives, got 2",
        f"held-out fleet seed 2: MAE {scored['mae_h']:.0f} h over 637 windows, "
        f"80 % interval held {100 * scored['interval_coverage']:.0f} %",
    ]
    low, mid, high = model.predict_interval(b.lives[0])
    assert np.all((low >= 0) & (low <= mid) & (mid <= high) & (high <= CAP_H))
    assert model.capped(mid[:10]).all() and not model.capped(mid[-10:]).any()


def test_lives_follow_the_monitors_segments_and_stop_at_the_failure() -> None:
    hour = MS_PER_HOUR
    ends = hour * np.arange(1, 11, dtype=np.int64)
    score = np.array([np.nan, 1, 1, 1, 1, np.nan, 1, 1, 1, 1])
    n = ends.size
    assessment = Assessment(
        Windows(ends, np.ones(n, np.int64), np.full(n, 0.5), {}, {}),
        {}, {"vibration_rms": np.full(n, 0.1)}, score, np.full(n, 90.0),
    )  # fmt: skip
    # A reset at 4 h 20 min cuts at 5 h: the window ending then belongs to the life before.
    first, second = lives_between(assessment, 0, 10 * hour, [4 * hour + 20 * 60_000],
                                  [2 * hour + 1, 8 * hour])  # fmt: skip
    assert first.failed_ms == 2 * hour + 1 and list(first.end_ms) == [2 * hour]
    assert second.failed_ms == 8 * hour and list(second.end_ms // hour) == [7, 8]
    assert first.x.shape == (1, len(COLUMNS))
    np.testing.assert_array_equal(first.x[0], [0.1, 0.0, 0.0, 1.0, 0.5])


def test_the_bench_still_scores_remaining_life_on_a_small_fleet() -> None:
    said: list[str] = []
    figures = fleet_figures(1, 1, 4, 90, said.append)
    assert figures["rul_training_lives"] >= 3 and figures["rul_scored_windows"] > 0
    assert math.isfinite(figures["rul_mae_h"]) and 0 <= figures["rul_interval_coverage"] <= 1
    assert any(message.startswith("RUL training fleet seed 1001") for message in said)

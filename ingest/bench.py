"""``tonle bench ingest``: readings per second stored, end to end, beside two references.

Every path writes the same idempotent rows into the same ``readings`` table, each under
a site of its own, and every figure is read back from the database:

- **Tonle**: simulated edges (one process each) publish batched readings at QoS 1 through
  the broker to ``tonle ingest`` run as 1 or 2 real processes sharing one subscription.
  The rate is the rows committed in a window after a warm-up (``count(*)`` at both ends),
  and the ingesters' CPU time (utime + stime from ``/proc``) over that window.
- **Latency**: the edges publish at a quarter of the 1-process rate and note each
  message's wall-clock publish time; a poller looks every 10 ms for the message's row in
  ``edge_messages`` (committed in the same transaction as its readings), so a latency is
  publish → visible in the database, overstated by at most one poll and its query.
- **Naive**: a reference ingester (one ``INSERT`` and commit per reading), fed and
  measured the same way.
- **Ceiling**: the database alone, the ingester's own write (COPY into a staging table +
  ``INSERT … ON CONFLICT DO NOTHING``) in 10k-row transactions from memory, no MQTT,
  two connections side by side as two ingesters would.

Every path must store exactly what it was given, or the benchmark fails. Each writes
into an hour of its own and the roll-ups are brought up to date between paths, so no
path pays another's upkeep. The simulated edges are in :mod:`ingest.bench_edges`, the
measurement of one path through the broker in :mod:`ingest.bench_path`.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from ingest.bench_edges import METRICS, Fleet
from ingest.bench_path import (
    BenchDatabase,
    BenchError,
    Consumer,
    PathResult,
    Progress,
    measure_path,
    start_consumer,
    tonle_ingesters,
)
from tonle.db.maintenance import refresh_all_rollups
from tonle.db.migrate import storage_mode
from tonle.settings import Settings

# ------------------------------------------------------------------- ceiling


_CEILING_STAGE = """
CREATE TEMP TABLE ceiling_stage (
    ts timestamptz NOT NULL, sensor_id integer NOT NULL, value double precision NOT NULL
) ON COMMIT DELETE ROWS
"""
_CEILING_MERGE = """
INSERT INTO readings (ts, sensor_id, value)
SELECT ts + %(shift)s, sensor_id, value FROM ceiling_stage
ON CONFLICT (sensor_id, ts) DO NOTHING
"""
_CEILING_DIRTY = """
INSERT INTO rollup_dirty_minutes (minute)
SELECT date_bin('1 minute', ts + %(shift)s, 'epoch') FROM ceiling_stage GROUP BY 1 ORDER BY 1
ON CONFLICT (minute) DO NOTHING
"""


def measure_ceiling(
    url: str, fleet: Fleet, seconds: float, progress: Progress, *, connections: int = 2
) -> PathResult:
    """Rows per second PostgreSQL stores for the ingester's write, from memory, no MQTT.

    One batch — every sensor of ``fleet`` × enough milliseconds for 10k rows — is encoded
    once as COPY text; each transaction copies it into a staging table and inserts it
    shifted past every earlier batch (``INSERT … SELECT ts + shift … ON CONFLICT DO
    NOTHING``, and the roll-up bookkeeping the ingester does in native mode), so the clock
    measures the database, not the encoding. ``connections`` write side by side, as
    ingesters sharing a subscription do.
    """
    db = BenchDatabase(url)
    sensor_ids = db.register(fleet)
    native = storage_mode(db.conn) == "native"
    steps = -(-10_000 // len(sensor_ids))
    base = datetime.fromtimestamp(fleet.base_ms / 1000, UTC)
    lines: list[str] = []
    for step in range(steps):
        ts = (base + timedelta(milliseconds=step)).isoformat()
        lines.extend(f"{ts}\t{sid}\t{step % 1000}.5\n" for sid in sensor_ids)
    data = "".join(lines).encode()
    batches = itertools.count()
    errors: list[BaseException] = []
    progress(f"  {connections} connections writing {len(lines):,}-row batches for {seconds:g} s")

    def write(deadline: float) -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(_CEILING_STAGE)
                while time.monotonic() < deadline:
                    shift = {"shift": timedelta(milliseconds=next(batches) * steps)}
                    with conn.transaction():
                        with conn.cursor().copy("COPY ceiling_stage FROM STDIN") as copy:
                            copy.write(data)
                        conn.execute(_CEILING_MERGE, shift)
                        if native:
                            conn.execute(_CEILING_DIRTY, shift)
        except Exception as exc:  # noqa: BLE001 - raised below as a BenchError
            errors.append(exc)

    started = time.monotonic()
    threads = [
        threading.Thread(target=write, args=(started + seconds,), name=f"bench-ceiling-{i}")
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed_s = time.monotonic() - started
    try:
        if errors:
            raise BenchError(f"the ceiling's writes failed: {errors[0]}")
        written = next(batches) * len(lines)  # every batch drawn was written
        stored = db.count(sensor_ids)
    finally:
        db.close()
    if stored != written:
        raise BenchError(f"the ceiling wrote {written} rows but {stored} were stored")
    return PathResult(
        readings_per_s=written / elapsed_s,
        window_s=elapsed_s,
        window_readings=written,
        cpu_s_per_100k=None,
        published=written,
        stored=stored,
    )


# ------------------------------------------------------------------ the run


@dataclass(frozen=True)
class BenchPlan:
    """What one ``tonle bench ingest`` run does."""

    seconds: float = 20.0
    per_message: int = 200
    edges: int = 4
    machines: int = 10  # per edge
    warmup_s: float = 3.0  # after the first rows are stored, before the window opens
    two_processes: bool = True  # False where the broker has no shared subscriptions
    naive_command: tuple[str, ...] = ()  # the reference; run with DATABASE_URL MQTT_URL SITE


_PATHS = ("ceiling", "tonle1", "tonle2", "latency", "naive")


def new_fleet(plan: BenchPlan, run: str, path: str) -> Fleet:
    """A fleet under a site of its own, its readings in an hour no other path writes to.

    Native mode rolls the dirty minutes' hours up again from their minute rows, so a
    path that shared an hour with an earlier one would pay for some of its rows too.
    """
    if plan.per_message % len(METRICS):
        raise BenchError(f"--per-message must be a multiple of {len(METRICS)}")
    hour_ms = 3_600_000
    base_ms = (int(time.time() * 1000) // hour_ms - 1 - _PATHS.index(path)) * hour_ms
    return Fleet(f"bench{run}{path}", plan.edges, plan.machines, plan.per_message, base_ms)


def settle(url: str) -> None:
    """Bring the roll-ups up to date, so no path pays for the upkeep an earlier one left."""
    with psycopg.connect(url, autocommit=True) as conn:
        refresh_all_rollups(conn)


def run_bench(
    settings: Settings, plan: BenchPlan, logs: Path, progress: Progress
) -> dict[str, Any]:
    """Measure every path; the figures, keyed as the JSON line prints them."""
    run = uuid.uuid4().hex[:6]
    logs.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2)}
    checks: dict[str, tuple[int, int]] = {}

    progress("ceiling: the ingester's write, from memory, no MQTT")
    ceiling = measure_ceiling(
        settings.database_url, new_fleet(plan, run, "ceiling"), min(plan.seconds, 10), progress
    )
    checks["ceiling"] = (ceiling.published, ceiling.stored)

    settle(settings.database_url)
    progress("tonle ingest, 1 process, edges at full speed")
    fleet = new_fleet(plan, run, "tonle1")
    one = measure_path(
        settings,
        fleet,
        tonle_ingesters(settings, fleet.site, 1, logs),
        plan.seconds,
        progress,
        warmup_s=plan.warmup_s,
    )
    checks["tonle1"] = (one.published, one.stored)

    two: PathResult | None = None
    if plan.two_processes:
        settle(settings.database_url)
        progress("tonle ingest, 2 processes sharing one subscription")
        fleet = new_fleet(plan, run, "tonle2")
        two = measure_path(
            settings,
            fleet,
            tonle_ingesters(settings, fleet.site, 2, logs),
            plan.seconds,
            progress,
            warmup_s=plan.warmup_s,
        )
        checks["tonle2"] = (two.published, two.stored)

    quarter = one.readings_per_s / 4
    settle(settings.database_url)
    progress(f"latency: 1 process, edges at a quarter of its rate ({quarter:,.0f} readings/s)")
    fleet = new_fleet(plan, run, "latency")
    latency = measure_path(
        settings,
        fleet,
        tonle_ingesters(settings, fleet.site, 1, logs),
        min(plan.seconds, 15),
        progress,
        warmup_s=min(plan.warmup_s, 2.0),
        rate_readings_s=quarter,
    )
    checks["latency"] = (latency.published, latency.stored)

    naive: PathResult | None = None
    if plan.naive_command:
        settle(settings.database_url)
        progress("naive reference ingester (one INSERT and commit per reading)")
        fleet = new_fleet(plan, run, "naive")

        def start_naive() -> list[Consumer]:
            command = [*plan.naive_command, settings.database_url, settings.mqtt_url, fleet.site]
            return [start_consumer(command, {}, logs / f"{fleet.site}.log")]

        naive = measure_path(
            settings, fleet, start_naive, plan.seconds, progress, warmup_s=plan.warmup_s
        )
        checks["naive"] = (naive.published, naive.stored)

    best = max(one.readings_per_s, two.readings_per_s if two else 0.0)
    figures |= {
        "readings_per_s": round(one.readings_per_s),
        "readings_per_s_2proc": round(two.readings_per_s) if two else None,
        "naive_readings_per_s": round(naive.readings_per_s) if naive else None,
        "ceiling_readings_per_s": round(ceiling.readings_per_s),
        "p50_latency_s": round(_percentile(latency.latencies_s, 50), 3),
        "p99_latency_s": round(_percentile(latency.latencies_s, 99), 3),
        "latency_readings_per_s": round(latency.readings_per_s),
        "latency_messages": len(latency.latencies_s),
        "cpu_s_per_100k": _round(one.cpu_s_per_100k, 2),
        "cpu_s_per_100k_2proc": _round(two.cpu_s_per_100k, 2) if two else None,
        "x_naive": round(best / naive.readings_per_s, 1) if naive else None,
        "of_ceiling": round(best / ceiling.readings_per_s, 3),
        "seconds": plan.seconds,
        "per_message": plan.per_message,
        "edges": plan.edges,
        "published": {path: published for path, (published, _) in checks.items()},
        "stored": {path: stored for path, (_, stored) in checks.items()},
        "window_readings": {
            "tonle1": one.window_readings,
            "tonle2": two.window_readings if two else None,
            "naive": naive.window_readings if naive else None,
        },
    }
    return figures


GOALS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "best_readings_per_s": ("≥ 100,000", lambda v: v >= 100_000),
    "x_naive": ("≥ 30", lambda v: v >= 30),
    "of_ceiling": ("≥ 0.40", lambda v: v >= 0.40),
    "p99_latency_s": ("≤ 1.0", lambda v: v <= 1.0),
}


def goal_rows(figures: dict[str, Any]) -> Iterator[tuple[str, Any, str, str]]:
    """(figure, value, goal, met) for the table, in reading order."""
    best = max(figures["readings_per_s"], figures["readings_per_s_2proc"] or 0)
    values = figures | {"best_readings_per_s": best}
    for key in (
        "readings_per_s",
        "readings_per_s_2proc",
        "best_readings_per_s",
        "naive_readings_per_s",
        "ceiling_readings_per_s",
        "x_naive",
        "of_ceiling",
        "cpu_s_per_100k",
        "cpu_s_per_100k_2proc",
        "latency_readings_per_s",
        "p50_latency_s",
        "p99_latency_s",
        "load_average_1m",
    ):
        value = values[key]
        goal, ok = GOALS.get(key, ("", lambda v: True))
        met = "" if not goal or value is None else ("yes" if ok(value) else "NO")
        yield key, value, goal, met


def _percentile(values: list[float], q: float) -> float:
    if not values:
        raise BenchError("no latency was measured")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)

"""``tonle demo``: the whole data path on one machine, checked against the simulator.

A simulated factory backfills history through the edge agent, the broker and the
ingester into PostgreSQL; the demo then compares what the database holds with what the
simulator emitted, series by series, and shows it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from analytics.runner import run_once
from ingest.service import Ingester
from simulators.session import run_simulation
from tonle.cli.services import platform_services
from tonle.db.maintenance import refresh_all_rollups
from tonle.db.migrate import migrate
from tonle.errors import TonleError
from tonle.settings import Settings

_SUMMARY = """
SELECT line, count(DISTINCT machine) AS machines, count(DISTINCT metric) AS metrics,
       count(*) AS readings, min(ts) AS first, max(ts) AS last
FROM telemetry WHERE site = %s GROUP BY line ORDER BY line
"""


def _stored(url: str, site: str, window: tuple[datetime, datetime] | None = None) -> int:
    """Readings stored for ``site``, within the simulated period where given."""
    low, high = window or (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry WHERE site = %s AND ts >= %s AND ts < %s",
            (site, low, high),
        ).fetchone()
    return int(str(row[0])) if row else 0


def run_demo(*, days: float, layout: str, seed: int, workdir: Path, console: Console) -> bool:
    """Run the demo; True if the database holds exactly what the simulator emitted."""
    workdir.mkdir(parents=True, exist_ok=True)
    with platform_services(workdir, console) as services:
        settings = services.settings(Settings())
        report = migrate(settings.database_url, settings.db)
        console.print(f"database ready: schema version {report.version}, {report.mode} mode")
        ingester = Ingester(settings)
        thread = threading.Thread(target=ingester.run, name="demo-ingester")
        thread.start()
        try:
            if not ingester.client.subscribed.wait(15):
                raise TonleError(f"the ingester could not subscribe at {services.mqtt_url}")
            result = run_simulation(
                mqtt_url=services.mqtt_url,
                layout=layout,
                seed=seed,
                days=days,
                start=None,
                truth_dir=workdir / "truth",
                edge_id="demo-edge",
                spool_path=workdir / "edge.spool",
                stop=threading.Event(),
                console=console,
                protocol="5" if services.mqtt5 else "3.1.1",
            )
            console.print(
                f"simulator emitted {result.samples:,} readings; the broker acknowledged "
                f"{result.acknowledged_readings:,} in {result.messages:,} messages "
                f"({result.seconds:.1f} s)"
            )
            truth = result.truth
            window = (truth.start, truth.end) if truth.start and truth.end else None
            deadline = time.monotonic() + 120
            while _stored(settings.database_url, result.site, window) < result.samples:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.25)
        finally:
            ingester.stop()
            thread.join(60)
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            refresh_all_rollups(conn)
            stored = _stored(settings.database_url, result.site, window)
            _show(conn, result.site, console)
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        exact = stored == result.samples
        reports = run_once(settings.database_url, [result.site], None, None, None, console.print)
        for analytics_report in reports:
            _show_analytics(analytics_report.summary, console)
        colour = "green" if exact else "red"
        console.print(
            f"[{colour}]stored {stored:,} of {result.samples:,} emitted readings"
            f"{' — exactly' if exact else ''}[/{colour}]; dead letters: {dead[0] if dead else 0}; "
            f"ground truth in {workdir / 'truth'}"
        )
        return exact


def _show(conn: psycopg.Connection[tuple[object, ...]], site: str, console: Console) -> None:
    table = Table(title=f"stored for site {site}")
    for column in ("line", "machines", "metrics", "readings", "first", "last"):
        table.add_column(
            column, justify="right" if column in ("machines", "metrics", "readings") else "left"
        )
    for line, machines, metrics, readings, first, last in conn.execute(_SUMMARY, (site,)):
        table.add_row(
            str(line),
            str(machines),
            str(metrics),
            f"{readings:,}",
            f"{first:%Y-%m-%d %H:%M}",
            f"{last:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    edges = conn.execute(
        "SELECT edge_id, status, messages, buffered_messages, gaps FROM edge_health"
        " WHERE site = %s",
        (site,),
    ).fetchall()
    for edge_id, status, messages, buffered, gaps in edges:
        console.print(
            f"edge {edge_id}: {status or 'status unknown'}, {messages:,} messages "
            f"({buffered:,} replayed from the spool), {gaps} sequence gaps"
        )


def _show_analytics(summary: dict[str, object], console: Console) -> None:
    """The energy analytics' headline figures for the simulated period."""
    table = Table(title="energy analytics (tonle analytics run)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("site energy", f"{summary.get('energy_kwh', 0):,} kWh"),
        ("drawn while idle", f"{summary.get('idle_kwh', 0):,} kWh"),
        ("monthly 15-min demand peak", f"{summary.get('peak_kw', 0)} kW"),
        ("outages / sags", f"{summary.get('outages', 0)} / {summary.get('sags', 0)}"),
        ("units lost to them", f"{summary.get('units_lost', 0)}"),
        ("on the generator", f"{summary.get('generator_kwh', 0)} kWh"),
        ("energy cost", f"{summary.get('cost', 0):,}"),
        ("CO₂", f"{summary.get('co2_kg', 0):,} kg"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    top = summary.get("top_idle")
    if isinstance(top, list) and top:
        worst = top[0]
        table.add_row(
            "largest idle waste", f"{worst['line']}/{worst['machine']}: {worst['kwh']} kWh"
        )
    console.print(table)

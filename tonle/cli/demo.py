"""``tonle demo``: two simulated pilots through the whole platform on one machine.

A garment factory and a food-processing plant backfill their history through the real
path (simulator → edge agent → broker → ingester → PostgreSQL), the demo checks that the
database holds exactly what the simulators emitted, runs the analytics, serves the API,
and keeps both factories streaming in real time until Ctrl-C. The ingester and the API
run as processes of their own, as they would in production; each pilot's simulator and
edge agent run in a process of their own too, so the two sites use two cores.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tonle.cli.demo_feed import DELIVERED, FAILED, LIVE, FeedPlan, FeedState, run_feed
from tonle.cli.demo_plan import (
    PILOTS,
    Plan,
    last_reading,
    load_or_make_plan,
    register_pilots,
    write_sites_file,
)
from tonle.cli.services import Services, platform_services
from tonle.errors import TonleError
from tonle.local_services import port_open, wait_for_port
from tonle.settings import Settings

ANALYTICS_EVERY = timedelta(minutes=5)
STORE_WAIT_S = 120.0  # how long stored readings may lag behind acknowledged ones
SEED = 1


@dataclass
class _Feed:
    """A running feed process and what it was asked to do."""

    plan: FeedPlan
    state: FeedState
    process: Any  # multiprocessing's SpawnProcess


class _Stop:
    """SIGINT and SIGTERM set an event instead of raising, while the demo runs."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def run_demo(*, days: float, port: int, live: bool, workdir: Path, console: Console) -> bool:
    """Run the demo; True if every backfilled reading was stored exactly once."""
    if not days > 0:
        raise TonleError(f"--days must be positive, got {days}")
    workdir = workdir.resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    prefer = os.environ.get("TONLE_DEMO_BROKER", "mosquitto")
    with _Stop() as stop, platform_services(workdir, console, prefer=prefer) as services:
        settings = services.settings(Settings())
        return _Demo(settings, services, workdir, console, stop.event).run(days, port, live)


class _Demo:
    def __init__(
        self,
        settings: Settings,
        services: Services,
        workdir: Path,
        console: Console,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.services = services
        self.workdir = workdir
        self.console = console
        self.stop = stop
        self.say = console.print

    # ------------------------------------------------------------------ the story

    def run(self, days: float, port: int, live: bool) -> bool:
        from analytics.site_config import example_sites_path
        from tonle.db.migrate import migrate

        if live and port_open("127.0.0.1", port):
            raise TonleError(f"port {port} is taken; choose another with --port")
        url = self.settings.database_url
        report = migrate(url, self.settings.db)
        self.say(f"database ready: schema version {report.version}, {report.mode} mode")
        now = datetime.now(UTC)
        plan, kept = load_or_make_plan(self.workdir / "demo.json", days, now)
        sites_path = write_sites_file(self.workdir / "sites.yaml", plan, example_sites_path())
        names = {
            site: str(entry.get("name") or site)
            for site, entry in yaml.safe_load(sites_path.read_text("utf-8"))["sites"].items()
        }
        register_pilots(url, plan, names)
        self._describe(plan, kept)
        starts = self._starts(plan)
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._ingester())
            feeds = stack.enter_context(self._feeds(plan, starts, live))
            if not self._backfill(feeds, starts):
                return self._interrupted()
            exact = self._check(feeds)
            self._analytics(sites_path)
            if not live or self.stop.is_set():
                return exact or self.stop.is_set()
            stack.enter_context(self._api(port))
            token = self._token()
            self._where(port, token)
            analytics = threading.Thread(
                target=self._analytics_loop, args=(sites_path,), name="demo-analytics"
            )
            analytics.start()
            stack.callback(analytics.join, 120)
            stack.callback(self.stop.set)  # first: the analytics thread waits on it
            self._live(feeds)
            self.say("stopping: simulators and edges first, then the ingester, API and services")
        self.say("[green]stopped cleanly[/green]")
        return True

    def _describe(self, plan: Plan, kept: bool) -> None:
        where = self.workdir / "demo.json"
        self.say(
            f"{'reusing' if kept else 'new'} pilot plan ({where}): history from "
            f"{plan.start:%Y-%m-%d %H:%M} UTC, measures from {plan.intervention:%Y-%m-%d %H:%M} "
            f"UTC, baseline {plan.baseline_start} – {plan.baseline_end}"
        )
        for pilot in PILOTS:
            self.say(
                f"  {pilot.site}: {pilot.measure} ({pilot.investment:,.0f} USD)", soft_wrap=True
            )

    def _starts(self, plan: Plan) -> dict[str, datetime]:
        """Where each pilot's backfill starts: the plan's start, or after what is stored."""
        starts: dict[str, datetime] = {}
        for pilot in PILOTS:
            last = last_reading(self.settings.database_url, pilot.site)
            if last is None:
                starts[pilot.site] = plan.start
            else:
                starts[pilot.site] = last + timedelta(milliseconds=1)
                gap = datetime.now(UTC) - starts[pilot.site]
                self.say(
                    f"{pilot.site}: reusing the stored readings up to {last:%Y-%m-%d %H:%M:%S} "
                    f"UTC; backfilling the {_span(gap)} since"
                )
        return starts

    # ------------------------------------------------------------------ processes

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "TONLE_DATABASE_URL": self.settings.database_url,
                "TONLE_MQTT_URL": self.settings.mqtt_url,
                "TONLE_INGEST__PROTOCOL": self.settings.ingest.protocol,
                "TONLE_INGEST__CLIENT_ID": "tonle-demo-ingest",
                "TONLE_LOG_LEVEL": "INFO",
            }
        )
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / "logs" / f"{name}.log").open("ab")
        # A session of its own: Ctrl-C in the terminal reaches the demo only, which then
        # stops each process in order (the ingester last but one, after the edges).
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tonle", *args],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @contextlib.contextmanager
    def _ingester(self) -> Iterator[subprocess.Popen[bytes]]:
        log_path = self.workdir / "logs" / "ingest.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        process = self._spawn("ingest", "ingest", "--no-migrate")
        try:
            deadline = time.monotonic() + 60
            while b"subscribed to" not in log_path.read_bytes()[offset:]:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise TonleError(f"the ingester did not start; its log: {log_path}")
                time.sleep(0.1)
            self.say(f"ingester running (process {process.pid}, log {log_path})")
            yield process
        finally:
            _terminate(process, 60)

    @contextlib.contextmanager
    def _api(self, port: int) -> Iterator[subprocess.Popen[bytes]]:
        process = self._spawn("api", "api", "--host", "127.0.0.1", "--port", str(port))
        try:
            try:
                wait_for_port("127.0.0.1", port, timeout_s=60)
            except TonleError:
                raise TonleError(
                    f"the API did not start on port {port} (in use? try --port); its log: "
                    f"{self.workdir / 'logs' / 'api.log'}"
                ) from None
            yield process
        finally:
            _terminate(process, 20)

    @contextlib.contextmanager
    def _feeds(self, plan: Plan, starts: dict[str, datetime], live: bool) -> Iterator[list[_Feed]]:
        ctx = mp.get_context("spawn")
        feeds: list[_Feed] = []
        try:
            for pilot in PILOTS:
                feed_plan = FeedPlan(
                    layout=pilot.layout,
                    site=pilot.site,
                    seed=SEED,
                    start_ms=int(starts[pilot.site].timestamp() * 1000),
                    live=live,
                    mqtt_url=self.settings.mqtt_url,
                    protocol=self.settings.ingest.protocol,
                    edge_id=f"demo-{pilot.layout}",
                    spool_path=str(self.workdir / "spool" / f"{pilot.site}.spool"),
                    truth_dir=str(self.workdir / "truth" / pilot.site),
                    intervention=plan.intervention_of(pilot),
                )
                state = FeedState(ctx)
                process = ctx.Process(
                    target=run_feed, args=(feed_plan, state), name=f"demo-{pilot.site}"
                )
                process.start()
                feeds.append(_Feed(feed_plan, state, process))
            yield feeds
        finally:
            for feed in feeds:
                feed.state.stop.value = 1
            for feed in feeds:
                feed.process.join(90)
                if feed.process.is_alive():
                    feed.process.terminate()
                    feed.process.join(10)

    # ------------------------------------------------------------------ backfill

    def _backfill(self, feeds: list[_Feed], starts: dict[str, datetime]) -> bool:
        """Show the backfill until every feed is delivered; False if stopped first."""
        columns = (
            TextColumn("[bold]{task.description:<11}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[at]}"),
            TextColumn("{task.fields[acked]:>11,} readings acknowledged"),
            TextColumn("{task.fields[rate]:>7,.0f}/s"),
            TimeElapsedColumn(),
        )
        began = time.monotonic()
        with Progress(*columns, console=self.console) as progress:
            tasks = {}
            for feed in feeds:
                total_ms = max(1.0, (datetime.now(UTC) - starts[feed.plan.site]).total_seconds())
                tasks[feed.plan.site] = progress.add_task(
                    feed.plan.site, total=total_ms, at="", acked=0, rate=0.0
                )
            while not self.stop.wait(0.25):
                self._raise_failures(feeds)
                elapsed = max(1e-3, time.monotonic() - began)
                for feed in feeds:
                    state, start = feed.state, feed.plan.start_ms
                    latest = state.latest_ms.value
                    done_s = max(0.0, (latest - start) / 1000) if latest else 0.0
                    delivered = state.phase.value >= DELIVERED
                    progress.update(
                        tasks[feed.plan.site],
                        completed=progress.tasks[tasks[feed.plan.site]].total
                        if delivered
                        else done_s,
                        at=f"{datetime.fromtimestamp(latest / 1000, UTC):%Y-%m-%d %H:%M}"
                        if latest
                        else "",
                        acked=state.acked.value,
                        rate=state.acked.value / elapsed,
                    )
                if all(f.state.phase.value >= DELIVERED for f in feeds):
                    break
        if self.stop.is_set():
            return False
        total = sum(f.state.acked.value for f in feeds)
        seconds = time.monotonic() - began
        self.say(
            f"backfill acknowledged by the broker: {total:,} readings in {seconds:.1f} s "
            f"({total / max(seconds, 1e-3):,.0f} readings/s)"
        )
        return True

    def _raise_failures(self, feeds: list[_Feed]) -> None:
        for feed in feeds:
            if feed.state.phase.value == FAILED or (
                not feed.process.is_alive() and feed.state.phase.value < DELIVERED
            ):
                try:
                    message = feed.state.errors.get(timeout=1)
                except Exception:  # noqa: BLE001 - the queue is empty: the process died
                    message = f"{feed.plan.site}: the feed process ended unexpectedly"
                raise TonleError(f"the simulated edge failed: {message}")

    def _interrupted(self) -> bool:
        self.say("interrupted during the backfill; what was acknowledged is kept for next time")
        return True

    def _check(self, feeds: list[_Feed]) -> bool:
        """Wait for the ingester to store every acknowledged reading; True if all are there."""
        from tonle.db.maintenance import refresh_all_rollups

        url = self.settings.database_url
        exact = True
        for feed in feeds:
            state = feed.state
            window = (
                datetime.fromtimestamp(feed.plan.start_ms / 1000, UTC),
                datetime.fromtimestamp(state.end_ms.value / 1000, UTC),
            )
            emitted = state.emitted.value
            stored, last_change = -1, time.monotonic()
            while not self.stop.is_set():
                now_stored = _stored(url, feed.plan.site, window)
                if now_stored != stored:
                    stored, last_change = now_stored, time.monotonic()
                if stored >= emitted or time.monotonic() - last_change > STORE_WAIT_S:
                    break
                time.sleep(0.5)
            ok = stored == emitted
            exact = exact and ok
            colour = "green" if ok else "red"
            self.say(
                f"[{colour}]{feed.plan.site}: stored {stored:,} of {emitted:,} readings emitted "
                f"from {window[0]:%Y-%m-%d %H:%M:%S} to {window[1]:%Y-%m-%d %H:%M:%S} UTC"
                f"{' — exactly' if ok else ''}[/{colour}]"
            )
        with psycopg.connect(url, autocommit=True) as conn:
            refresh_all_rollups(conn)
            # After the bulk load every page still has to be looked at once (hint bits,
            # visibility map): done here in one pass, rather than by each of the
            # analytics' per-sensor reads, which touch every page of the interleaved table.
            # Statistics too: the analytics' plans depend on them.
            conn.execute("VACUUM (ANALYZE)")
            dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        self.say(f"dead letters: {dead[0] if dead else 0}")
        return exact

    # ------------------------------------------------------------------ analytics

    def _analytics(self, sites_path: Path) -> None:
        from analytics.runner import run_once

        sites = [p.site for p in PILOTS]
        began = time.monotonic()
        self.say("running the analytics (energy, M&V, maintenance) …")
        try:
            reports = run_once(self.settings.database_url, sites, None, None, sites_path, _quiet)
        except Exception as exc:  # noqa: BLE001 - the demo goes on without this run's figures
            self.say(f"[yellow]the analytics run failed: {exc!r}; the demo goes on[/yellow]")
            return
        self.say(f"analytics done in {time.monotonic() - began:.1f} s")
        summaries = {r.site: r.summary for r in reports}
        _show_analytics(summaries, self._savings(), self.console)

    def _savings(self) -> dict[str, tuple[Any, ...]]:
        with psycopg.connect(self.settings.database_url) as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (site) site, savings_pct, avoided_cost, annual_avoided_cost,"
                " payback_years, currency FROM mv_results"
                " ORDER BY site, reporting_end DESC, baseline_start DESC"
            ).fetchall()
        return {str(row[0]): row for row in rows}

    def _analytics_loop(self, sites_path: Path) -> None:
        from analytics.runner import run_once

        sites = [p.site for p in PILOTS]
        while not self.stop.wait(ANALYTICS_EVERY.total_seconds()):
            try:
                run_once(self.settings.database_url, sites, None, None, sites_path, _quiet)
            except Exception as exc:  # noqa: BLE001 - logged, retried at the next round
                self.say(f"[yellow]analytics run failed (will retry): {exc}[/yellow]")

    # ------------------------------------------------------------------ live

    def _token(self) -> str:
        from api.tokens import create_token

        _record, secret = create_token(self.settings.database_url, "staff", None, "tonle-demo")
        return secret

    def _where(self, port: int, token: str) -> None:
        base = f"http://127.0.0.1:{port}"
        lines = [
            "",
            "[bold green]Tonle is running.[/bold green] Where to look:",
            f"  overview      {base}/#token={token}",
            f"  API docs      {base}/docs",
            f"  API token     {token}   (header: Authorization: Bearer …)",
            f"  database      {self.settings.database_url}",
            f"  MQTT broker   {self.settings.mqtt_url}   (mosquitto_sub -L "
            f"'{self.settings.mqtt_url}/tonle/v1/#' -v)",
            f"  logs          {self.workdir / 'logs'}",
            "  analytics     every 5 minutes; RUL estimates need `tonle analytics train-rul`",
            "Ctrl-C to stop.",
            "",
        ]
        for line in lines:
            self.say(line, soft_wrap=True)

    def _live(self, feeds: list[_Feed]) -> None:
        began = time.monotonic()
        with self.console.status("streaming live") as status:
            while not self.stop.wait(1.0):
                self._raise_failures(feeds)
                parts = []
                for feed in feeds:
                    state = feed.state
                    mark = "live" if state.phase.value == LIVE else "starting"
                    parts.append(f"{feed.plan.site} {mark}: {state.live_acked.value:,} readings")
                elapsed = timedelta(seconds=int(time.monotonic() - began))
                status.update(f"streaming for {elapsed}: " + "; ".join(parts) + " (Ctrl-C stops)")


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stored(url: str, site: str, window: tuple[datetime, datetime]) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry WHERE site = %s AND ts >= %s AND ts < %s",
            (site, *window),
        ).fetchone()
    return int(str(row[0])) if row else 0


def _span(gap: timedelta) -> str:
    seconds = max(0, int(gap.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds / 3600:.1f} h"


def _quiet(message: str) -> None:
    """Analytics progress goes to the log, not the screen."""


def _show_analytics(
    summaries: dict[str, dict[str, Any]], savings: dict[str, tuple[Any, ...]], console: Console
) -> None:
    table = Table(title="latest analytics run (savings: the pilot's reporting period)")
    table.add_column("figure")
    sites = [p.site for p in PILOTS]
    for site in sites:
        table.add_column(site, justify="right")

    def row(name: str, value: Any) -> None:
        table.add_row(name, *(value(summaries.get(site, {}), site) for site in sites))

    row("site energy", lambda s, _: f"{s.get('energy_kwh', 0):,} kWh")
    row("drawn while idle", lambda s, _: f"{s.get('idle_kwh', 0):,} kWh")
    row("15-min demand peak", lambda s, _: f"{s.get('peak_kw', 0)} kW")
    row("outages / sags", lambda s, _: f"{s.get('outages', 0)} / {s.get('sags', 0)}")
    row("energy cost", lambda s, _: f"{s.get('cost', 0):,}")
    row("CO₂", lambda s, _: f"{s.get('co2_kg', 0):,} kg")

    def saving(_: dict[str, Any], site: str) -> str:
        found = savings.get(site)
        if found is None or found[1] is None:
            return "needs a 28-day baseline"
        return f"{found[1]:.1f} %, {found[2]:,.0f} {found[5]}"

    def payback(_: dict[str, Any], site: str) -> str:
        found = savings.get(site)
        return "—" if found is None or found[4] is None else f"{found[4]:.1f} years"

    row("measured savings", saving)
    row("simple payback", payback)
    console.print(table)

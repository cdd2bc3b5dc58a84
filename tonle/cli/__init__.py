"""The ``tonle`` command: the one composition root.

Each subcommand imports the part it runs inside its own body, so ``tonle edge`` on a
small gateway never loads psycopg, and ``tonle --help`` starts fast.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from tonle.errors import TonleError

app = typer.Typer(
    help="Tonle: edge gateway, MQTT ingest and analytics for smart-factory pilots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema and upkeep.", no_args_is_help=True)
contract_app = typer.Typer(help="The MQTT payload contract.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks: a table, then one JSON line of figures.", no_args_is_help=True
)
analytics_app = typer.Typer(help="Energy and maintenance analytics.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(contract_app, name="contract")
app.add_typer(bench_app, name="bench")
app.add_typer(analytics_app, name="analytics")
token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")
dashboards_app = typer.Typer(
    help="Grafana dashboards as code: build the files, deploy to a Grafana.", no_args_is_help=True
)
app.add_typer(dashboards_app, name="dashboards")

console = Console(stderr=True)
log = logging.getLogger("tonle")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # pymodbus logs every unanswered request at ERROR with a frame dump; the Modbus
    # source reports each outage once itself. asyncua logs its address space being
    # built, node by node, at INFO.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("asyncua").setLevel(logging.WARNING)


def _settings() -> Any:
    from tonle.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        console.print(f"[red]invalid TONLE_ settings:[/red]\n{exc}")
        raise typer.Exit(2) from None
    _setup_logging(settings.log_level)
    return settings


def _fail(exc: Exception, hint: str = "") -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    if hint:
        console.print(hint)
    return typer.Exit(1)


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT, so long-running commands can stop cleanly."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


# ------------------------------------------------------------------- contract


@contract_app.command("schema")
def contract_schema() -> None:
    """Print the v1 payload's JSON Schema (for device makers to validate against)."""
    from tonle.contract import payload_json_schema

    typer.echo(json.dumps(payload_json_schema(), indent=2))


@contract_app.command("check")
def contract_check(
    files: Annotated[list[Path], typer.Argument(help="payload files to validate", exists=True)],
) -> None:
    """Validate payload files against the contract; exit 1 if any is invalid."""
    from tonle.contract import decode_payload
    from tonle.errors import PayloadError

    bad = 0
    for path in files:
        try:
            payload = decode_payload(path.read_bytes())
            typer.echo(f"ok       {path}: {len(payload.readings)} readings")
        except PayloadError as exc:
            bad += 1
            typer.echo(f"invalid  {path}: {exc}")
    raise typer.Exit(1 if bad else 0)


# ------------------------------------------------------------------------- db


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or update the schema at TONLE_DATABASE_URL (idempotent)."""
    from tonle.db.migrate import migrate

    settings = _settings()
    try:
        report = migrate(settings.database_url, settings.db, progress=console.print)
    except TonleError as exc:
        raise _fail(
            exc, "Set TONLE_DATABASE_URL to a PostgreSQL 15+ server you can reach."
        ) from None
    done = ", ".join(report.applied) if report.applied else "nothing to apply"
    typer.echo(f"schema version {report.version} ({report.mode} mode): {done}")


@db_app.command("maintain")
def db_maintain() -> None:
    """Refresh roll-ups and apply retention now (native mode; TimescaleDB does it itself)."""
    import psycopg

    from tonle.db.maintenance import maintain

    settings = _settings()
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            report = maintain(conn, settings.db.retention_days)
    except (TonleError, psycopg.Error) as exc:
        raise _fail(exc) from None
    typer.echo(
        f"refreshed {report.hours_refreshed} hours of roll-ups, "
        f"deleted {report.readings_deleted} expired readings"
    )


# --------------------------------------------------------------------- ingest


@app.command("ingest")
def ingest(
    strict: Annotated[
        bool | None, typer.Option(help="dead-letter unknown sites, machines and sensors")
    ] = None,
    migrate: Annotated[
        bool, typer.Option(help="bring the schema up to date first (idempotent)")
    ] = True,
) -> None:
    """Subscribe to telemetry and store it (TONLE_DATABASE_URL, TONLE_MQTT_URL, TONLE_INGEST__*)."""
    from ingest.service import Ingester, stop_when_set
    from tonle.db.migrate import migrate as migrate_schema

    settings = _settings()
    if migrate:
        try:
            report = migrate_schema(settings.database_url, settings.db)
        except TonleError as exc:
            raise _fail(exc, "Set TONLE_DATABASE_URL to a PostgreSQL 15+ server.") from None
        log.info("schema version %d (%s mode)", report.version, report.mode)
    if strict is not None:
        settings = settings.model_copy(
            update={"ingest": settings.ingest.model_copy(update={"strict": strict})}
        )
    stop = _stop_on_signals()
    ingester = Ingester(settings)
    stop_when_set(stop, ingester)
    log.info(
        "ingesting from %s into %s as %s",
        settings.broker,
        _redact(settings.database_url),
        settings.ingest.client_id,
    )
    try:
        ingester.run()
    except TonleError as exc:
        raise _fail(exc) from None


def _redact(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - only for a log line
        return "<database>"
    host = params.get("host", "localhost")
    return f"{params.get('dbname', '')}@{host}:{params.get('port', 5432)}"


# ----------------------------------------------------------------------- edge


@app.command("edge")
def edge(
    config: Annotated[Path, typer.Option("--config", "-c", help="edge YAML file", exists=True)],
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="read the configured devices for --seconds and show what they say;"
            " no broker, nothing published; exit 1 if a device does not answer",
        ),
    ] = False,
    seconds: Annotated[
        float, typer.Option("--seconds", "-s", help="--check: how long to read", min=1)
    ] = 15.0,
) -> None:
    """Run the edge agent: sample its sources, spool to disk, publish over MQTT."""
    from edge.agent import run_agent
    from edge.config import load_config

    _setup_logging("WARNING" if check else "INFO")
    try:
        cfg = load_config(config)
    except TonleError as exc:
        raise _fail(exc) from None
    if check:
        _edge_check(cfg, seconds)
        return
    stop = _stop_on_signals()
    try:
        stats = run_agent(cfg, stop=stop)
    except TonleError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"edge stopped: {stats.acked_readings} readings acknowledged in {stats.acked} messages "
        f"({stats.buffered_published} replayed), {stats.pending} left in the spool, "
        f"{stats.dropped_messages} dropped by a full spool"
    )


def _edge_check(cfg: Any, seconds: float) -> None:
    """Read the devices of ``cfg`` for ``seconds``, print the latest of every series."""
    from rich.table import Table

    from edge.agent import build_sources
    from edge.check import STATUS_METRIC, run_check

    try:
        sources = [source for source, _realtime in build_sources(cfg)]
    except TonleError as exc:
        raise _fail(exc) from None
    with console.status(f"reading {len(sources)} sources for {seconds:g} s"):
        result = run_check(sources, seconds)
    table = Table("line", "machine", "metric", "value", "unit", "time (UTC)")
    for (line, machine, metric), sample in sorted(result.latest.items()):
        value = f"{sample.value:g}"
        if metric == STATUS_METRIC:
            value = "online" if sample.value else "[red]OFFLINE[/red]"
        table.add_row(
            line, machine, metric, value, sample.unit or "", f"{sample.ts:%H:%M:%S.%f}"[:-3]
        )
    console.print(table)
    console.print(f"{result.readings} readings from {len(result.machines())} machines")
    problems = [f"{line}/{machine} does not answer" for line, machine in result.offline()]
    problems += [f"source {failure}" for failure in result.failed_sources]
    if not result.readings:
        problems.append("nothing was read")
    if problems:
        raise _fail(
            TonleError("; ".join(problems)),
            "check the wiring (A to A, B to B), the unit id, baud rate and parity, or the"
            " URL, node ids and login; the log lines above say what each device answered",
        )


# ------------------------------------------------------------------- simulate


@app.command("simulate")
def simulate(
    layout: Annotated[
        str, typer.Option(help="garment, food, tiny, fleet, or a layout YAML path")
    ] = "garment",
    seed: Annotated[int, typer.Option(help="same seed, same data")] = 1,
    days: Annotated[float | None, typer.Option(help="backfill this many days, then stop")] = None,
    start: Annotated[
        datetime | None, typer.Option(help="first simulated instant (UTC); default now − days")
    ] = None,
    truth: Annotated[Path | None, typer.Option(help="write ground truth CSVs here")] = None,
    edge_id: Annotated[str, typer.Option(help="edge id the simulator publishes as")] = "sim-01",
    spool: Annotated[Path, typer.Option(help="edge spool file")] = Path("var/simulate.spool"),
    serve_devices: Annotated[
        bool,
        typer.Option(
            "--serve-devices",
            help="serve the factory as Modbus TCP meters and an OPC UA server instead"
            " of publishing; writes an edge.yaml for `tonle edge`",
        ),
    ] = False,
    devices_dir: Annotated[
        Path, typer.Option(help="--serve-devices: where edge.yaml and its spool go")
    ] = Path("var/devices"),
    host: Annotated[str, typer.Option(help="--serve-devices: address to listen on")] = "127.0.0.1",
    modbus_port: Annotated[int, typer.Option(help="--serve-devices: Modbus TCP port")] = 5020,
    opcua_port: Annotated[int, typer.Option(help="--serve-devices: OPC UA port")] = 4840,
) -> None:
    """Feed a simulated factory through an in-process edge agent to TONLE_MQTT_URL.

    Without --days it runs in real time until stopped; with --days it backfills that
    much history as fast as the broker takes it. With --serve-devices it stands in for
    the factory's devices instead: meters on Modbus TCP, machines on OPC UA, for a
    `tonle edge` to read.
    """
    settings = _settings()
    stop = _stop_on_signals()
    if serve_devices:
        if days is not None or start is not None:
            raise _fail(
                TonleError("--serve-devices runs in real time: leave out --days and --start")
            )
        from simulators.devices.serve import serve_devices as serve

        try:
            serve(
                layout=layout,
                seed=seed,
                edge_id=edge_id,
                mqtt_url=settings.mqtt_url,
                workdir=devices_dir,
                host=host,
                modbus_port=modbus_port,
                opcua_port=opcua_port,
                stop=stop,
                console=console,
            )
        except TonleError as exc:
            raise _fail(exc) from None
        return
    from simulators.session import run_simulation

    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    try:
        result = run_simulation(
            mqtt_url=settings.mqtt_url,
            layout=layout,
            seed=seed,
            days=days,
            start=start,
            truth_dir=truth,
            edge_id=edge_id,
            spool_path=spool,
            stop=stop,
            console=console,
        )
    except TonleError as exc:
        raise _fail(exc) from None
    typer.echo(json.dumps(result.summary()))


# --------------------------------------------------------------------- broker


broker_app = typer.Typer(help="The MQTT broker: run a local one, or write its files.")
app.add_typer(broker_app, name="broker")


@broker_app.callback(invoke_without_command=True)
def broker(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1")] = 1883,
) -> None:
    """Run a local MQTT broker for trying Tonle (Mosquitto if installed, else amqtt)."""
    if ctx.invoked_subcommand is not None:
        return
    from tonle.local_services import LocalBroker

    _setup_logging("INFO")
    stop = _stop_on_signals()
    with LocalBroker(port=port) as running:
        typer.echo(f"{running.kind} listening on {running.url}; Ctrl-C to stop")
        stop.wait()


@broker_app.command("acl")
def broker_acl(
    out: Annotated[Path, typer.Option(help="directory for the `passwd` and `acl` files")],
    ingester_user: Annotated[
        str | None, typer.Option(help="the ingester's MQTT user; default the one in TONLE_MQTT_URL")
    ] = None,
    simulator_site: Annotated[
        list[str] | None,
        typer.Option(
            "--simulator-site",
            help="a site `tonle simulate` may publish as (repeat); needs --simulator-url",
        ),
    ] = None,
    simulator_url: Annotated[
        str | None,
        typer.Option(
            envvar="TONLE_SIMULATOR_MQTT_URL",
            help="the simulators' mqtt://user:pass@host URL; no login is added without a password",
        ),
    ] = None,
) -> None:
    """Write Mosquitto's password and ACL files from the registry's enabled edges.

    Each edge may publish only under its own site and its own status topic; the ingester
    (its password from TONLE_MQTT_URL) may read everything. Revoked edges are left out.
    With --simulator-site and a simulator URL that has a password, one more login may
    publish as any edge of those sites, for `tonle simulate` against this broker.
    """
    from dataclasses import replace

    from api.provisioning import broker_files_from_database
    from tonle.settings import parse_mqtt_url

    settings = _settings()
    ingester = settings.broker
    if ingester_user:
        ingester = replace(ingester, username=ingester_user)
    sites = simulator_site or []
    try:
        simulator = parse_mqtt_url(simulator_url) if simulator_url else None
        files = broker_files_from_database(settings.database_url, ingester, simulator, sites)
    except TonleError as exc:
        raise _fail(exc) from None
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("passwd", files.passwd), ("acl", files.acl)):
        path = out / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o640)
    if not ingester.username:
        console.print("no ingester user: pass --ingester-user or put it in TONLE_MQTT_URL")
    if sites and not (simulator and simulator.username and simulator.password):
        console.print(
            "no simulator login: set TONLE_SIMULATOR_MQTT_URL (or --simulator-url) with a "
            "user and password to let `tonle simulate` publish here"
        )
    typer.echo(
        f"wrote {out / 'passwd'} and {out / 'acl'}; in mosquitto.conf set password_file and "
        "acl_file to them and allow_anonymous false, then reload Mosquitto (SIGHUP)"
    )


# ------------------------------------------------------------------ analytics


@analytics_app.command("run")
def analytics_run(
    site: Annotated[
        list[str] | None, typer.Option("--site", help="site id; repeat for more (default: all)")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option("--from", help="period start (UTC unless offset given)")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option("--to", help="period end (default: now)")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="keep running, e.g. 15m, picking up where it stopped")
    ] = None,
    sites_file: Annotated[
        Path | None, typer.Option("--sites", help="sites YAML (tariffs, shifts); default: example")
    ] = None,
) -> None:
    """Energy analytics: states, energy, idle waste, peaks, outages, cost and CO₂, SEC."""
    from analytics.runner import parse_every, run_every, run_once

    settings = _settings()
    sites_path = sites_file or settings.analytics.sites_file

    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    try:
        if every is None:
            reports = run_once(
                settings.database_url, site, aware(since), aware(until), sites_path, console.print
            )
            for report in reports:
                typer.echo(
                    json.dumps(
                        {"site": report.site, "run": report.run_id} | report.summary, default=str
                    )
                )
            return
        interval = parse_every(every)
        stop = _stop_on_signals()
        run_every(interval, stop, settings.database_url, site, sites_path, console.print)
    except TonleError as exc:
        raise _fail(exc) from None


@analytics_app.command("train-rul")
def analytics_train_rul(
    seed: Annotated[int, typer.Option(help="seed of the first simulated fleet")] = 1000,
    fleets: Annotated[
        int,
        typer.Option(
            min=1, help="simulated fleets (seeds seed, seed+1, …); 2+ for a held-out score"
        ),
    ] = 2,
    machines: Annotated[int, typer.Option(min=1, help="machines per fleet")] = 12,
    days: Annotated[float, typer.Option(min=1.0, help="days of operation per fleet")] = 180.0,
) -> None:
    """Train the hours-to-failure model on simulated run-to-failure fleets and store it.

    The model serves every machine: `tonle analytics run` then stores, per machine and
    hour, the hours to failure with an 80 % interval (table rul_estimates). A new model
    replaces the active one, which is retired with the reason. Takes a few minutes with
    the defaults.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from analytics.store import jsonable
    from tonle.cli.rul_training import train_rul, training_steps

    settings = _settings()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("simulating", total=training_steps(fleets, machines))
            stored = train_rul(
                settings.database_url, seed=seed, fleets=fleets, machines=machines, days=days,
                say=progress.console.print,
                tick=lambda step: progress.update(task, advance=1, description=step),
            )  # fmt: skip
    except ValueError as exc:
        raise _fail(exc) from None
    except TonleError as exc:
        raise _fail(exc, "Set TONLE_DATABASE_URL and run `tonle db migrate` first.") from None
    figures = stored.metrics
    table = Table(title=f"RUL model {stored.promotion.model_id} stored (kind rul, active)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("seeds", "failures", "lives", "training_lives", "training_windows",
                "heldout_windows", "heldout_mae_h", "heldout_interval_coverage", "cap_h",
                "fit_seconds", "seconds"):  # fmt: skip
        value = figures.get(key)
        table.add_row(key, f"{value:.3g}" if isinstance(value, float) else str(value))
    Console().print(table)
    console.print(f"reason: {stored.reason}")
    if figures.get("heldout_note"):
        console.print(f"[yellow]{figures['heldout_note']}[/yellow]")
    if stored.promotion.retired_id is None:
        console.print("no RUL model was active before")
    else:
        console.print(
            f"retired RUL model {stored.promotion.retired_id}: {stored.promotion.retire_reason}"
        )
    ids = {"model_id": stored.promotion.model_id, "retired": stored.promotion.retired_id}
    typer.echo(json.dumps(jsonable(ids | figures)))


# ------------------------------------------------------------------------ api


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) on TONLE_DATABASE_URL; tokens from `tonle token`."""
    import uvicorn

    from api.app import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, staff (all sites) or factory (one site)")],
    site: Annotated[str | None, typer.Option(help="the one site of a factory token")] = None,
    name: Annotated[
        str | None, typer.Option(help="who holds it; shown on acknowledged alerts")
    ] = None,
) -> None:
    """Make an API token and print it, alone, on the last line: it is shown only this once."""
    from api.tokens import create_token

    settings = _settings()
    try:
        record, secret = create_token(settings.database_url, role, site, name)
    except TonleError as exc:
        raise _fail(exc) from None
    scope = f"site {record.site}" if record.site else "all sites"
    console.print(
        f"token {record.token_id} ({record.name}, {record.role}, {scope}); "
        "store it now, it cannot be shown again:"
    )
    typer.echo(secret)


@token_app.command("list")
def token_list() -> None:
    """List the tokens (never their secrets)."""
    from rich.table import Table

    from api.tokens import list_tokens

    settings = _settings()
    table = Table(title="API tokens")
    for column in ("id", "name", "role", "site", "created", "revoked"):
        table.add_column(column)
    for record in list_tokens(settings.database_url):
        table.add_row(
            str(record.token_id), record.name, record.role, record.site or "*",
            f"{record.created_at:%Y-%m-%d %H:%M}",
            f"{record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "",
        )  # fmt: skip
    Console(width=120).print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="id from `tonle token list`")],
) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    from api.tokens import revoke_token

    settings = _settings()
    try:
        record = revoke_token(settings.database_url, token_id)
    except TonleError as exc:
        raise _fail(exc) from None
    typer.echo(f"token {record.token_id} ({record.name}) revoked at {record.revoked_at}")


# ---------------------------------------------------------------------- bench


@bench_app.command("ingest")
def bench_ingest(
    seconds: Annotated[
        float, typer.Option(min=1.0, help="measurement window per path, after a warm-up")
    ] = 20.0,
    per_message: Annotated[
        int, typer.Option(min=4, help="readings per MQTT message (a multiple of 4)")
    ] = 200,
    edges: Annotated[int, typer.Option(min=1, help="simulated edges, one process each")] = 4,
    workdir: Annotated[
        Path, typer.Option(help="embedded database and the ingesters' logs live here")
    ] = Path("var/bench"),
) -> None:
    """Readings/s stored end to end (1 and 2 ingesters), latency, beside naive and ceiling.

    Simulated edges publish batched readings at QoS 1 through the broker
    into `tonle ingest` processes and PostgreSQL. In the same run: a naive
    reference ingester (one INSERT and commit per reading) and the
    database's own ceiling for the same write. Uses TONLE_DATABASE_URL and
    TONLE_MQTT_URL where set (point them at services nothing else uses);
    otherwise starts private ones.
    """
    from rich.table import Table

    import benchmarks.naive_ingester
    from ingest.bench import BenchPlan, goal_rows, run_bench
    from tonle.cli.services import platform_services
    from tonle.db.migrate import migrate

    base = _settings()
    logging.getLogger().setLevel(logging.WARNING)
    with platform_services(workdir, console) as services:
        settings = services.settings(base)
        plan = BenchPlan(
            seconds=seconds,
            per_message=per_message,
            edges=edges,
            two_processes=services.mqtt5,
            naive_command=(sys.executable, benchmarks.naive_ingester.__file__),
        )
        try:
            migrate(settings.database_url, settings.db)
            figures = run_bench(settings, plan, workdir / "logs", console.print)
        except TonleError as exc:
            raise _fail(exc) from None
    table = Table(title=f"tonle bench ingest ({per_message} readings per message, {edges} edges)")
    for column in ("figure", "value", "goal", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, value, goal, met in goal_rows(figures):
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        table.add_row(key, shown, goal, met)
    Console().print(table)
    typer.echo(json.dumps(figures))


@bench_app.command("api")
def bench_api(
    machines: Annotated[int, typer.Option(help="machines in the factory")] = 40,
    days: Annotated[int, typer.Option(help="days of readings")] = 30,
    interval_s: Annotated[
        float, typer.Option(help="seconds between readings (the issue's scale is 10)")
    ] = 60.0,
    requests: Annotated[int, typer.Option(help="telemetry requests timed")] = 200,
    workdir: Annotated[Path, typer.Option(help="embedded database lives here")] = Path("var/bench"),
) -> None:
    """API p50/p95 for 30-day telemetry and the site energy summary, beside the same SQL."""
    import contextlib
    import os
    import time

    from rich.table import Table

    from tonle.cli.bench_api import ApiBenchSettings, run_api_bench
    from tonle.local_services import EmbeddedPostgres

    _setup_logging("WARNING")
    settings = ApiBenchSettings(machines=machines, days=days, interval_s=interval_s,
                                requests=requests)  # fmt: skip
    with contextlib.ExitStack() as stack:
        server_url = os.environ.get("TONLE_DATABASE_URL")
        if not server_url:
            console.print(f"starting an embedded PostgreSQL in {workdir / 'pg'} …")
            pg = EmbeddedPostgres(workdir / "pg").start()
            stack.callback(pg.stop)
            server_url = pg.url
        started = time.perf_counter()
        try:
            figures = run_api_bench(server_url, settings, console.print)
        except TonleError as exc:
            raise _fail(exc, "Is PostgreSQL reachable at TONLE_DATABASE_URL?") from None
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    table = Table(title=f"tonle bench api ({machines} machines, {days} days, {interval_s:g} s)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
    headline = ("telemetry_p95_ms", "energy_summary_p95_ms", "sql_p95_ms")
    typer.echo(json.dumps({key: figures[key] for key in headline} | figures))


@bench_app.command("queries")
def bench_queries(
    machines: Annotated[int, typer.Option(min=1, help="machines in the factory")] = 40,
    days: Annotated[float, typer.Option(min=0.01, help="days of readings")] = 30.0,
    interval_s: Annotated[float, typer.Option(min=0.1, help="seconds between readings")] = 10.0,
    per_message: Annotated[
        int, typer.Option(min=4, help="readings per MQTT message (a multiple of 4)")
    ] = 200,
    edges: Annotated[int, typer.Option(min=1, help="simulated edges, one process each")] = 2,
    ingesters: Annotated[int, typer.Option(min=1, help="`tonle ingest` processes")] = 2,
    repetitions: Annotated[int, typer.Option(min=3, help="timed runs of each query")] = 20,
    analytics: Annotated[
        bool, typer.Option(help="run the energy analytics and time the queries on its results")
    ] = True,
    database: Annotated[
        str, typer.Option(help="bench database, dropped and created afresh")
    ] = "tonle_bench_queries",
    workdir: Annotated[
        Path, typer.Option(help="embedded database and the ingesters' logs live here")
    ] = Path("var/bench"),
) -> None:
    """Dashboard and API queries p50/p95, raw and from the roll-ups; disk per reading.

    The factory's history is loaded through the broker into `tonle ingest`
    processes, in a database of its own.
    Uses TONLE_DATABASE_URL and TONLE_MQTT_URL where set; otherwise starts
    private ones.
    """
    import time

    from psycopg.conninfo import make_conninfo
    from rich.table import Table

    from tonle.cli.bench_load import Factory
    from tonle.cli.bench_queries import QueryBenchSettings, run_queries_bench
    from tonle.cli.services import platform_services

    _setup_logging("WARNING")
    factory = Factory(machines=machines, days=days, interval_s=interval_s, per_message=per_message)
    settings = QueryBenchSettings(database=database, factory=factory, edges=edges,
                                  ingesters=ingesters, repetitions=repetitions,
                                  analytics=analytics)  # fmt: skip
    started = time.perf_counter()
    with platform_services(workdir, console) as services:
        try:
            # The bench database is created beside the configured one, from `postgres`.
            server_url = make_conninfo(services.database_url, dbname="postgres")
            figures, timings = run_queries_bench(
                server_url, services.mqtt_url, services.mqtt5, settings,
                workdir / "logs", console.print,
            )  # fmt: skip
        except TonleError as exc:
            raise _fail(exc, "Can PostgreSQL's role create databases?") from None
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    title = f"tonle bench queries ({machines} machines, {days:g} days, {interval_s:g} s)"
    table = Table(title=title)
    for column in ("question", "source", "rows", "runs", "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column in ("question", "source") else "right")
    for t in timings:
        table.add_row(t.question, t.source, f"{t.rows:,}", str(t.runs), f"{t.p50_ms:,.1f}",
                      f"{t.p95_ms:,.1f}")  # fmt: skip
    Console(width=140).print(table)
    scale = Table(title="load and disk, beside ThingsBoard's single-node PostgreSQL figures")
    for column in ("figure", "Tonle", "ThingsBoard"):
        scale.add_column(column, justify="left" if column == "figure" else "right")
    recommended = figures["thingsboard_recommended_points_per_s"]
    rate = figures["load_readings_per_s"]
    scale.add_row("readings/s sustained through MQTT → ingest", f"{rate:,}",
                  f"{recommended:,} (recommended max)")  # fmt: skip
    scale.add_row("bytes per reading: table + indexes", str(figures["bytes_per_reading_raw"]),
                  str(figures["thingsboard_bytes_per_point"]))  # fmt: skip
    scale.add_row("bytes per reading: + 1 min and 1 h roll-ups",
                  str(figures["bytes_per_reading_with_rollups"]), "")  # fmt: skip
    compressed = figures["bytes_per_reading_compressed"]
    shown = str(compressed) if figures["timescaledb"] else "n/a (no TimescaleDB)"
    scale.add_row("bytes per reading: TimescaleDB compressed", shown, "")
    for key in ("readings_loaded", "load_seconds", "rollup_seconds", "vacuum_analyze_seconds",
                "analytics_seconds", "disk_mb_per_day", "total_seconds"):  # fmt: skip
        if key in figures:
            value = figures[key]
            scale.add_row(key, f"{value:,}" if isinstance(value, int) else str(value), "")
    Console(width=140).print(scale)
    typer.echo(json.dumps(figures))


@bench_app.command("edge")
def bench_edge(
    rate: Annotated[float, typer.Option(min=1.0, help="readings/s the edge samples")] = 100.0,
    window_s: Annotated[float, typer.Option(min=5.0, help="seconds RSS and CPU are read")] = 60.0,
    warmup_s: Annotated[float, typer.Option(min=1.0, help="seconds before the window")] = 10.0,
    spool_s: Annotated[float, typer.Option(min=1.0, help="seconds of spool writes")] = 10.0,
    backlog: Annotated[int, typer.Option(min=100, help="readings replayed")] = 360_000,
    modbus_meters: Annotated[
        int, typer.Option(min=0, max=247, help="simulated SDM630 meters polled; 0: skip")
    ] = 10,
    modbus_interval: Annotated[
        float, typer.Option(min=0.1, help="seconds between polls of each meter")
    ] = 1.0,
) -> None:
    """Memory and CPU of `tonle edge` (steady rate, Modbus polling); spool write and replay.

    Uses a private Mosquitto (the replay needs a broker nothing else feeds);
    TONLE_MQTT_URL is ignored.
    """
    import time

    from rich.table import Table

    from tonle.cli.bench_edge import EdgeBenchSettings, run_edge_bench
    from tonle.local_services import LocalBroker

    _setup_logging("WARNING")
    settings = EdgeBenchSettings(readings_per_s=rate, window_s=window_s, warmup_s=warmup_s,
                                 spool_s=spool_s, backlog_readings=backlog,
                                 modbus_meters=modbus_meters,
                                 modbus_interval_s=modbus_interval)  # fmt: skip
    started = time.perf_counter()
    try:
        with LocalBroker() as broker:
            console.print(f"started a private {broker.kind} broker on {broker.url}")
            figures = run_edge_bench(broker.url, settings, console.print)
    except TonleError as exc:
        raise _fail(exc) from None
    figures["total_seconds"] = round(time.perf_counter() - started, 1)
    title = f"tonle bench edge ({rate:g} readings/s"
    if modbus_meters:
        title += f"; {modbus_meters} Modbus meters every {modbus_interval:g} s"
    table = Table(title=title + ")")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
    typer.echo(json.dumps(figures))


@bench_app.command("energy")
def bench_energy(
    seed: Annotated[int, typer.Option(help="simulation seed; any seed must meet the targets")] = 1,
    opendsm: Annotated[
        bool, typer.Option(help="compare with opendsm's CalTRACK model if installed")
    ] = True,
    samples: Annotated[
        bool | None,
        typer.Option(
            "--samples/--no-samples",
            help="also compare on opendsm's bundled sample meters (default: if installed)",
        ),
    ] = None,
) -> None:
    """Baseline and savings against a simulated intervention, states and peaks against truth."""
    from rich.table import Table

    from analytics.baseline_opendsm import opendsm_available
    from analytics.job import MIN_DWELL_S
    from tonle.cli.bench_energy import (
        SAMPLE_KEYS,
        BenchSettings,
        run_energy_bench,
        run_sample_meters_bench,
    )
    from tonle.cli.evaluation import peak_hit_rate, running_f1

    _setup_logging("WARNING")
    figures = run_energy_bench(seed, console.print, BenchSettings(compare_opendsm=opendsm))
    console.print("scoring machine states against the simulator's truth (garment, 2 days)")
    figures["state_f1"] = round(running_f1("garment", seed, days=2, min_dwell_s=MIN_DWELL_S), 4)
    console.print("finding monthly demand peaks (garment, 12 months at 300 s)")
    rate, months = peak_hit_rate("garment", seed, months=12, sample_interval_s=300.0)
    figures["peak_hit_rate"] = round(rate, 4)
    figures["peak_months"] = months
    if samples if samples is not None else opendsm_available():
        figures |= run_sample_meters_bench(console.print)
    else:
        figures |= dict.fromkeys(SAMPLE_KEYS) | {"samples_note": "sample meters skipped"}
    targets: dict[str, tuple[str, Callable[[float], bool]]] = {
        "hourly_cv_rmse": ("≤ 15", lambda v: v <= 15),
        "hourly_nmbe": ("|x| ≤ 2", lambda v: abs(v) <= 2),
        "savings_error_pp": ("≤ 1", lambda v: v <= 1),
        "state_f1": ("≥ 0.95", lambda v: v >= 0.95),
        "peak_hit_rate": ("≥ 0.95", lambda v: v >= 0.95),
        "fit_seconds": ("< 5", lambda v: v < 5),
    }
    table = Table(title=f"tonle bench energy (seed {seed})")
    for column in ("figure", "Tonle", "opendsm", "target", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, (target, ok) in targets.items():
        value = figures.get(key)
        other = figures.get(f"opendsm_{key}")
        table.add_row(
            key,
            str(value),
            "" if other is None else str(other),
            target,
            "" if value is None else ("yes" if ok(value) else "NO"),
        )
    tonle_cv, opendsm_cv = figures["samples_tonle_cv_rmse"], figures["samples_opendsm_cv_rmse"]
    if tonle_cv is not None and opendsm_cv is not None:
        met = "yes" if tonle_cv <= opendsm_cv + 1 else "NO"
        table.add_row("samples_cv_rmse", str(tonle_cv), str(opendsm_cv), "≤ opendsm + 1", met)
        for key in ("baseline_cv_rmse", "savings_error_pp"):
            tonle, other = figures[f"samples_tonle_{key}"], figures[f"samples_opendsm_{key}"]
            table.add_row(f"samples_{key}", str(tonle), str(other), "", "")
    Console().print(table)
    headline = ("hourly_cv_rmse", "hourly_nmbe", "savings_error_pp", "opendsm_hourly_cv_rmse",
                "state_f1", "peak_hit_rate", "fit_seconds")  # fmt: skip
    typer.echo(json.dumps({key: figures.get(key) for key in headline} | figures))


@bench_app.command("rul")
def bench_rul(
    data: Annotated[
        Path, typer.Option(help="the C-MAPSS FD001 folder (train, test and RUL files)")
    ] = Path("../shared/datasets/cmapss-fd001"),
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Remaining useful life on NASA C-MAPSS FD001: test RMSE and PHM08 score, last cycle."""
    from rich.table import Table

    from analytics.cmapss import evaluate_fd001

    _setup_logging("WARNING")
    if not (data / "train_FD001.txt").exists():
        raise _fail(
            FileNotFoundError(f"no train_FD001.txt in {data}"),
            "Pass --data with the folder holding train_FD001.txt, test_FD001.txt, RUL_FD001.txt.",
        )
    console.print("training on train_FD001 (RUL capped at 125), scoring the last test cycles")
    figures = evaluate_fd001(data, random_state=seed)
    reference = {"rmse": 13.4, "phm08_score": 253.0}  # a plain random forest, 30-cycle windows
    targets = {"rmse": 13.0, "phm08_score": 250.0}
    table = Table(title="tonle bench rul (C-MAPSS FD001)")
    for column in ("figure", "Tonle", "random-forest reference", "target", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, target in targets.items():
        value = float(figures[key])
        table.add_row(key, f"{value:.2f}", str(reference[key]), f"≤ {target}",
                      "yes" if value <= target else "NO")  # fmt: skip
    table.add_row("fit_seconds", f"{float(figures['fit_seconds']):.1f}", "", "", "")
    Console().print(table)
    typer.echo(json.dumps(figures, default=float))


@bench_app.command("maintenance")
def bench_maintenance(
    seed: Annotated[int, typer.Option(help="seed of the first simulated fleet")] = 1,
    fleets: Annotated[int, typer.Option(help="simulated fleets (seeds seed, seed+1, …)")] = 2,
    machines: Annotated[int, typer.Option(help="machines per fleet")] = 12,
    days: Annotated[float, typer.Option(help="days of operation per fleet")] = 180.0,
    cmapss: Annotated[Path, typer.Option(help="the C-MAPSS FD001 folder")] = Path(
        "../shared/datasets/cmapss-fd001"
    ),
    nab: Annotated[Path, typer.Option(help="the NAB folder (machine temperature)")] = Path(
        "../shared/datasets/nab"
    ),
) -> None:
    """Early warnings on simulated fleets, RUL on C-MAPSS, anomalies on NAB, beside references."""
    from rich.table import Table

    from tonle.cli.bench_maintenance import (
        TARGETS,
        cmapss_figures,
        fleet_figures,
        met,
        nab_figures,
    )

    _setup_logging("WARNING")
    for folder, wanted in ((cmapss, "train_FD001.txt"), (nab, "windows.json")):
        if not (folder / wanted).exists():
            raise _fail(
                FileNotFoundError(f"no {wanted} in {folder}"),
                "Pass --cmapss and --nab with the dataset folders (see ../shared/datasets).",
            )
    figures: dict[str, Any] = {}
    with console.status("simulated fleets…"):
        figures |= fleet_figures(seed, fleets, machines, days, console.print)
    with console.status("NAB machine temperature…"):
        figures |= nab_figures(nab)
    with console.status("C-MAPSS FD001 (two regressors, about a minute)…"):
        figures |= cmapss_figures(cmapss, seed)

    table = Table(title=f"tonle bench maintenance (seed {seed}, {fleets} fleets)")
    for column in ("figure", "Tonle", "reference", "target", "met"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    rows = (
        ("event_recall", "baseline_event_recall", "rolling z-score"),
        ("episode_precision", "baseline_episode_precision", "rolling z-score"),
        ("false_per_1000h", "baseline_false_per_1000h", "rolling z-score"),
        ("median_lead_h", "baseline_median_lead_h", "rolling z-score"),
        ("p10_lead_h", None, ""),
        ("cmapss_rmse", "cmapss_forest_rmse", "random forest"),
        ("cmapss_score", "cmapss_forest_score", "random forest"),
        ("nab_windows_found", "nab_iforest_windows_found", "IsolationForest"),
        ("nab_false_per_week", "nab_iforest_false_per_week", "IsolationForest"),
    )
    for key, ref_key, ref_name in rows:
        value = float(figures[key])
        reference = f"{float(figures[ref_key]):.3g} ({ref_name})" if ref_key else ""
        if key == "nab_false_per_week":
            target, ok = "< reference", value < float(figures["nab_iforest_false_per_week"])
            verdict = "yes" if ok else "NO"
        else:
            sense_target = TARGETS.get(key)
            target = f"{sense_target[0]} {sense_target[1]:g}" if sense_target else ""
            verdict = met(key, value)
        table.add_row(key, f"{value:.3g}", reference, target, verdict)
    table.add_row("failures caught", f"{figures['caught']}/{figures['failures']}", "", "", "")
    table.add_row(
        "episodes (false)", f"{figures['episodes']} ({figures['false_episodes']})", "", "", ""
    )
    table.add_row("rul_mae_h (last 14 days)", f"{figures['rul_mae_h']:.3g}", "", "", "")
    table.add_row("rul_interval_coverage (80 %)", f"{figures['rul_interval_coverage']:.3g}",
                  "", "", "")  # fmt: skip
    Console().print(table)
    headline = (
        "cmapss_rmse", "cmapss_score", "event_recall", "episode_precision", "false_per_1000h",
        "median_lead_h", "p10_lead_h", "baseline_event_recall", "baseline_false_per_1000h",
        "nab_windows_found", "nab_false_per_week",
    )  # fmt: skip
    typer.echo(json.dumps({key: figures[key] for key in headline} | figures, default=float))


# ----------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    days: Annotated[
        float, typer.Option(help="days of history to backfill for each pilot (first run)")
    ] = 30.0,
    port: Annotated[int, typer.Option(help="the API's TCP port on 127.0.0.1")] = 8000,
    live: Annotated[
        bool,
        typer.Option(
            "--live/--no-live",
            help="keep streaming and serving after the backfill; --no-live exits after the "
            "analytics, with status 1 if the database does not hold exactly what was emitted",
        ),
    ] = True,
    workdir: Annotated[
        Path, typer.Option(help="embedded database, spools, logs; reused by the next run")
    ] = Path("var/demo"),
) -> None:
    """Run the platform on this machine with two simulated pilots, and keep it running.

    A garment factory (site garment-pp) and a food-processing plant (food-pp) backfill
    their history through edge agent → MQTT → ingester → PostgreSQL; then the analytics
    run, the API starts on --port, and both factories stream live until Ctrl-C. Uses
    TONLE_DATABASE_URL and TONLE_MQTT_URL where set; otherwise starts an embedded
    PostgreSQL (kept in --workdir) and a private broker (Mosquitto if installed, else
    amqtt; TONLE_DEMO_BROKER=amqtt forces amqtt). A second run with the same --workdir
    reuses the stored history and backfills only the time since.
    """
    from tonle.cli.demo import run_demo

    _setup_logging("WARNING")
    try:
        ok = run_demo(days=days, port=port, live=live, workdir=workdir, console=console)
    except TonleError as exc:
        raise _fail(exc) from None
    raise typer.Exit(0 if ok else 1)


# ----------------------------------------------------------------- dashboards


@dashboards_app.command("build")
def dashboards_build(
    out: Annotated[
        Path | None,
        typer.Option(help="folder to write json/ and provisioning/ into (default: the package's)"),
    ] = None,
) -> None:
    """Write every dashboard's JSON and Grafana's provisioning files from the code."""
    from dashboards.build import PACKAGE_DIR, write

    for path, state in write(out or PACKAGE_DIR):
        typer.echo(f"{state:<10} {path}")


@dashboards_app.command("deploy")
def dashboards_deploy(
    url: Annotated[str, typer.Option(help="Grafana's URL, e.g. http://localhost:3000")],
    token: Annotated[
        str,
        typer.Option(
            help="a Grafana service-account token (Editor or Admin)", envvar="GRAFANA_TOKEN"
        ),
    ],
    folder: Annotated[str, typer.Option(help="the folder the dashboards go into")] = "Tonle",
    db_host: Annotated[
        str | None,
        typer.Option(
            help="host:port of the database as Grafana reaches it (default: from the URL)"
        ),
    ] = None,
    db_name: Annotated[
        str | None, typer.Option(help="database name (default: from TONLE_DATABASE_URL)")
    ] = None,
    db_user: Annotated[
        str | None,
        typer.Option(help="a read-only database user for Grafana (default: from the URL)"),
    ] = None,
    db_password: Annotated[
        str | None,
        typer.Option(
            help="its password (default: from TONLE_DATABASE_URL)",
            envvar="TONLE_GRAFANA_DB_PASSWORD",
        ),
    ] = None,
    datasource: Annotated[bool, typer.Option(help="create or update the data source too")] = True,
    force: Annotated[
        bool, typer.Option(help="write every item even where it looks unchanged")
    ] = False,
) -> None:
    """Create or update the folder, the data source and the dashboards in a running Grafana.

    The data source's database comes from TONLE_DATABASE_URL unless the --db-* options
    say otherwise (Grafana often reaches the database by another name). Idempotent: each
    item is compared first, and a second run reports every item "unchanged". A dashboard
    whose code changed (its rev: tag) replaces the deployed one.
    """
    from dataclasses import replace

    from dashboards.build import dashboards
    from dashboards.deploy import DatabaseAccess, connect, deploy

    try:
        access = None
        if datasource:
            access = DatabaseAccess.from_url(_settings().database_url)
            changes = {
                "host": db_host,
                "database": db_name,
                "user": db_user,
                "password": db_password,
            }
            access = replace(access, **{k: v for k, v in changes.items() if v is not None})
        with connect(url, token) as api:
            done = deploy(api, dashboards(), access, folder_title=folder, force=force)
    except TonleError as exc:
        raise _fail(exc, "Check --url and that the token may edit dashboards.") from None
    for item in done:
        typer.echo(f"{item.outcome:<10} {item.kind:<10} {item.name}")


def main() -> None:
    """Entry point of the ``tonle`` console script."""
    app()


if __name__ == "__main__":
    main()

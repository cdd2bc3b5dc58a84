"""Numbered, idempotent migrations, and the one-time choice of storage mode.

Migrations are the files in ``tonle/db/sql``: ``NNNN_name.sql`` runs in every mode,
``NNNN_name.native.sql`` only on plain PostgreSQL, ``NNNN_name.timescaledb.sql`` only
with the TimescaleDB extension. All TimescaleDB-only SQL lives in the
``*.timescaledb.sql`` files, so it can be parsed and checked without the extension.

The mode (``native`` or ``timescaledb``) is chosen at the first migration and recorded
in ``tonle_meta``; later migrations keep it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tonle.errors import StoreError
from tonle.settings import DbSettings

log = logging.getLogger(__name__)

Mode = Literal["native", "timescaledb"]
_FILE = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<mode>native|timescaledb))?\.sql$"
)
_LOCK_KEY = 0x746F6E6C65  # "tonle": one migrator at a time


@dataclass(frozen=True)
class Migration:
    """One numbered step: SQL for every mode, and SQL for one mode only."""

    version: int
    name: str
    common: str = ""
    native: str = ""
    timescaledb: str = ""

    def sql_for(self, mode: Mode) -> str:
        """The SQL this step runs in ``mode``."""
        return "\n".join(part for part in (self.common, getattr(self, mode)) if part)


@dataclass
class MigrationReport:
    """What ``migrate`` found and did."""

    mode: Mode
    version: int
    applied: list[str] = field(default_factory=list)
    created_database: bool = False


def _sql_files() -> dict[str, str]:
    folder = resources.files("tonle.db").joinpath("sql")
    return {
        item.name: item.read_text("utf-8")
        for item in folder.iterdir()
        if item.name.endswith(".sql")
    }


def load_migrations() -> list[Migration]:
    """The migrations shipped with this version, in order."""
    steps: dict[int, dict[str, str]] = {}
    for filename, text in _sql_files().items():
        match = _FILE.match(filename)
        if match is None:
            continue  # e.g. policies.timescaledb.sql, applied separately
        step = steps.setdefault(int(match["version"]), {"name": match["name"]})
        step[match["mode"] or "common"] = text
    return [
        Migration(
            version=version,
            name=parts["name"],
            common=parts.get("common", ""),
            native=parts.get("native", ""),
            timescaledb=parts.get("timescaledb", ""),
        )
        for version, parts in sorted(steps.items())
    ]


def timescaledb_policies() -> str:
    """The policy statements re-applied on every migration in TimescaleDB mode."""
    return _sql_files()["policies.timescaledb.sql"]


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if it does not exist; True if created."""
    params = conninfo_to_dict(url)
    dbname = str(params.get("dbname") or "")
    try:
        with psycopg.connect(url, connect_timeout=10):
            return False
    except psycopg.OperationalError as exc:
        if not dbname or f'database "{dbname}" does not exist' not in str(exc):
            raise StoreError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
    maintenance = make_conninfo(url, dbname="postgres")
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.Error as exc:
        raise StoreError(
            f"database {dbname!r} does not exist and could not be created: {exc}"
        ) from exc
    log.info("created database %s", dbname)
    return True


def _choose_mode(conn: psycopg.Connection[tuple[object, ...]], wanted: str) -> Mode:
    recorded = conn.execute("SELECT value FROM tonle_meta WHERE key = 'storage_mode'").fetchone()
    if recorded is not None:
        mode = str(recorded[0])
        if wanted not in ("auto", mode):
            raise StoreError(
                f"this database was set up in {mode} mode; TONLE_DB__MODE={wanted} cannot change "
                "that (migrate a fresh database instead)"
            )
        return "timescaledb" if mode == "timescaledb" else "native"
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if wanted == "timescaledb" and available is None:
        raise StoreError(
            "TONLE_DB__MODE=timescaledb but the TimescaleDB extension is not installed on this "
            "server; install it or use TONLE_DB__MODE=auto"
        )
    chosen: Mode = "timescaledb" if available is not None and wanted != "native" else "native"
    if chosen == "timescaledb":
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    conn.execute("INSERT INTO tonle_meta (key, value) VALUES ('storage_mode', %s)", (chosen,))
    return chosen


def migrate(
    url: str,
    settings: DbSettings | None = None,
    *,
    create_database: bool = True,
    progress: Callable[[str], None] | None = None,
) -> MigrationReport:
    """Bring the schema at ``url`` up to date; safe to run any number of times."""
    settings = settings or DbSettings()
    created = ensure_database(url) if create_database else False
    say = progress or (lambda message: log.info("%s", message))
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}".strip()) from exc
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            with conn.transaction():
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL, mode text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS tonle_meta"
                    " (key text PRIMARY KEY, value text NOT NULL)"
                )
                mode = _choose_mode(conn, settings.mode)
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            report = MigrationReport(
                mode=mode, version=max(done, default=0), created_database=created
            )
            for step in load_migrations():
                if step.version in done:
                    continue
                label = f"{step.version:04d}_{step.name}"
                say(f"applying {label} ({mode})")
                try:
                    with conn.transaction():
                        conn.execute(step.sql_for(mode).encode("utf-8"))
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, mode)"
                            " VALUES (%s, %s, %s)",
                            (step.version, step.name, mode),
                        )
                except psycopg.Error as exc:
                    raise StoreError(f"migration {label} failed: {exc}") from exc
                report.applied.append(label)
                report.version = step.version
            if mode == "timescaledb":
                params = {
                    "retention_days": settings.retention_days,
                    "compress_after_days": settings.compress_after_days,
                }
                with conn.transaction():
                    psycopg.ClientCursor(conn).execute(timescaledb_policies(), params)
                say(
                    f"policies: compress after {settings.compress_after_days} d, "
                    f"drop raw readings after {settings.retention_days} d"
                )
            return report
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def storage_mode(conn: psycopg.Connection[tuple[object, ...]]) -> Mode:
    """The mode recorded at migration; raise StoreError if the schema is not migrated."""
    try:
        row = conn.execute("SELECT value FROM tonle_meta WHERE key = 'storage_mode'").fetchone()
    except psycopg.errors.UndefinedTable:
        raise StoreError("the database has no Tonle schema yet: run `tonle db migrate`") from None
    if row is None:
        raise StoreError("the database has no Tonle schema yet: run `tonle db migrate`")
    return "timescaledb" if row[0] == "timescaledb" else "native"

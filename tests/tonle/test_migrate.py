"""Migrations: idempotent, recorded, mode chosen once; TimescaleDB SQL parsed without it."""

from __future__ import annotations

import re
from importlib import resources

import pglast
import psycopg
import pytest

from tonle.db.migrate import load_migrations, migrate, timescaledb_policies
from tonle.errors import StoreError
from tonle.settings import DbSettings


def _timescaledb_sql() -> dict[str, str]:
    folder = resources.files("tonle.db").joinpath("sql")
    return {
        f.name: f.read_text("utf-8")
        for f in folder.iterdir()
        if f.name.endswith(".timescaledb.sql")
    }


def test_timescaledb_sql_parses_and_uses_the_expected_features() -> None:
    files = _timescaledb_sql()
    assert set(files) == {"0002_rollups.timescaledb.sql", "policies.timescaledb.sql"}
    text = "\n".join(files.values())
    bound = re.sub(r"%\((\w+)\)s", "7", text)  # the migrator binds these
    statements = pglast.parse_sql(bound)
    assert len(statements) == 13
    for feature in [
        "create_hypertable",
        "INTERVAL '1 day'",
        "timescaledb.continuous",
        "add_continuous_aggregate_policy",
        "add_compression_policy",
        "add_retention_policy",
    ]:
        assert feature in text
    assert timescaledb_policies() == files["policies.timescaledb.sql"]


def test_every_mode_gets_every_step() -> None:
    steps = load_migrations()
    assert [s.version for s in steps] == list(range(1, len(steps) + 1))
    for step in steps:
        assert step.sql_for("native") and step.sql_for("timescaledb")
        pglast.parse_sql(step.sql_for("native"))


@pytest.mark.db
def test_migrate_is_idempotent_and_records_version_and_mode(empty_database_url: str) -> None:
    first = migrate(empty_database_url, create_database=False)
    assert first.mode == "native"
    shipped = [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert shipped[:3] == ["0001_core", "0002_rollups", "0003_views"]
    assert first.applied == shipped
    again = migrate(empty_database_url, create_database=False)
    assert again.applied == [] and again.version == first.version == len(shipped)
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute(
            "SELECT value FROM tonle_meta WHERE key = 'storage_mode'"
        ).fetchone() == ("native",)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(shipped),)
        columns = [
            c.name for c in conn.execute("SELECT * FROM telemetry LIMIT 0").description or []
        ]
        assert columns == ["ts", "site", "line", "machine", "metric", "unit", "value"]
        value_type = conn.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = 'readings' AND column_name = 'value'"
        ).fetchone()
        assert value_type == ("double precision",)
    with pytest.raises(StoreError, match="set up in native mode"):
        migrate(empty_database_url, DbSettings(mode="timescaledb"), create_database=False)


@pytest.mark.db
def test_timescaledb_mode_fails_clearly_without_the_extension(empty_database_url: str) -> None:
    with psycopg.connect(empty_database_url) as conn:
        has_timescale = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    if has_timescale:
        report = migrate(empty_database_url, DbSettings(mode="timescaledb"), create_database=False)
        assert report.mode == "timescaledb"
    else:
        with pytest.raises(StoreError, match="extension is not installed"):
            migrate(empty_database_url, DbSettings(mode="timescaledb"), create_database=False)


@pytest.mark.db
def test_migrate_creates_a_missing_database(pg_admin_url: str) -> None:
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname="tonle_t_created_by_migrate")
    try:
        report = migrate(url)
        assert report.created_database and report.version == len(load_migrations())
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS tonle_t_created_by_migrate WITH (FORCE)")

"""Every panel of every dashboard, run as Grafana would run it on simulated, analysed sites.

Variables take the values their own queries return from the database (``$line`` and
``$machine`` as "All"); macros expand as Grafana's PostgreSQL data source expands them
(``time_bucket`` where TimescaleDB is installed). Each query must return its declared
columns and at least one row, unless the panel says why it may be empty.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import psycopg
import pytest

from api import queries as api_queries
from api.models import PortfolioSitePublic
from dashboards.board import PanelQuery
from dashboards.catalog import all_boards
from dashboards.macros import QueryContext, Variable, expand
from dashboards.variables import VARIABLE_SQL
from tests.dashboards.conftest import Filled

pytestmark = pytest.mark.db

PANELS = [panel for board in all_boards() for panel in board.queries]
# The site each dashboard is looked at for; the edge fleet takes every site ("All").
SITE_OF = {"tonle-pilot": "pilot"}


def _timescaledb(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        is not None
    )


def _context(
    conn: psycopg.Connection[tuple[object, ...]], filled: Filled, board: str
) -> QueryContext:
    """The range, interval and variable values a user would see for ``board``."""
    base = QueryContext(filled.start, filled.end, timedelta(hours=1), {}, _timescaledb(conn))

    def options(name: str, variables: dict[str, Variable]) -> list[str]:
        context = QueryContext(base.time_from, base.time_to, base.interval, variables)
        return [str(row[0]) for row in conn.execute(expand(VARIABLE_SQL[name], context))]

    sites = options("site", {})
    if board == "tonle-edges":
        variables = {"site": Variable.many(sites)}
    else:
        site = SITE_OF.get(board, "tiny")
        assert site in sites
        variables = {"site": Variable.single(site)}
        variables["line"] = Variable.many(options("line", variables))
        variables["machine"] = Variable.many(options("machine", variables))
        assert variables["line"].values and variables["machine"].values, variables
    return QueryContext(base.time_from, base.time_to, base.interval, variables, base.timescaledb)


def test_every_board_has_panels() -> None:
    boards = all_boards()
    assert [b.uid for b in boards] == [
        "tonle-overview", "tonle-energy", "tonle-maintenance", "tonle-oee", "tonle-pilot",
        "tonle-portfolio", "tonle-edges",
    ]  # fmt: skip
    assert all(board.queries for board in boards)
    assert not [p.panel for p in PANELS if p.query.may_be_empty], "none may be empty here"


@pytest.mark.parametrize("panel", PANELS, ids=[f"{p.board}:{p.panel}" for p in PANELS])
def test_panel_query_returns_its_columns_and_rows(filled: Filled, panel: PanelQuery) -> None:
    with psycopg.connect(filled.url) as conn:
        sql = expand(panel.query.sql, _context(conn, filled, panel.board))
        assert not re.search(r"\$[_a-zA-Z{]", sql), sql  # nothing left for Grafana to fill
        cur = conn.execute(sql)
        assert cur.description is not None
        columns = tuple(column.name for column in cur.description)
        rows = cur.fetchall()
    assert columns == panel.query.columns
    if not panel.query.may_be_empty:
        assert rows, f"{panel.board} / {panel.panel} returned no rows:\n{sql}"
    if panel.query.format == "time_series":
        assert all(row[0] is not None for row in rows)


def test_the_portfolio_panel_shows_what_the_api_serves(filled: Filled) -> None:
    """The panel's SQL is api.queries.portfolio with the dashboard's range: same figures."""
    from dashboards import queries

    async def from_api() -> list[PortfolioSitePublic]:
        async with await psycopg.AsyncConnection.connect(filled.url) as conn:
            return await api_queries.portfolio(conn, None, filled.start, filled.end)

    served = asyncio.run(from_api())
    with psycopg.connect(filled.url) as conn:
        context = QueryContext(filled.start, filled.end, timedelta(hours=1))
        cur = conn.execute(expand(queries.PORTFOLIO.sql, context))
        assert cur.description is not None
        names = [c.name for c in cur.description]
        shown = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    assert [row["site"] for row in shown] == [site.site for site in served] == ["pilot", "tiny"]
    for row, site in zip(shown, served, strict=True):
        for field in ("energy_kwh", "completeness", "savings_pct", "avoided_cost", "uptime"):
            assert row[field] == pytest.approx(getattr(site, field)), (site.site, field)
        for field in ("period_start", "period_end", "faults", "faults_caught", "open_alerts"):
            assert row[field] == getattr(site, field), (site.site, field)
    tiny = shown[1]
    assert tiny["energy_kwh"] > 0 and tiny["faults"] >= 1 and 0 < tiny["uptime"] < 1
    assert shown[0]["period"] == "pilot" and shown[0]["savings_pct"] is not None


def test_live_power_reads_minutes_for_short_intervals_and_hours_for_long_ones(
    filled: Filled,
) -> None:
    """Under an hour per point it reads the 1-minute roll-up, else the hourly one: same means."""
    from dashboards import queries

    with psycopg.connect(filled.url) as conn:
        hourly = _context(conn, filled, "tonle-overview")
        minutely = QueryContext(
            hourly.time_from, hourly.time_to, timedelta(minutes=1), hourly.variables,
            hourly.timescaledb,
        )  # fmt: skip
        by_hour = conn.execute(expand(queries.LIVE_POWER.sql, hourly)).fetchall()
        by_minute = conn.execute(expand(queries.LIVE_POWER.sql, minutely)).fetchall()
    assert by_minute and len(by_minute) > len(by_hour) > 0
    # The simulated site samples every 300 s, one reading per minute bucket at most, so the
    # mean of an hour's minutes is the hour's mean.
    # Times are epoch seconds, as $__timeGroupAlias gives them to Grafana.
    sums: dict[tuple[float, str], list[float]] = {}
    for ts, machine, value in by_minute:
        hour = float(ts) - float(ts) % 3600
        sums.setdefault((hour, machine), []).append(float(value))
    assert {key: pytest.approx(sum(v) / len(v)) for key, v in sums.items()} == {
        (float(ts), machine): float(value) for ts, machine, value in by_hour
    }

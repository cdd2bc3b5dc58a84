"""A dashboard of SQL panels: the Grafana Foundation SDK's builders plus one SQL target type.

The SDK has no builder for PostgreSQL queries, so :class:`SqlTarget` is one (a
``Dataquery`` with ``to_json``/``from_json``, registered with the SDK's runtime so that
dashboards read back from JSON get it too). :class:`Board` keeps, beside the SDK's
dashboard builder, each panel's :class:`Query` — its SQL and the columns it must return —
so the tests run every panel against a database filled by the simulators.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

DATASOURCE_UID = "tonle-timescaledb"
DATASOURCE_NAME = "Tonle (TimescaleDB)"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE = model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

Format = Literal["time_series", "table"]


@dataclass(frozen=True)
class Query:
    """A panel's SQL, the columns it returns, and why it may return no rows (rarely)."""

    sql: str
    columns: tuple[str, ...]
    format: Format = "table"
    may_be_empty: str = ""  # the reason, where an empty result is a correct answer

    def __post_init__(self) -> None:
        if self.format == "time_series" and "time" not in self.columns:
            raise ValueError("a time_series query must return a column named time")


class SqlTarget(cogvariants.Dataquery):
    """A PostgreSQL data source query in code mode (``rawSql``)."""

    def __init__(self, ref_id: str = "A", raw_sql: str = "", fmt: str = "table") -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format = fmt

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it in a dashboard."""
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.raw_sql,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """A target read back from a dashboard's JSON."""
        return cls(str(data.get("refId", "A")), str(data["rawSql"]), str(data.get("format", "")))


class SqlTargetBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """The SDK builder of a :class:`SqlTarget`."""

    def __init__(self, query: Query, ref_id: str = "A") -> None:
        self._internal = SqlTarget(ref_id, query.sql.strip(), query.format)

    def build(self) -> SqlTarget:
        """The target."""
        return self._internal


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=SqlTarget.from_json)
)


@dataclass(frozen=True)
class PanelQuery:
    """One panel's query, as the tests run it."""

    board: str
    panel: str
    query: Query


class Board:
    """A dashboard under construction: the SDK builder and the queries of its panels."""

    def __init__(
        self,
        uid: str,
        title: str,
        description: str,
        variables: Sequence[cogbuilder.Builder[model.VariableModel]] = (),
        time_from: str = "now-24h",
    ) -> None:
        self.uid = uid
        self.queries: list[PanelQuery] = []
        self._next_id = 1
        self._builder = (
            dash.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(["tonle"])
            .timezone("browser")
            .time(time_from, "now")
            .refresh("1m")
            .readonly()
            .tooltip(model.DashboardCursorSync.CROSSHAIR)
        )
        for variable in variables:
            self._builder.with_variable(variable)

    def row(self, title: str) -> Self:
        """Start a row of panels."""
        self._builder.with_row(dash.Row(title).id(self._take_id()))
        return self

    def add(self, panel: Any, query: Query, width: int = 12, height: int = 8) -> Self:
        """Add an SDK panel builder with its one SQL query."""
        title = panel.build().title
        if not title:
            raise ValueError("every panel needs a title")
        if any(q.panel == title for q in self.queries):
            raise ValueError(f"{self.uid}: two panels are titled {title!r}")
        panel.id(self._take_id()).datasource(DATASOURCE).span(width).height(height)
        panel.with_target(SqlTargetBuilder(query))
        self._builder.with_panel(panel)
        self.queries.append(PanelQuery(self.uid, title, query))
        return self

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def to_json(self) -> dict[str, Any]:
        """The dashboard as Grafana's JSON model (plain dicts and lists)."""
        built = self._builder.build()
        data: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
        return data

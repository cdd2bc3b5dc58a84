"""The template variables: site, then the site's lines, then the machines of those lines.

``$site`` is one site (written ``'$site'`` in SQL); ``$line`` and ``$machine`` are
multi-value with "All" (written ``IN ($line)``), so Grafana quotes them as a list.
The edge fleet dashboard lets ``$site`` be several sites (``IN ($site)``).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from dashboards.board import DATASOURCE

SITE_SQL = "SELECT site FROM sites WHERE active ORDER BY site"
LINE_SQL = """
SELECT DISTINCT l.line FROM lines AS l JOIN sites AS s ON s.id = l.site_id
WHERE s.site = '$site' AND l.active ORDER BY 1
""".strip()
MACHINE_SQL = """
SELECT DISTINCT m.machine FROM machines AS m
JOIN lines AS l ON l.id = m.line_id JOIN sites AS s ON s.id = l.site_id
WHERE s.site = '$site' AND l.line IN ($line) AND m.active ORDER BY 1
""".strip()


def _query_variable(name: str, label: str, sql: str) -> dash.QueryVariable:
    return (
        dash.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(sql)
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def site(*, multi: bool = False) -> dash.QueryVariable:
    """``$site``: one site, or several with "All" where ``multi``."""
    variable = _query_variable("site", "Site", SITE_SQL)
    if multi:
        variable.multi(True).include_all(True)
    return variable


def line() -> dash.QueryVariable:
    """``$line``: lines of ``$site``, several or "All"."""
    return _query_variable("line", "Line", LINE_SQL).multi(True).include_all(True)


def machine() -> dash.QueryVariable:
    """``$machine``: machines on ``$line`` of ``$site``, several or "All"."""
    return _query_variable("machine", "Machine", MACHINE_SQL).multi(True).include_all(True)


def site_line_machine() -> list[dash.QueryVariable]:
    """The three cascading variables most dashboards use."""
    return [site(), line(), machine()]


# The SQL of each variable, for the tests: they run it to pick the values panels get.
VARIABLE_SQL = {"site": SITE_SQL, "line": LINE_SQL, "machine": MACHINE_SQL}

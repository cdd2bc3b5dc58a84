"""Panel builders with Tonle's defaults (SDK builders, configured once here)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, piechart, stat, statetimeline, table
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import timeseries as ts_builders
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import piechart as piechart_model

# Machine states as machine_states stores them (0 off, 1 idle, 2 running, 3 fault).
STATE_NAMES = {0: ("off", "#8e8e8e"), 1: ("idle", "#fade2a"), 2: ("running", "#73bf69"),
               3: ("fault", "#f2495c")}  # fmt: skip


def _reduce(calc: str, *, values: bool = False) -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs([calc]).values(values)


def timeseries(
    title: str, description: str, unit: str, *, bars: bool = False, stacked: bool = False
) -> ts_builders.Panel:
    """A time series; ``bars`` for per-interval quantities such as kWh."""
    panel = ts_builders.Panel().title(title).description(description).unit(unit)
    if bars:
        panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
    else:
        panel.line_width(1).fill_opacity(10)
    if stacked:
        panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def stat_panel(title: str, description: str, unit: str, calc: str = "lastNotNull") -> stat.Panel:
    """A single number (or one per column): the ``calc`` of each numeric field."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .reduce_options(_reduce(calc))
        .graph_mode(common.BigValueGraphMode.NONE)
    )


def table_panel(title: str, description: str) -> table.Panel:
    """A table of the query's rows."""
    return table.Panel().title(title).description(description)


def bar_gauge(title: str, description: str, unit: str) -> bargauge.Panel:
    """One bar per row (``values``): a ranking such as kWh by line."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .reduce_options(_reduce("lastNotNull", values=True))
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
    )


def pie(title: str, description: str, unit: str) -> piechart.Panel:
    """Shares of a whole, one slice per row."""
    return (
        piechart.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .reduce_options(_reduce("lastNotNull", values=True))
        .pie_type(piechart_model.PieChartType.DONUT)
    )


def state_timeline(title: str, description: str) -> statetimeline.Panel:
    """Machine states over time, one row per machine, coloured by state."""
    mapping = model.ValueMap(
        options={
            str(state): model.ValueMappingResult(text=name, color=color, index=state)
            for state, (name, color) in STATE_NAMES.items()
        }
    )
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .mappings([mapping])
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(True)
        .fill_opacity(80)
    )

"""The seven Tonle dashboards: what each panel shows, and from which query."""

from __future__ import annotations

from collections.abc import Callable

from dashboards import queries as q
from dashboards import variables
from dashboards.board import Board
from dashboards.panels import bar_gauge, pie, stat_panel, state_timeline, table_panel, timeseries


def overview() -> Board:
    """Factory overview: power now, machine states, alerts, edges."""
    return (
        Board(
            "tonle-overview",
            "Tonle · Factory overview",
            "What the factory is doing now: power by machine, machine states, alerts, edges.",
            variables.site_line_machine(),
            time_from="now-12h",
        )
        .add(
            stat_panel("Edges online", "Edge gateways of the site by last status.", "none"),
            q.EDGES_ONLINE,
            width=6,
            height=4,
        )
        .add(
            stat_panel(
                "Site energy",
                "Energy the site used in the range (main meter, hourly energy intervals).",
                "kwatth",
                "sum",
            ),
            q.SITE_ENERGY,
            width=6,
            height=4,
        )
        .add(
            table_panel(
                "Alerts open or active in the range",
                "Maintenance alerts still open, then those closed within the range; reasons "
                "name the features that moved most.",
            ),
            q.OPEN_ALERTS,
            width=12,
            height=8,
        )
        .add(
            timeseries(
                "Live power",
                "Mean active power per machine from the 1-minute roll-up, in kW.",
                "kwatt",
            ),
            q.LIVE_POWER,
            width=24,
            height=9,
        )
        .add(
            state_timeline(
                "Machine states",
                "Off, idle, running or fault per machine, as reported by the machine or "
                "inferred from its power draw.",
            ),
            q.STATE_TIMELINE,
            width=24,
            height=8,
        )
    )


def energy() -> Board:
    """Energy: where the kWh go, what they cost, and the power quality."""
    return (
        Board(
            "tonle-energy",
            "Tonle · Energy",
            "kWh by machine and line, idle waste, peak demand, cost by source, CO₂, "
            "kWh per unit, outages and sags.",
            variables.site_line_machine(),
            time_from="now-7d",
        )
        .add(
            stat_panel(
                "Cost and CO₂",
                "Energy cost (in the tariff's currency) and CO₂ by local day, all sources.",
                "none",
                "sum",
            ),
            q.COST_AND_CO2,
            width=8,
            height=5,
        )
        .add(
            pie(
                "Energy by source",
                "kWh from the grid, the generator and solar. The schema records all three; "
                "solar appears only at a site with a solar meter (meters.solar) and the "
                "generator only where the main meter reports generator_on.",
                "kwatth",
            ),
            q.ENERGY_BY_SOURCE,
            width=8,
            height=5,
        )
        .add(
            bar_gauge("kWh by line", "Energy per line in the range.", "kwatth"),
            q.KWH_BY_LINE,
            width=8,
            height=5,
        )
        .add(
            timeseries(
                "kWh by machine, hourly",
                "Energy per machine and hour (meter readings where a machine has a meter, "
                "else integrated power).",
                "kwatth",
                bars=True,
                stacked=True,
            ),
            q.KWH_BY_MACHINE,
            width=16,
            height=8,
        )
        .add(
            bar_gauge("kWh by machine", "Energy per machine in the range.", "kwatth"),
            q.KWH_MACHINE_TOTAL,
            width=8,
            height=8,
        )
        .add(
            table_panel(
                "Idle waste",
                "Energy drawn while machines stood idle, by local day, and its cost.",
            ),
            q.IDLE_WASTE,
            width=12,
            height=7,
        )
        .add(
            table_panel(
                "Peak demand",
                "Each month's highest mean demand over the tariff's window, its load factor, "
                "demand charge and largest contributor.",
            ),
            q.PEAK_DEMAND,
            width=12,
            height=7,
        )
        .add(
            timeseries(
                "Cost by source, daily",
                "Energy cost per local day and source, in the tariff's currency.",
                "none",
                bars=True,
                stacked=True,
            ),
            q.COST_BY_SOURCE,
            width=12,
            height=8,
        )
        .add(
            timeseries(
                "kWh per unit",
                "Specific energy consumption per line and local day: kWh over good units.",
                "none",
            ),
            q.KWH_PER_UNIT,
            width=12,
            height=8,
        )
        .add(
            table_panel(
                "Outages and sags",
                "Supply interruptions and voltage sags seen by the main meter, time on the "
                "generator and units lost.",
            ),
            q.POWER_EVENTS,
            width=24,
            height=8,
        )
    )


def maintenance() -> Board:
    """Maintenance: health, anomaly episodes and their reasons, remaining useful life."""
    return (
        Board(
            "tonle-maintenance",
            "Tonle · Maintenance",
            "Health index per machine, anomaly episodes with reasons, remaining useful life, "
            "alerts and the maintenance log.",
            variables.site_line_machine(),
            time_from="now-14d",
        )
        .add(
            stat_panel(
                "Open alerts", "Open maintenance alerts by severity.", "none", "lastNotNull"
            ),
            q.OPEN_ALERT_COUNT,
            width=6,
            height=8,
        )
        .add(
            table_panel(
                "Health and remaining life now",
                "Each machine's latest health (0-100, 100 healthy) and hours to failure with "
                "its 80 % interval; capped means more than the model's horizon.",
            ),
            q.LATEST_HEALTH,
            width=18,
            height=8,
        )
        .add(
            timeseries(
                "Health index",
                "Hourly health per machine: 100 healthy, falling as the condition features "
                "move away from the machine's own learned normal.",
                "none",
            )
            .min(0)
            .max(100),
            q.HEALTH,
            width=12,
            height=8,
        )
        .add(
            timeseries(
                "Anomaly score",
                "Smoothed anomaly score (largest rise in robust z-score across features).",
                "none",
            ),
            q.ANOMALY_SCORE,
            width=12,
            height=8,
        )
        .add(
            table_panel(
                "Anomaly episodes",
                "Alert episodes in the range with the features that moved most and by how "
                "much, and who acknowledged them.",
            ),
            q.ALERT_EPISODES,
            width=24,
            height=8,
        )
        .add(
            timeseries(
                "Remaining useful life",
                "Estimated hours to failure per machine from the fleet-trained RUL model.",
                "h",
            ),
            q.RUL,
            width=12,
            height=8,
        )
        .add(
            table_panel(
                "Maintenance log",
                "Repairs and services: logged through the API, imported, or inferred from "
                "the end of a long fault.",
            ),
            q.MAINTENANCE_LOG,
            width=12,
            height=8,
        )
    )


def oee() -> Board:
    """OEE by line, shift and machine, and the six big losses."""
    return (
        Board(
            "tonle-oee",
            "Tonle · OEE",
            "Availability × performance × quality by line, shift and machine, and the six "
            "big losses.",
            variables.site_line_machine(),
            time_from="now-7d",
        )
        .add(
            stat_panel(
                "Availability, performance, quality, OEE",
                "Over the selected machines and range, each machine weighted by its planned time.",
                "percentunit",
            ),
            q.OEE_FACTORS,
            width=12,
            height=6,
        )
        .add(
            bar_gauge(
                "Six big losses",
                "Hours lost per loss. Availability: breakdowns (fault states) and setup "
                "(changeovers, stops before a run). Performance: small stops and reduced "
                "speed. Quality: startup and production rejects, counted in units and shown "
                "as units × ideal cycle time.",
                "h",
            ),
            q.SIX_BIG_LOSSES,
            width=12,
            height=6,
        )
        .add(
            timeseries("OEE by line and shift", "OEE of each line's shifts.", "percentunit")
            .min(0)
            .max(1),
            q.OEE_TREND,
            width=12,
            height=8,
        )
        .add(
            bar_gauge("OEE by machine", "OEE per machine over the range.", "percentunit"),
            q.OEE_BY_MACHINE,
            width=12,
            height=8,
        )
        .add(
            table_panel(
                "Line OEE per shift", "Availability, performance, quality and OEE per shift."
            ),
            q.OEE_BY_LINE_SHIFT,
            width=24,
            height=9,
        )
    )


def pilot() -> Board:
    """Pilot results: savings against the baseline, their uncertainty, payback."""
    return (
        Board(
            "tonle-pilot",
            "Tonle · Pilot results",
            "IPMVP Option C: the baseline fitted on the pilot's baseline period, projected onto "
            "the reporting period, against what the meter measured.",
            [variables.site()],
            time_from="now-90d",
        )
        .add(
            bar_gauge(
                "Baseline vs actual",
                "Energy of the latest reporting period: the adjusted baseline (what the "
                "factory would have used without the pilot) and the metered actual. Per-hour "
                "projections are not stored, so the comparison is of the period's totals.",
                "kwatth",
            ),
            q.BASELINE_VS_ACTUAL,
            width=8,
            height=7,
        )
        .add(
            stat_panel(
                "Savings with uncertainty",
                "Avoided energy with its 68 % band (± the fractional savings uncertainty), "
                "savings share and avoided cost.",
                "none",
            ),
            q.SAVINGS,
            width=16,
            height=7,
        )
        .add(
            stat_panel(
                "Payback",
                "Simple payback: the pilot's investment over the avoided cost, annualised.",
                "none",
            ),
            q.PAYBACK,
            width=8,
            height=6,
        )
        .add(
            table_panel(
                "Baseline model",
                "ASHRAE Guideline 14 figures of the baseline: R², CV(RMSE) and NMBE in-sample "
                "and on held-out weeks, and the balance points.",
            ),
            q.BASELINE_MODEL,
            width=16,
            height=6,
        )
        .add(
            timeseries("Daily site energy", "Site energy per UTC day.", "kwatth", bars=True),
            q.DAILY_SITE_ENERGY,
            width=24,
            height=8,
        )
    )


def portfolio() -> Board:
    """Every pilot side by side, one row per site."""
    return (
        Board(
            "tonle-portfolio",
            "Tonle · Portfolio",
            "Every pilot side by side: the latest verified savings, or the dashboard's range "
            "where a site has none yet.",
            [],
            time_from="now-30d",
        )
        .add(
            table_panel(
                "Pilots",
                "One row per site: energy, data completeness, savings and uncertainty, "
                "payback, uptime, faults and how many an alert caught (an alert on the "
                "machine in the 14 days before), open alerts.",
            ),
            q.PORTFOLIO,
            width=24,
            height=10,
        )
        .add(
            bar_gauge("Savings by site", "Latest verified savings share.", "percent"),
            q.PORTFOLIO_SAVINGS,
            width=8,
            height=8,
        )
        .add(
            timeseries("Energy by site, daily", "Site energy per UTC day.", "kwatth", bars=True),
            q.PORTFOLIO_ENERGY,
            width=16,
            height=8,
        )
    )


def edges() -> Board:
    """Edge fleet: which gateways are online, message gaps, data completeness."""
    return (
        Board(
            "tonle-edges",
            "Tonle · Edge fleet",
            "Edge gateways: online or offline, last seen, sequence gaps, data completeness.",
            [variables.site(multi=True)],
            time_from="now-7d",
        )
        .add(
            stat_panel("Edges", "Gateways by last status.", "none"),
            q.EDGE_COUNTS,
            width=6,
            height=6,
        )
        .add(
            table_panel(
                "Gateways",
                "Last status (retained status topic), last seen (status or message), "
                "messages stored, replayed from the spool, gaps, spool backlog.",
            ),
            q.EDGES,
            width=18,
            height=6,
        )
        .add(
            timeseries(
                "Messages received",
                "Messages stored per interval and gateway.",
                "none",
                bars=True,
            ),
            q.MESSAGES,
            width=12,
            height=8,
        )
        .add(
            bar_gauge(
                "Data completeness",
                "Share of each machine's expected samples present, hourly, averaged over "
                "the range.",
                "percentunit",
            )
            .min(0)
            .max(1),
            q.COMPLETENESS,
            width=12,
            height=8,
        )
        .add(
            table_panel(
                "Sequence gaps",
                "Messages a gateway numbered that never arrived: the first and last missing "
                "sequence numbers.",
            ),
            q.SEQUENCE_GAPS,
            width=24,
            height=7,
        )
    )


BOARDS: tuple[Callable[[], Board], ...] = (
    overview,
    energy,
    maintenance,
    oee,
    pilot,
    portfolio,
    edges,
)


def all_boards() -> list[Board]:
    """Every dashboard, built."""
    return [make() for make in BOARDS]

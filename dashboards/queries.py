"""Every statement the dashboards run, with the columns each returns.

Written for Grafana's PostgreSQL data source: ``'$site'`` is one site, ``IN ($line)``
and ``IN ($machine)`` take Grafana's quoted lists, and ``$__timeFilter``,
``$__timeGroupAlias``, ``$__timeFrom()`` and ``$__timeTo()`` bound each query to the
dashboard's time range. The same results the API serves (api/queries.py), read the same
way: energy from ``energy_intervals``, states from ``machine_states``, savings from the
latest ``mv_results`` row, edges from ``edge_health``.
"""

from __future__ import annotations

from dashboards.board import Query

_LM = "line IN ($line) AND machine IN ($machine)"
# The site's time zone, for results kept per local day (energy_costs, sec_daily).
_TZ = "WITH z AS (SELECT timezone AS tz FROM sites WHERE site = '$site')"
_LOCAL_DAYS = (
    "day BETWEEN ($__timeFrom()::timestamptz AT TIME ZONE z.tz)::date"
    " AND ($__timeTo()::timestamptz AT TIME ZONE z.tz)::date"
)
# An edge's status is the contract's text (online/offline) or a JSON object with a status.
_ONLINE = (
    "CASE WHEN status LIKE '{%' THEN (status::jsonb ->> 'status') = 'online'"
    " ELSE coalesce(status = 'online', false) END"
)

# ------------------------------------------------------------------ factory overview

# From the 1-minute roll-up while Grafana's interval is under an hour, else from the hourly
# one: PostgreSQL skips the branch whose constant condition is false, so a 30-day view
# reads 720 rows per machine instead of 43,200.
LIVE_POWER = Query(
    f"""
SELECT $__timeGroupAlias(ts, $__interval), machine AS metric, avg(avg) / 1000 AS value
FROM (
    SELECT ts, machine, avg FROM telemetry_1m
    WHERE $__interval_ms < 3600000
      AND $__timeFilter(ts) AND site = '$site' AND {_LM} AND metric = 'active_power'
    UNION ALL
    SELECT ts, machine, avg FROM telemetry_1h
    WHERE $__interval_ms >= 3600000
      AND $__timeFilter(ts) AND site = '$site' AND {_LM} AND metric = 'active_power'
) AS power
GROUP BY 1, 2
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

STATE_TIMELINE = Query(
    f"""
SELECT greatest(start_ts, $__timeFrom()::timestamptz) AS time, machine AS metric,
       state AS value
FROM machine_states
WHERE site = '$site' AND {_LM}
  AND start_ts < $__timeTo() AND end_ts > $__timeFrom()
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

OPEN_ALERTS = Query(
    f"""
SELECT CASE WHEN closed_at IS NULL THEN 'open' ELSE 'closed' END AS status,
       opened_at, closed_at, line, machine, severity, round(min_health::numeric, 1) AS min_health,
       (SELECT string_agg(r ->> 'text', '; ') FROM jsonb_array_elements(reasons) AS r)
           AS reasons,
       acknowledged_by
FROM maintenance_alerts
WHERE site = '$site' AND {_LM}
  AND opened_at <= $__timeTo() AND (closed_at IS NULL OR closed_at >= $__timeFrom())
ORDER BY closed_at IS NULL DESC, opened_at DESC
""",
    ("status", "opened_at", "closed_at", "line", "machine", "severity", "min_health", "reasons",
     "acknowledged_by"),
)  # fmt: skip

EDGES_ONLINE = Query(
    f"""
SELECT count(*) FILTER (WHERE online) AS online, count(*) FILTER (WHERE NOT online) AS offline
FROM (SELECT {_ONLINE} AS online FROM edge_health WHERE site = '$site') AS e
""",
    ("online", "offline"),
)

SITE_ENERGY = Query(
    """
SELECT sum(energy_kwh) AS energy_kwh
FROM energy_intervals
WHERE site = '$site' AND level = 'site' AND grain = '1h' AND $__timeFilter(bucket_start)
""",
    ("energy_kwh",),
)

# ---------------------------------------------------------------------------- energy

KWH_BY_MACHINE = Query(
    f"""
SELECT bucket_start AS time, machine AS metric, energy_kwh AS value
FROM energy_intervals
WHERE site = '$site' AND level = 'machine' AND grain = '1h' AND {_LM}
  AND $__timeFilter(bucket_start)
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

KWH_MACHINE_TOTAL = Query(
    f"""
SELECT machine, sum(energy_kwh) AS energy_kwh
FROM energy_intervals
WHERE site = '$site' AND level = 'machine' AND grain = '1h' AND {_LM}
  AND $__timeFilter(bucket_start)
GROUP BY machine
ORDER BY 2 DESC
""",
    ("machine", "energy_kwh"),
)

KWH_BY_LINE = Query(
    """
SELECT line, sum(energy_kwh) AS energy_kwh
FROM energy_intervals
WHERE site = '$site' AND level = 'line' AND grain = '1h' AND line IN ($line)
  AND $__timeFilter(bucket_start)
GROUP BY line
ORDER BY 2 DESC
""",
    ("line", "energy_kwh"),
)

IDLE_WASTE = Query(
    f"""
SELECT machine, sum(idle_kwh) AS idle_kwh, sum(idle_cost) AS idle_cost, min(currency) AS currency
FROM idle_waste
WHERE site = '$site' AND grain = '1d' AND {_LM} AND $__timeFilter(bucket_start)
GROUP BY machine
ORDER BY 2 DESC
""",
    ("machine", "idle_kwh", "idle_cost", "currency"),
)

PEAK_DEMAND = Query(
    """
SELECT month, peak_start, window_min, peak_kw, average_kw, load_factor, demand_charge, currency,
       contributors -> 0 ->> 'machine' AS largest_contributor
FROM demand_peaks
WHERE site = '$site' AND $__timeFilter(peak_start)
ORDER BY month
""",
    ("month", "peak_start", "window_min", "peak_kw", "average_kw", "load_factor",
     "demand_charge", "currency", "largest_contributor"),
)  # fmt: skip

COST_BY_SOURCE = Query(
    f"""
{_TZ}
SELECT c.day::timestamp AT TIME ZONE z.tz AS time, c.source AS metric, c.cost AS value
FROM energy_costs AS c, z
WHERE c.site = '$site' AND c.{_LOCAL_DAYS}
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

ENERGY_BY_SOURCE = Query(
    f"""
{_TZ}
SELECT c.source, sum(c.energy_kwh) AS energy_kwh
FROM energy_costs AS c, z
WHERE c.site = '$site' AND c.{_LOCAL_DAYS}
GROUP BY c.source
ORDER BY 1
""",
    ("source", "energy_kwh"),
)

COST_AND_CO2 = Query(
    f"""
{_TZ}
SELECT sum(c.cost) AS cost, sum(c.co2_kg) AS co2_kg, min(c.currency) AS currency
FROM energy_costs AS c, z
WHERE c.site = '$site' AND c.{_LOCAL_DAYS}
""",
    ("cost", "co2_kg", "currency"),
)

KWH_PER_UNIT = Query(
    f"""
{_TZ}
SELECT s.day::timestamp AT TIME ZONE z.tz AS time, s.line AS metric, s.kwh_per_unit AS value
FROM sec_daily AS s, z
WHERE s.site = '$site' AND s.line IN ($line) AND s.{_LOCAL_DAYS} AND s.kwh_per_unit IS NOT NULL
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

POWER_EVENTS = Query(
    """
SELECT kind, start_ts, end_ts, extract(epoch FROM end_ts - start_ts)::float8 AS duration_s,
       min_voltage, on_generator_s, units_lost
FROM power_events
WHERE site = '$site' AND $__timeFilter(start_ts)
ORDER BY start_ts DESC
""",
    ("kind", "start_ts", "end_ts", "duration_s", "min_voltage", "on_generator_s", "units_lost"),
)

# ----------------------------------------------------------------------- maintenance

HEALTH = Query(
    f"""
SELECT ts AS time, machine AS metric, health AS value
FROM machine_health
WHERE site = '$site' AND {_LM} AND $__timeFilter(ts)
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

ANOMALY_SCORE = Query(
    f"""
SELECT ts AS time, machine AS metric, score AS value
FROM machine_health
WHERE site = '$site' AND {_LM} AND $__timeFilter(ts)
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

LATEST_HEALTH = Query(
    """
SELECT l.line, m.machine, h.ts AS assessed_at, h.health, h.score,
       r.rul_h, r.low_h, r.high_h, r.capped AS rul_capped
FROM sites AS si
JOIN lines AS l ON l.site_id = si.id
JOIN machines AS m ON m.line_id = l.id
LEFT JOIN LATERAL (
    SELECT ts, health, score FROM machine_health
    WHERE site = si.site AND machine = m.machine AND ts <= $__timeTo() ORDER BY ts DESC LIMIT 1
) AS h ON true
LEFT JOIN LATERAL (
    SELECT rul_h, low_h, high_h, capped FROM rul_estimates
    WHERE site = si.site AND machine = m.machine AND ts <= $__timeTo() ORDER BY ts DESC LIMIT 1
) AS r ON true
WHERE si.site = '$site' AND l.line IN ($line) AND m.machine IN ($machine) AND h.ts IS NOT NULL
ORDER BY h.health, l.line, m.machine
""",
    ("line", "machine", "assessed_at", "health", "score", "rul_h", "low_h", "high_h",
     "rul_capped"),
)  # fmt: skip

ALERT_EPISODES = Query(
    f"""
SELECT opened_at, closed_at, line, machine, severity, round(min_health::numeric, 1) AS min_health,
       peak_at, round(peak_score::numeric, 2) AS peak_score,
       (SELECT string_agg(r ->> 'text', '; ') FROM jsonb_array_elements(reasons) AS r)
           AS reasons,
       acknowledged_at, acknowledged_by, ack_comment
FROM maintenance_alerts
WHERE site = '$site' AND {_LM}
  AND opened_at <= $__timeTo() AND coalesce(closed_at, 'infinity') >= $__timeFrom()
ORDER BY opened_at DESC
""",
    ("opened_at", "closed_at", "line", "machine", "severity", "min_health", "peak_at",
     "peak_score", "reasons", "acknowledged_at", "acknowledged_by", "ack_comment"),
)  # fmt: skip

OPEN_ALERT_COUNT = Query(
    f"""
SELECT count(*) FILTER (WHERE severity = 'critical') AS critical,
       count(*) FILTER (WHERE severity = 'warning') AS warning
FROM maintenance_alerts
WHERE site = '$site' AND {_LM} AND closed_at IS NULL
""",
    ("critical", "warning"),
)

RUL = Query(
    f"""
SELECT ts AS time, machine AS metric, rul_h AS value
FROM rul_estimates
WHERE site = '$site' AND {_LM} AND $__timeFilter(ts)
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

MAINTENANCE_LOG = Query(
    f"""
SELECT at, line, machine, kind, source, note
FROM maintenance_log
WHERE site = '$site' AND {_LM} AND $__timeFilter(at)
ORDER BY at DESC
""",
    ("at", "line", "machine", "kind", "source", "note"),
)

# ------------------------------------------------------------------------------- OEE

OEE_BY_LINE_SHIFT = Query(
    """
SELECT bucket_start, label AS shift, line, machines, availability, performance, quality, oee
FROM oee_lines
WHERE site = '$site' AND line IN ($line) AND $__timeFilter(bucket_start)
ORDER BY bucket_start DESC, line
""",
    ("bucket_start", "shift", "line", "machines", "availability", "performance", "quality",
     "oee"),
)  # fmt: skip

OEE_TREND = Query(
    """
SELECT bucket_start AS time, line || ' ' || label AS metric, oee AS value
FROM oee_lines
WHERE site = '$site' AND line IN ($line) AND $__timeFilter(bucket_start)
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

# Σ over shifts, as oee_lines sums a line's machines (0010_oee_lines.sql).
_OEE_SUMS = f"""
FROM oee_shifts
WHERE site = '$site' AND {_LM} AND $__timeFilter(bucket_start)
"""

OEE_BY_MACHINE = Query(
    f"""
SELECT machine, sum(ideal_cycle_s * good_units) / nullif(sum(planned_s), 0) AS oee
{_OEE_SUMS}
GROUP BY machine
ORDER BY 2
""",
    ("machine", "oee"),
)

OEE_FACTORS = Query(
    f"""
SELECT sum(operating_s) / nullif(sum(planned_s), 0) AS availability,
       sum(ideal_cycle_s * total_units) / nullif(sum(operating_s), 0) AS performance,
       sum(good_units) / nullif(sum(total_units), 0) AS quality,
       sum(ideal_cycle_s * good_units) / nullif(sum(planned_s), 0) AS oee
{_OEE_SUMS}
""",
    ("availability", "performance", "quality", "oee"),
)

# Quality losses are units; at the ideal cycle time each lost unit is lost time too.
SIX_BIG_LOSSES = Query(
    f"""
SELECT loss, hours
FROM (
    SELECT sum(breakdown_s) / 3600 AS breakdowns,
           sum(setup_s) / 3600 AS setups,
           sum(minor_stop_s) / 3600 AS small_stops,
           sum(reduced_speed_s) / 3600 AS reduced_speed,
           sum(startup_reject_units * ideal_cycle_s) / 3600 AS startup_rejects,
           sum(defect_units * ideal_cycle_s) / 3600 AS production_rejects
    {_OEE_SUMS}
) AS s,
LATERAL (VALUES
    (1, 'Breakdowns (availability)', breakdowns),
    (2, 'Setup and adjustments (availability)', setups),
    (3, 'Small stops (performance)', small_stops),
    (4, 'Reduced speed (performance)', reduced_speed),
    (5, 'Startup rejects (quality)', startup_rejects),
    (6, 'Production rejects (quality)', production_rejects)
) AS v (n, loss, hours)
ORDER BY n
""",
    ("loss", "hours"),
)

# ---------------------------------------------------------------------- pilot results

_LATEST_MV = """
WITH mv AS (
    SELECT * FROM mv_results WHERE site = '$site'
    ORDER BY reporting_end DESC, baseline_start DESC LIMIT 1
)"""

BASELINE_VS_ACTUAL = Query(
    f"""
{_LATEST_MV}
SELECT 'Adjusted baseline' AS series, adjusted_baseline_kwh AS energy_kwh FROM mv
UNION ALL
SELECT 'Actual', reporting_kwh FROM mv
""",
    ("series", "energy_kwh"),
)

SAVINGS = Query(
    f"""
{_LATEST_MV}
SELECT avoided_kwh * (1 - fsu_pct / 100) AS avoided_kwh_low, avoided_kwh,
       avoided_kwh * (1 + fsu_pct / 100) AS avoided_kwh_high, savings_pct, fsu_pct,
       avoided_cost, currency
FROM mv
""",
    ("avoided_kwh_low", "avoided_kwh", "avoided_kwh_high", "savings_pct", "fsu_pct",
     "avoided_cost", "currency"),
)  # fmt: skip

PAYBACK = Query(
    f"""
{_LATEST_MV}
SELECT payback_years, investment, annual_avoided_cost, currency FROM mv
""",
    ("payback_years", "investment", "annual_avoided_cost", "currency"),
)

BASELINE_MODEL = Query(
    f"""
{_LATEST_MV}
SELECT baseline_start, baseline_end, reporting_start, reporting_end, baseline_hours,
       reporting_hours, r2, cv_rmse_pct, nmbe_pct, heldout_cv_rmse_pct, heldout_nmbe_pct,
       meets_guideline14, balance_point_c, heating_balance_point_c
FROM mv
""",
    ("baseline_start", "baseline_end", "reporting_start", "reporting_end", "baseline_hours",
     "reporting_hours", "r2", "cv_rmse_pct", "nmbe_pct", "heldout_cv_rmse_pct",
     "heldout_nmbe_pct", "meets_guideline14", "balance_point_c", "heating_balance_point_c"),
)  # fmt: skip

DAILY_SITE_ENERGY = Query(
    """
SELECT date_trunc('day', bucket_start) AS time, 'site' AS metric, sum(energy_kwh) AS value
FROM energy_intervals
WHERE site = '$site' AND level = 'site' AND grain = '1h' AND $__timeFilter(bucket_start)
GROUP BY 1
ORDER BY 1
""",
    ("time", "metric", "value"),
    "time_series",
)

# ------------------------------------------------------------------------- portfolio

# api.queries.portfolio with the dashboard's range in place of the API's default period.
PORTFOLIO = Query(
    """
WITH site_period AS (
    SELECT si.site, si.name, si.sector, si.pilot_investment, mv.savings_pct, mv.fsu_pct,
           mv.avoided_cost, mv.payback_years, mv.currency,
           coalesce(mv.reporting_start, $__timeFrom()::timestamptz) AS period_start,
           coalesce(mv.reporting_end, $__timeTo()::timestamptz) AS period_end,
           CASE WHEN mv.site IS NULL THEN 'dashboard range' ELSE 'pilot' END AS period
    FROM sites AS si
    LEFT JOIN LATERAL (
        SELECT * FROM mv_results WHERE site = si.site
        ORDER BY reporting_end DESC, baseline_start DESC LIMIT 1
    ) AS mv ON true
    WHERE si.active
)
SELECT p.site, p.name, p.sector, p.period, p.period_start, p.period_end,
       coalesce(e.energy_kwh, 0) AS energy_kwh, c.completeness,
       p.savings_pct, p.fsu_pct, p.avoided_cost, p.currency, p.payback_years,
       s.up_s / nullif(s.up_s + s.fault_s, 0) AS uptime,
       f.faults, f.caught AS faults_caught, a.open_alerts
FROM site_period AS p
LEFT JOIN LATERAL (
    SELECT sum(energy_kwh) AS energy_kwh FROM energy_intervals
    WHERE site = p.site AND level = 'site' AND grain = '1h'
      AND bucket_start >= p.period_start AND bucket_start < p.period_end
) AS e ON true
LEFT JOIN LATERAL (
    SELECT avg(completeness) AS completeness FROM energy_intervals
    WHERE site = p.site AND level = 'machine' AND grain = '1h'
      AND bucket_start >= p.period_start AND bucket_start < p.period_end
) AS c ON true
LEFT JOIN LATERAL (
    SELECT
        coalesce(sum(extract(epoch FROM least(end_ts, p.period_end)
                     - greatest(start_ts, p.period_start)))
                 FILTER (WHERE state IN (1, 2)), 0)::float8 AS up_s,
        coalesce(sum(extract(epoch FROM least(end_ts, p.period_end)
                     - greatest(start_ts, p.period_start)))
                 FILTER (WHERE state = 3), 0)::float8 AS fault_s
    FROM machine_states
    WHERE site = p.site AND start_ts < p.period_end AND end_ts > p.period_start
) AS s ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS faults,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM maintenance_alerts AS al
               WHERE al.site = ms.site AND al.line = ms.line
                 AND al.machine = ms.machine AND al.opened_at <= ms.start_ts
                 AND al.opened_at > ms.start_ts - interval '14 days'
           )) AS caught
    FROM machine_states AS ms
    WHERE ms.site = p.site AND ms.state = 3
      AND ms.start_ts >= p.period_start AND ms.start_ts < p.period_end
) AS f ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS open_alerts FROM maintenance_alerts
    WHERE site = p.site AND closed_at IS NULL
) AS a ON true
ORDER BY p.site
""",
    ("site", "name", "sector", "period", "period_start", "period_end", "energy_kwh",
     "completeness", "savings_pct", "fsu_pct", "avoided_cost", "currency", "payback_years",
     "uptime", "faults", "faults_caught", "open_alerts"),
)  # fmt: skip

PORTFOLIO_SAVINGS = Query(
    """
SELECT DISTINCT ON (site) site, savings_pct
FROM mv_results
ORDER BY site, reporting_end DESC, baseline_start DESC
""",
    ("site", "savings_pct"),
)

PORTFOLIO_ENERGY = Query(
    """
SELECT date_trunc('day', bucket_start) AS time, site AS metric, sum(energy_kwh) AS value
FROM energy_intervals
WHERE level = 'site' AND grain = '1h' AND $__timeFilter(bucket_start)
GROUP BY 1, 2
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

# ------------------------------------------------------------------------ edge fleet

EDGE_COUNTS = Query(
    f"""
SELECT count(*) FILTER (WHERE online) AS online, count(*) FILTER (WHERE NOT online) AS offline
FROM (SELECT {_ONLINE} AS online FROM edge_health WHERE site IN ($site)) AS e
""",
    ("online", "offline"),
)

EDGES = Query(
    f"""
SELECT site, edge_id, CASE WHEN {_ONLINE} THEN 'online' ELSE 'offline' END AS state,
       greatest(status_at, last_received_at) AS last_seen, messages, buffered_messages,
       gaps, missing_messages,
       CASE WHEN status LIKE '{{%' THEN (status::jsonb ->> 'pending')::bigint END AS spool_backlog
FROM edge_health
WHERE site IN ($site)
ORDER BY site, edge_id
""",
    ("site", "edge_id", "state", "last_seen", "messages", "buffered_messages", "gaps",
     "missing_messages", "spool_backlog"),
)  # fmt: skip

SEQUENCE_GAPS = Query(
    """
SELECT detected_at, site, edge_id, first_missing, last_missing, missing
FROM edge_seq_gaps
WHERE site IN ($site) AND $__timeFilter(detected_at)
ORDER BY detected_at DESC
""",
    ("detected_at", "site", "edge_id", "first_missing", "last_missing", "missing"),
)

MESSAGES = Query(
    """
SELECT $__timeGroupAlias(received_at, $__interval), site || '/' || edge_id AS metric,
       count(*) AS value
FROM edge_messages
WHERE site IN ($site) AND $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1, 2
""",
    ("time", "metric", "value"),
    "time_series",
)

COMPLETENESS = Query(
    """
SELECT site || '/' || machine AS machine, avg(completeness) AS completeness
FROM energy_intervals
WHERE site IN ($site) AND level = 'machine' AND grain = '1h' AND $__timeFilter(bucket_start)
GROUP BY 1
ORDER BY 2
""",
    ("machine", "completeness"),
)

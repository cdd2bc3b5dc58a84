-- Analytics results. Every row names the run (and through it the model version) that
-- produced it. Tables are keyed by what a row describes, so a later run over the same
-- period replaces the earlier rows instead of adding to them.

CREATE TABLE IF NOT EXISTS analytics_runs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site          text NOT NULL,
    period_start  timestamptz NOT NULL,
    period_end    timestamptz NOT NULL,
    model_version text NOT NULL,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done', 'failed')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    error         text,
    summary       jsonb
);
CREATE INDEX IF NOT EXISTS analytics_runs_site_idx ON analytics_runs (site, period_end DESC);

CREATE TABLE IF NOT EXISTS machine_states (
    site        text NOT NULL,
    line        text NOT NULL,
    machine     text NOT NULL,
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz NOT NULL,
    state       smallint NOT NULL,          -- 0 off, 1 idle, 2 running, 3 fault
    source      text NOT NULL,              -- reported (machine_state) or inferred (power)
    run_id      bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, line, machine, start_ts)
);

CREATE TABLE IF NOT EXISTS energy_intervals (
    site          text NOT NULL,
    level         text NOT NULL CHECK (level IN ('machine', 'line', 'site')),
    line          text NOT NULL DEFAULT '',  -- '' above line level
    machine       text NOT NULL DEFAULT '',  -- '' above machine level
    grain         text NOT NULL,             -- 15m, 1h, 1d, shift
    bucket_start  timestamptz NOT NULL,
    bucket_end    timestamptz NOT NULL,
    label         text NOT NULL DEFAULT '',  -- the shift's name for grain = shift
    energy_kwh    double precision NOT NULL,
    completeness  double precision NOT NULL, -- share of expected samples present, 0..1
    method        text NOT NULL,             -- meter, integrated, sum
    gap_s         double precision NOT NULL DEFAULT 0,
    run_id        bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, level, line, machine, grain, bucket_start)
);

CREATE TABLE IF NOT EXISTS idle_waste (
    site          text NOT NULL,
    line          text NOT NULL,
    machine       text NOT NULL,
    grain         text NOT NULL,             -- shift or 1d
    bucket_start  timestamptz NOT NULL,
    bucket_end    timestamptz NOT NULL,
    label         text NOT NULL DEFAULT '',
    idle_kwh      double precision NOT NULL,
    idle_cost     double precision NOT NULL,
    currency      text NOT NULL,
    run_id        bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, line, machine, grain, bucket_start)
);

CREATE TABLE IF NOT EXISTS demand_peaks (
    site          text NOT NULL,
    month         date NOT NULL,
    window_min    integer NOT NULL,
    peak_start    timestamptz NOT NULL,
    peak_kw       double precision NOT NULL,
    average_kw    double precision NOT NULL,
    load_factor   double precision NOT NULL,
    demand_charge double precision NOT NULL DEFAULT 0,
    currency      text NOT NULL DEFAULT '',
    contributors  jsonb NOT NULL,           -- [{"line":…, "machine":…, "kw":…}], largest first
    run_id        bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, month)
);

CREATE TABLE IF NOT EXISTS power_events (
    site          text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('outage', 'sag')),
    start_ts      timestamptz NOT NULL,
    end_ts        timestamptz NOT NULL,
    min_voltage   double precision NOT NULL,
    on_generator_s double precision NOT NULL DEFAULT 0,
    units_lost    double precision,
    run_id        bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, kind, start_ts)
);

CREATE TABLE IF NOT EXISTS energy_costs (
    site          text NOT NULL,
    day           date NOT NULL,             -- local date of the site
    source        text NOT NULL CHECK (source IN ('grid', 'generator', 'solar')),
    energy_kwh    double precision NOT NULL,
    cost          double precision NOT NULL,
    currency      text NOT NULL,
    co2_kg        double precision NOT NULL,
    run_id        bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, day, source)
);

CREATE TABLE IF NOT EXISTS sec_daily (
    site                  text NOT NULL,
    line                  text NOT NULL,
    day                   date NOT NULL,
    energy_kwh            double precision NOT NULL,
    units_good            double precision NOT NULL,
    kwh_per_unit          double precision,  -- NULL where nothing was produced
    marginal_kwh_per_unit double precision,  -- slope of the line's daily regression
    fixed_kwh_per_day     double precision,  -- its intercept
    run_id                bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, line, day)
);

-- Predictive maintenance: the health models of each machine, the health they assess per
-- hourly window, the alerts raised from that health, and the maintenance that resets a
-- machine's history. Models are never deleted or overwritten: every model fitted,
-- used or refused, is a row with the reason it was made active, retired or rejected.

CREATE TABLE IF NOT EXISTS maintenance_models (
    model_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site          text NOT NULL,
    line          text NOT NULL,
    machine       text NOT NULL,
    kind          text NOT NULL DEFAULT 'health' CHECK (kind IN ('health')),
    model_version text NOT NULL,             -- version of the code that fitted it, e.g. health-1
    status        text NOT NULL CHECK (status IN ('active', 'retired', 'rejected')),
    reason        text NOT NULL,             -- why it was made active, or why it was refused
    segment_start timestamptz NOT NULL,      -- the reset (or first reading) its history starts at
    trained_from  timestamptz NOT NULL,
    trained_to    timestamptz NOT NULL,      -- also the time the fit was decided on
    valid_from    timestamptz,               -- when it started assessing; NULL if refused
    retired_at    timestamptz,               -- when it stopped assessing
    retire_reason text,
    features      text[] NOT NULL DEFAULT '{}',
    metrics       jsonb NOT NULL DEFAULT '{}', -- HealthModel.summary() and training figures
    artifact      bytea,                     -- joblib dump; NULL only for a failed refit
    sha256        text,                      -- of artifact, checked before it is unpickled
    run_id        bigint NOT NULL REFERENCES analytics_runs (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((artifact IS NULL) = (sha256 IS NULL)),
    CHECK (status = 'rejected' OR (artifact IS NOT NULL AND valid_from IS NOT NULL)),
    CHECK (status <> 'rejected' OR (valid_from IS NULL AND retired_at IS NULL)),
    CHECK ((status = 'retired') = (retired_at IS NOT NULL)),
    CHECK (retired_at IS NULL OR retired_at >= valid_from)
);
-- At most one model assesses a machine at a time.
CREATE UNIQUE INDEX IF NOT EXISTS maintenance_models_one_active
    ON maintenance_models (site, machine) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS maintenance_models_machine_idx
    ON maintenance_models (site, machine, segment_start, trained_to);

-- Health per machine and hourly window (ts is the window's end), for windows with a score.
CREATE TABLE IF NOT EXISTS machine_health (
    site      text NOT NULL,
    line      text NOT NULL,
    machine   text NOT NULL,
    ts        timestamptz NOT NULL,
    health    double precision NOT NULL,    -- 0..100, 100 healthy
    score     double precision NOT NULL,    -- smoothed anomaly score (largest rise z-score)
    load      double precision,             -- mean load while running, share of full load
    samples   integer NOT NULL DEFAULT 0,   -- running samples in the window
    z         jsonb NOT NULL,               -- feature → robust z-score (null: not computed)
    change    jsonb NOT NULL,               -- feature → deviation in the feature's unit
    model_id  bigint NOT NULL REFERENCES maintenance_models (model_id),
    run_id    bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, machine, ts)
);

-- Alert episodes, recomputed from machine_health; people acknowledge them.
CREATE TABLE IF NOT EXISTS maintenance_alerts (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site            text NOT NULL,
    line            text NOT NULL,
    machine         text NOT NULL,
    opened_at       timestamptz NOT NULL,   -- end of the window that opened it
    closed_at       timestamptz,            -- NULL while open
    severity        text NOT NULL CHECK (severity IN ('warning', 'critical')),
    min_health      double precision NOT NULL,
    peak_at         timestamptz NOT NULL,
    peak_score      double precision NOT NULL,
    reasons         jsonb NOT NULL,         -- [{"feature", "z", "change", "text"}], largest first
    model_id        bigint NOT NULL REFERENCES maintenance_models (model_id),
    run_id          bigint NOT NULL REFERENCES analytics_runs (id),
    acknowledged_at timestamptz,
    acknowledged_by text,
    ack_comment     text,
    UNIQUE (site, machine, opened_at),
    CHECK (closed_at IS NULL OR closed_at >= opened_at)
);
CREATE INDEX IF NOT EXISTS maintenance_alerts_open_idx
    ON maintenance_alerts (site, machine) WHERE closed_at IS NULL;

-- Maintenance done on a machine; each entry resets its health history. Inferred entries
-- are the ends of long fault intervals in machine_states (a repair).
CREATE TABLE IF NOT EXISTS maintenance_log (
    site       text NOT NULL,
    line       text NOT NULL,
    machine    text NOT NULL,
    at         timestamptz NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('repair', 'service', 'sensor')),
    note       text NOT NULL DEFAULT '',
    source     text NOT NULL CHECK (source IN ('api', 'inferred', 'import')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, machine, at, kind)
);

-- Remaining useful life: one fleet-wide model (kind 'rul' in maintenance_models) and its
-- estimate of the hours to failure of each machine, per hourly window with a health row.

-- A RUL model serves every machine: its site, line and machine are '*' (no id can be,
-- see tonle.contract.ID_PATTERN), so the one-active index of 0008 keeps one RUL model
-- active at a time. segment_start, trained_from and trained_to are the span of the
-- simulated fleets it learned from; valid_from is when it was stored; its training
-- seeds and held-out figures are in metrics.
ALTER TABLE maintenance_models DROP CONSTRAINT IF EXISTS maintenance_models_kind_check;
ALTER TABLE maintenance_models ADD CONSTRAINT maintenance_models_kind_check
    CHECK (kind IN ('health', 'rul'));
ALTER TABLE maintenance_models ADD CONSTRAINT maintenance_models_rul_is_fleet_wide
    CHECK ((kind = 'rul') = (site = '*' AND line = '*' AND machine = '*'));

-- Hours to failure per machine and hourly window (ts is the window's end): the middle
-- estimate and its 80 % interval, all within [0, the model's cap]. capped: the estimate
-- is at the cap (within the model's capped_within_h), to be read as "more than the cap"
-- (14 days): the machine shows no sign of an approaching failure.
CREATE TABLE IF NOT EXISTS rul_estimates (
    site            text NOT NULL,
    line            text NOT NULL,
    machine         text NOT NULL,
    ts              timestamptz NOT NULL,
    rul_h           double precision NOT NULL,
    low_h           double precision NOT NULL,
    high_h          double precision NOT NULL,
    capped          boolean NOT NULL,
    model_id        bigint NOT NULL REFERENCES maintenance_models (model_id),  -- the RUL model
    health_model_id bigint NOT NULL REFERENCES maintenance_models (model_id),  -- of machine_health
    run_id          bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, machine, ts),
    CHECK (0 <= low_h AND low_h <= rul_h AND rul_h <= high_h)
);

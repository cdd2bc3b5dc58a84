-- Measurement and verification of a pilot (IPMVP Option C): the baseline fitted on the
-- baseline period, its Guideline 14 statistics, and the savings in the reporting period.

CREATE TABLE IF NOT EXISTS mv_results (
    site                  text NOT NULL,
    granularity           text NOT NULL,          -- hourly
    baseline_start        timestamptz NOT NULL,
    baseline_end          timestamptz NOT NULL,
    reporting_start       timestamptz NOT NULL,
    reporting_end         timestamptz NOT NULL,
    baseline_hours        integer NOT NULL,
    r2                    double precision NOT NULL,
    cv_rmse_pct           double precision NOT NULL,
    nmbe_pct              double precision NOT NULL,
    heldout_cv_rmse_pct   double precision,
    heldout_nmbe_pct      double precision,
    meets_guideline14     boolean NOT NULL,
    balance_point_c       double precision,       -- NULL: the load does not follow the weather
    reporting_hours       integer NOT NULL,
    adjusted_baseline_kwh double precision,
    reporting_kwh         double precision,
    avoided_kwh           double precision,
    savings_pct           double precision,
    fsu_pct               double precision,       -- fractional savings uncertainty, 68 %
    avoided_cost          double precision,
    annual_avoided_cost   double precision,
    currency              text NOT NULL,
    investment            double precision NOT NULL,
    payback_years         double precision,
    run_id                bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, granularity, baseline_start)
);

-- OEE per machine and shift, with the six big losses (seconds, or units for quality).

CREATE TABLE IF NOT EXISTS oee_shifts (
    site                  text NOT NULL,
    line                  text NOT NULL,
    machine               text NOT NULL,
    bucket_start          timestamptz NOT NULL,
    bucket_end            timestamptz NOT NULL,
    label                 text NOT NULL,
    planned_s             double precision NOT NULL,
    operating_s           double precision NOT NULL,
    total_units           double precision NOT NULL,
    good_units            double precision NOT NULL,
    ideal_cycle_s         double precision NOT NULL,
    availability          double precision NOT NULL,
    performance           double precision NOT NULL,
    quality               double precision NOT NULL,
    oee                   double precision NOT NULL,
    breakdown_s           double precision NOT NULL,
    setup_s               double precision NOT NULL,
    minor_stop_s          double precision NOT NULL,
    reduced_speed_s       double precision NOT NULL,
    startup_reject_units  double precision NOT NULL,
    defect_units          double precision NOT NULL,
    run_id                bigint NOT NULL REFERENCES analytics_runs (id),
    PRIMARY KEY (site, line, machine, bucket_start)
);

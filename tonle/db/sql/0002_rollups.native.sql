-- Roll-ups on plain PostgreSQL: tables kept current by `tonle db maintain` (and by the
-- ingester), which recompute the buckets the ingester marked dirty in `rollup_dirty`.
-- Same names and columns as the TimescaleDB continuous aggregates.

CREATE TABLE IF NOT EXISTS readings_1m (
    bucket      timestamptz NOT NULL,
    sensor_id   integer NOT NULL,
    n           bigint NOT NULL,
    avg         double precision NOT NULL,
    min         double precision NOT NULL,
    max         double precision NOT NULL,
    sum         double precision NOT NULL,
    PRIMARY KEY (sensor_id, bucket)
);

CREATE TABLE IF NOT EXISTS readings_1h (LIKE readings_1m INCLUDING ALL);

-- Hours that received readings since their roll-ups were last computed.
CREATE TABLE IF NOT EXISTS rollup_dirty (
    hour        timestamptz PRIMARY KEY
);

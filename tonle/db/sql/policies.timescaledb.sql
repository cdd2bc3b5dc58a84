-- TimescaleDB policies, re-applied on every `tonle db migrate` with the configured days.
-- %(retention_days)s and %(compress_after_days)s are bound by the migrator.

SELECT remove_continuous_aggregate_policy('readings_1m', if_exists => true);
SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute');

SELECT remove_continuous_aggregate_policy('readings_1h', if_exists => true);
SELECT add_continuous_aggregate_policy('readings_1h',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes');

ALTER TABLE readings SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'sensor_id', timescaledb.compress_orderby = 'ts');
SELECT remove_compression_policy('readings', if_exists => true);
SELECT add_compression_policy('readings', make_interval(days => %(compress_after_days)s));

SELECT remove_retention_policy('readings', if_exists => true);
SELECT add_retention_policy('readings', make_interval(days => %(retention_days)s));

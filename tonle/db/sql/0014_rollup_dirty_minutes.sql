-- Roll-up bookkeeping by the minute (native mode; the table exists in both modes so the
-- ingester's statements are the same, as `rollup_dirty` does since 0002).
--
-- The ingester marks every minute it wrote into `rollup_dirty_minutes`, in the same
-- transaction as the readings, as the start of the UTC minute
-- (`date_bin('1 minute', ts, 'epoch')`). A refresh recomputes the `readings_1m` rows of
-- the dirty minutes from `readings`, then the `readings_1h` rows of the series-hours
-- holding them from `readings_1m`: n = sum(n), sum = sum(sum), min, max, and
-- avg = sum / n, the mean of the hour's readings (not the mean of its minute averages).
--
-- `rollup_dirty` (hour marks, 0002) is kept, and an hour mark still means "every minute
-- of this hour is dirty": marks already there when this runs, and marks written by an
-- ingester of an earlier version during an upgrade, are refreshed without conversion.
CREATE TABLE IF NOT EXISTS rollup_dirty_minutes (
    minute      timestamptz PRIMARY KEY
);

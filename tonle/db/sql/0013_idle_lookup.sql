-- The API adds idle waste to energy rows by site, grain and bucket at every level, which
-- the primary key (site, line, machine, …) cannot serve for a whole site.
CREATE INDEX IF NOT EXISTS idle_waste_bucket_idx ON idle_waste (site, grain, bucket_start);

-- The baseline's heating balance point, beside the cooling one (NULL: no heating load).
ALTER TABLE mv_results ADD COLUMN IF NOT EXISTS heating_balance_point_c double precision;

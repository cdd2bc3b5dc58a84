-- OEE per line and shift from its machines' rows: times and units are summed, so each
-- machine weighs by its planned time and the line's OEE is Σ(ideal cycle × good units)
-- over Σ planned time, the product of the summed availability, performance and quality.

CREATE OR REPLACE VIEW oee_lines AS
SELECT
    site,
    line,
    bucket_start,
    max(bucket_end)                                   AS bucket_end,
    label,
    count(*)                                          AS machines,
    sum(planned_s)                                    AS planned_s,
    sum(operating_s)                                  AS operating_s,
    sum(total_units)                                  AS total_units,
    sum(good_units)                                   AS good_units,
    sum(operating_s) / nullif(sum(planned_s), 0)      AS availability,
    sum(ideal_cycle_s * total_units) / nullif(sum(operating_s), 0) AS performance,
    sum(good_units) / nullif(sum(total_units), 0)     AS quality,
    sum(ideal_cycle_s * good_units) / nullif(sum(planned_s), 0)    AS oee,
    sum(breakdown_s)                                  AS breakdown_s,
    sum(setup_s)                                      AS setup_s,
    sum(minor_stop_s)                                 AS minor_stop_s,
    sum(reduced_speed_s)                              AS reduced_speed_s,
    sum(startup_reject_units)                         AS startup_reject_units,
    sum(defect_units)                                 AS defect_units,
    max(run_id)                                       AS run_id
FROM oee_shifts
GROUP BY site, line, bucket_start, label;

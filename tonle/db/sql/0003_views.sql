-- Roll-ups with names instead of sensor ids, for dashboards and people.

CREATE OR REPLACE VIEW telemetry_1m AS
SELECT r.bucket AS ts, si.site, l.line, m.machine, s.metric, s.unit,
       r.n, r.avg, r.min, r.max, r.sum
FROM readings_1m AS r
JOIN sensors AS s ON s.id = r.sensor_id
JOIN machines AS m ON m.id = s.machine_id
JOIN lines AS l ON l.id = m.line_id
JOIN sites AS si ON si.id = l.site_id;

CREATE OR REPLACE VIEW telemetry_1h AS
SELECT r.bucket AS ts, si.site, l.line, m.machine, s.metric, s.unit,
       r.n, r.avg, r.min, r.max, r.sum
FROM readings_1h AS r
JOIN sensors AS s ON s.id = r.sensor_id
JOIN machines AS m ON m.id = s.machine_id
JOIN lines AS l ON l.id = m.line_id
JOIN sites AS si ON si.id = l.site_id;

-- Registry, readings, dead letters and edges: the tables every part relies on.
-- Works on plain PostgreSQL 15+; TimescaleDB turns `readings` into a hypertable in 0002.

CREATE TABLE IF NOT EXISTS sites (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site        text NOT NULL UNIQUE,
    name        text,
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS lines (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id     integer NOT NULL REFERENCES sites (id),
    line        text NOT NULL,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, line)
);

CREATE TABLE IF NOT EXISTS machines (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    line_id     integer NOT NULL REFERENCES lines (id),
    machine     text NOT NULL,
    name        text,
    kind        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (line_id, machine)
);

CREATE TABLE IF NOT EXISTS sensors (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine_id  integer NOT NULL REFERENCES machines (id),
    metric      text NOT NULL,
    unit        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (machine_id, metric)
);

-- The narrow time-series table. The key (sensor_id, ts) makes a reading delivered
-- twice stored once; it also serves "one sensor over a time range" queries.
CREATE TABLE IF NOT EXISTS readings (
    ts          timestamptz NOT NULL,
    sensor_id   integer NOT NULL,
    value       double precision NOT NULL,
    PRIMARY KEY (sensor_id, ts)
);
CREATE INDEX IF NOT EXISTS readings_ts_idx ON readings (ts DESC);

-- Every message that could not be stored, raw bytes and the reason.
CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    payload     bytea NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at DESC);

-- Edge gateways: last status (from the retained status topic) and message counts.
CREATE TABLE IF NOT EXISTS edges (
    site          text NOT NULL,
    edge_id       text NOT NULL,
    status        text,
    status_at     timestamptz,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, edge_id)
);

-- One row per stored message, so that sequence gaps can be counted exactly even when
-- several ingesters share the load and replayed messages arrive out of order.
CREATE TABLE IF NOT EXISTS edge_messages (
    site          text NOT NULL,
    edge_id       text NOT NULL,
    seq           bigint NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    buffered      boolean NOT NULL,
    readings      integer NOT NULL,
    PRIMARY KEY (site, edge_id, seq)
);

-- Sequence gaps: messages an edge numbered but that never arrived (yet).
CREATE OR REPLACE VIEW edge_seq_gaps AS
SELECT site, edge_id, prev_seq + 1 AS first_missing, seq - 1 AS last_missing,
       seq - prev_seq - 1 AS missing, received_at AS detected_at
FROM (
    SELECT site, edge_id, seq, received_at,
           lag(seq) OVER (PARTITION BY site, edge_id ORDER BY seq) AS prev_seq
    FROM edge_messages
) AS ordered
WHERE seq - prev_seq > 1;

CREATE OR REPLACE VIEW edge_health AS
SELECT e.site, e.edge_id, e.status, e.status_at,
       coalesce(m.messages, 0) AS messages,
       coalesce(m.buffered_messages, 0) AS buffered_messages,
       m.first_seq, m.last_seq, m.last_received_at,
       coalesce(g.gaps, 0) AS gaps,
       coalesce(g.missing, 0) AS missing_messages
FROM edges AS e
LEFT JOIN (
    SELECT site, edge_id, count(*) AS messages, count(*) FILTER (WHERE buffered)
           AS buffered_messages, min(seq) AS first_seq, max(seq) AS last_seq,
           max(received_at) AS last_received_at
    FROM edge_messages GROUP BY site, edge_id
) AS m USING (site, edge_id)
LEFT JOIN (
    SELECT site, edge_id, count(*) AS gaps, sum(missing) AS missing
    FROM edge_seq_gaps GROUP BY site, edge_id
) AS g USING (site, edge_id);

-- The public view dashboards, the API and people query.
CREATE OR REPLACE VIEW telemetry AS
SELECT r.ts, si.site, l.line, m.machine, s.metric, s.unit, r.value
FROM readings AS r
JOIN sensors AS s ON s.id = r.sensor_id
JOIN machines AS m ON m.id = s.machine_id
JOIN lines AS l ON l.id = m.line_id
JOIN sites AS si ON si.id = l.site_id;

-- Registry writes from the API: pilot facts of a site, machine ratings, an `active` flag on
-- every registry row (rows are deactivated, never deleted: readings refer to them), and the
-- MQTT credentials of provisioned edges.
ALTER TABLE sites
    ADD COLUMN IF NOT EXISTS sector           text,
    ADD COLUMN IF NOT EXISTS tariff           text,
    ADD COLUMN IF NOT EXISTS pilot_investment double precision CHECK (pilot_investment >= 0),
    ADD COLUMN IF NOT EXISTS pilot_start      date,
    ADD COLUMN IF NOT EXISTS pilot_end        date,
    ADD COLUMN IF NOT EXISTS active           boolean NOT NULL DEFAULT true;

ALTER TABLE lines ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;

ALTER TABLE machines
    ADD COLUMN IF NOT EXISTS rated_power_w  double precision CHECK (rated_power_w > 0),
    ADD COLUMN IF NOT EXISTS ideal_cycle_s  double precision CHECK (ideal_cycle_s > 0),
    ADD COLUMN IF NOT EXISTS active         boolean NOT NULL DEFAULT true;

ALTER TABLE sensors ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;

-- Only the Mosquitto password hash (PBKDF2-SHA512, `$7$…`) is kept; the password is shown
-- once, when the edge is made. A revoked edge is left out of the broker's files.
CREATE TABLE IF NOT EXISTS edge_credentials (
    site          text NOT NULL REFERENCES sites (site),
    edge_id       text NOT NULL,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL CHECK (password_hash LIKE '$7$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    PRIMARY KEY (site, edge_id)
);

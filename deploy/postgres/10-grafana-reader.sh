#!/bin/sh
# A read-only login for Grafana's data source, made once when the timescaledb volume is
# first initialised (the image runs /docker-entrypoint-initdb.d/* then, and never again).
# Tables and views that `tonle db migrate` creates later, as POSTGRES_USER, become
# readable by it through default privileges. Its name and password come from .env
# (GRAFANA_DB_USER, GRAFANA_DB_PASSWORD).
set -eu

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v reader="$GRAFANA_DB_USER" -v password="$GRAFANA_DB_PASSWORD" \
    -v owner="$POSTGRES_USER" <<'SQL'
CREATE ROLE :"reader" LOGIN PASSWORD :'password';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
ALTER ROLE :"reader" SET statement_timeout = '60s';
GRANT CONNECT ON DATABASE :"DBNAME" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL

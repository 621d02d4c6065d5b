#!/bin/sh
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d):
# one role and one database for the Prefect server, one for the hub's store, so neither
# can read or drop the other's tables. Passwords come from the env file (.env), passed as
# psql variables so that no quoting in them can break the SQL.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v prefect_pw="$PREFECT_DB_PASSWORD" -v hub_pw="$HUB_DB_PASSWORD" <<'SQL'
CREATE ROLE prefect LOGIN PASSWORD :'prefect_pw';
CREATE DATABASE prefect OWNER prefect;
CREATE ROLE cettar LOGIN PASSWORD :'hub_pw';
CREATE DATABASE cettar OWNER cettar;
\connect prefect
-- Prefect's migrations index names with trigrams; created here, as the superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SQL

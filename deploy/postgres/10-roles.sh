#!/bin/sh
# Run by the postgres image on its first start (compose.yaml mounts it into /docker-entrypoint-initdb.d):
# the migration and application roles of deploy/postgres/roles.sql (mounted there as roles.sql.in, so the
# image does not run it bare).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v database="$POSTGRES_DB" \
    -v migrate_role=seeonline_migrate -v migrate_password="$SEEONLINE_MIGRATE_PASSWORD" \
    -v app_role=seeonline_app -v app_password="$SEEONLINE_APP_PASSWORD" \
    -f /docker-entrypoint-initdb.d/roles.sql.in

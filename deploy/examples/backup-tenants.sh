#!/bin/sh
# Nightly logical backup: the shared schema "odr", one dump per tenant schema, and the role
# definitions. Run as a system user whose ~/.pgpass holds the odr_backup password, e.g. from cron:
#   15 2 * * *  /opt/odr/deploy/examples/backup-tenants.sh /var/backups/odr
# Each dump is its own snapshot: for disaster recovery use physical backups or one whole-database dump.
set -eu
DEST_ROOT=${1:?usage: backup-tenants.sh DIRECTORY}
PGHOST=${PGHOST:-10.0.0.10}      # PostgreSQL itself, not pgbouncer
PGPORT=${PGPORT:-5432}
PGDATABASE=${PGDATABASE:-odr}
PGUSER=${PGUSER:-odr_backup}     # member of pg_read_all_data (postgres-setup.sql)
export PGHOST PGPORT PGDATABASE PGUSER

umask 077
dest="$DEST_ROOT/$(date +%F)"
mkdir -p "$dest"

pg_dumpall --database="$PGDATABASE" --roles-only --no-role-passwords > "$dest/roles.sql"
pg_dump --format=custom --schema=odr --file="$dest/odr.dump"
psql --no-psqlrc --tuples-only --no-align \
     --command="SELECT schema_name FROM odr.tenants ORDER BY slug" |
while read -r schema; do
    case "$schema" in t_[a-z]*) ;; *) echo "skipping unexpected schema name: $schema" >&2; continue ;; esac
    pg_dump --format=custom --schema="$schema" --file="$dest/$schema.dump"
done

# Keep 14 days.
find "$DEST_ROOT" -mindepth 1 -maxdepth 1 -type d -mtime +14 -exec rm -rf {} +

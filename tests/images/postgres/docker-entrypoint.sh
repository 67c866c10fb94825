#!/bin/bash
# The part of the official postgres image's docker-entrypoint.sh that the chart relies on
# (CONTRACT.md): on an empty $PGDATA, initdb as $POSTGRES_USER with $POSTGRES_PASSWORD, password
# (scram-sha-256) auth for TCP clients, $POSTGRES_DB created, /docker-entrypoint-initdb.d/*.sql
# and *.sh run against a socket-only temporary server; then exec the command (postgres).
# Not reproduced: running as root (chown then gosu), *.sql.gz/xz/zst, POSTGRES_INITDB_WALDIR,
# the *_FILE variables.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" != 0 ]; then
  : "${PGDATA:=/var/lib/postgresql/data}"
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
      echo "docker-entrypoint.sh: database is uninitialized and POSTGRES_PASSWORD is empty" >&2
      exit 1
    fi
    # The password through a pipe, never in an argument.
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
      ${POSTGRES_INITDB_ARGS:-} >/dev/null
    printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    export PGUSER="$POSTGRES_USER" PGPASSWORD="${POSTGRES_PASSWORD:-}"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start >/dev/null
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != postgres ]; then
      "${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" -q <<<'CREATE DATABASE :"db" ;'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) echo "docker-entrypoint.sh: running $f"; . "$f" ;;
        *.sql) echo "docker-entrypoint.sh: running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -q -f "$f" ;;
        *) if [ -e "$f" ]; then echo "docker-entrypoint.sh: ignoring $f"; fi ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGPASSWORD
    echo "docker-entrypoint.sh: PostgreSQL init process complete; ready for start up."
  fi
fi
exec "$@"

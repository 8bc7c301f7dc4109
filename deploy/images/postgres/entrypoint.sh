#!/bin/sh
# First start: initdb, a login role and a database for Honeyphone, password
# authentication (scram-sha-256) from any address; then run postgres in the
# foreground as PID 1 (SIGINT: fast shutdown).  Later starts: just run it.
set -eu
die() { echo "honeyphone-postgres: $*" >&2; exit 1; }
: "${PGDATA:=/var/lib/postgresql/data}"
user="${POSTGRES_USER:-honeyphone}"
db="${POSTGRES_DB:-honeyphone}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
  fi
  [ -n "${POSTGRES_PASSWORD:-}" ] || die "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE for the first start"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" --username=postgres --pwfile="$pwfile" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 -q --username=postgres --dbname=postgres \
       -v user="$user" -v db="$db" -v pw="$POSTGRES_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'user', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user') \gexec
SQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "honeyphone-postgres: initialized $PGDATA (role $user, database $db)"
fi
exec postgres -D "$PGDATA"

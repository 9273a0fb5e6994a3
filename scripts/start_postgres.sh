#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the store's contract tests and print its
# SQLAlchemy URL. Installs Debian's postgresql package first when it is missing (needs root).
#   url=$(bash scripts/start_postgres.sh)   # then: export DLFORGE_TEST_POSTGRES_URL=$url
#   bash scripts/start_postgres.sh stop
set -euo pipefail
DATA=${DLFORGE_PG_DIR:-/tmp/dlforge-pg}
PORT=${DLFORGE_PG_PORT:-55432}

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }

if [ "${1:-}" = stop ]; then
  [ -d "$DATA" ] && as_postgres "$(bindir)/pg_ctl -D $DATA -m fast stop" >/dev/null 2>&1 || true
  exit 0
fi
if [ -z "$(bindir)" ]; then
  echo "installing postgresql (apt-get)" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BIN=$(bindir)
as_postgres "$BIN/pg_ctl -D $DATA -m fast stop" >/dev/null 2>&1 || true
rm -rf "$DATA" && mkdir -p "$DATA"
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
as_postgres "$BIN/initdb -D $DATA -A trust -U postgres" >/dev/null
as_postgres "$BIN/pg_ctl -D $DATA -l $DATA/server.log -w -o \"-p $PORT -k $DATA -c listen_addresses=127.0.0.1\" start" >/dev/null
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"

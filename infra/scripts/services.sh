#!/usr/bin/env bash
# Start PostgreSQL and Redis where they are not running, and make sure the project's roles exist.
set -euo pipefail
PGHOST=${PGHOST:-127.0.0.1}; PGPORT=${PGPORT:-5432}
if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then
  echo "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    [ -n "$ver" ] || { pg_createcluster 15 main >/dev/null; ver=15; }
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
  pg_isready -h "$PGHOST" -p "$PGPORT" || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
# Trust auth is the machine's default; a fresh cluster may only have peer auth for postgres.
if ! psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  hba=$(su postgres -c "psql -tAc 'show hba_file'" 2>/dev/null || true)
  if [ -n "$hba" ]; then
    sed -i 's/^\(host\s\+all\s\+all\s\+127.0.0.1\/32\s\+\).*/\1trust/' "$hba"
    su postgres -c "psql -tAc 'select pg_reload_conf()'" >/dev/null
  fi
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/lienthong-redis.log
  for _ in $(seq 1 20); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

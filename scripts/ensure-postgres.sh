#!/usr/bin/env bash
# Makes sure the PostgreSQL that tests use is running and has database
# "test" (127.0.0.1:5432, user postgres, trust auth). Installs it from
# Debian's packages only if it is missing altogether. Idempotent.
set -euo pipefail

host=127.0.0.1 port=5432

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "ensure-postgres: installing PostgreSQL from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

if ! pg_isready -q -h "$host" -p "$port"; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "ensure-postgres: starting PostgreSQL $version" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do
    pg_isready -q -h "$host" -p "$port" && break
    sleep 0.5
  done
fi
pg_isready -h "$host" -p "$port" >/dev/null || { echo "ensure-postgres: PostgreSQL is not answering on $host:$port" >&2; exit 1; }

if ! psql -h "$host" -p "$port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1; then
  psql -h "$host" -p "$port" -U postgres -d postgres -qc "CREATE DATABASE test"
fi

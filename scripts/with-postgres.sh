#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL on loopback and TIM_TEST_POSTGRES_DSN pointing at it,
# so that the storage tests run against PostgreSQL as well as SQLite.
# An existing TIM_TEST_POSTGRES_DSN is used as it is. PostgreSQL is installed from Debian when missing.
set -euo pipefail

if [ -n "${TIM_TEST_POSTGRES_DSN:-}" ]; then exec "$@"; fi

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bindir=$(find_bin)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "with-postgres: installing PostgreSQL from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    bindir=$(find_bin)
  fi
fi
if [ -z "$bindir" ]; then
  echo "with-postgres: PostgreSQL is not installed and cannot be installed here; install it (Debian: postgresql)" >&2
  exit 1
fi

dir=$(mktemp -d /tmp/tim-pg.XXXXXX)
port=$(( 20000 + RANDOM % 20000 ))
run_as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  run_as=(runuser -u postgres --)
fi
cleanup() {
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U tim --auth=trust >/dev/null
"${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
"${run_as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U tim tim_test

export TIM_TEST_POSTGRES_DSN="postgres://tim@127.0.0.1:$port/tim_test?sslmode=disable"
echo "with-postgres: PostgreSQL on 127.0.0.1:$port" >&2
"$@"

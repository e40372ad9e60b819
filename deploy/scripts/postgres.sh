#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1 for the tests: installs Debian's package when missing
# (as root), initialises a cluster in a temporary folder and starts it.
#   source deploy/scripts/postgres.sh && pg_test_start   -> exports TEST_POSTGRES_URL
#   pg_test_stop
set -euo pipefail

pg_bin_dir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ] && command -v pg_ctl >/dev/null 2>&1; then d=$(dirname "$(readlink -f "$(command -v pg_ctl)")"); fi
  echo "$d"
}

pg_install() {
  if [ -n "$(pg_bin_dir)" ]; then return 0; fi
  if [ "$(id -u)" != "0" ]; then
    echo "PostgreSQL is not installed; install Debian's 'postgresql' package (or set TEST_POSTGRES_URL)." >&2
    return 1
  fi
  echo "installing PostgreSQL from Debian's packages..."
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

pg_test_start() {
  pg_install || return 1
  local bin port dir runas
  bin=$(pg_bin_dir)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d /tmp/pg-test-XXXXXX)
  runas=()
  if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    runas=(runuser -u postgres --)
  fi
  "${runas[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1
  "${runas[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null
  export PG_TEST_DIR="$dir" PG_TEST_BIN="$bin"
  export TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL for tests at $TEST_POSTGRES_URL"
}

pg_test_stop() {
  if [ -n "${PG_TEST_DIR:-}" ] && [ -d "$PG_TEST_DIR/data" ]; then
    local runas=()
    [ "$(id -u)" = "0" ] && runas=(runuser -u postgres --)
    "${runas[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PG_TEST_DIR"
  fi
}

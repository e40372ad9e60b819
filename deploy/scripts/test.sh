#!/usr/bin/env bash
# Runs every test: installs what is needed, starts a throwaway PostgreSQL on 127.0.0.1 (unless
# TEST_POSTGRES_URL is given), lints, type-checks and runs pytest. Kafka comes from
# KAFKA_BOOTSTRAP_SERVERS, else testcontainers when Docker answers, else the local broker.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/scripts/install.sh
export PATH="$HOME/.local/bin:$PATH"
export UV_PYTHON_DOWNLOADS=never

# shellcheck source=postgres.sh
source deploy/scripts/postgres.sh
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  if pg_test_start; then
    trap pg_test_stop EXIT
  elif [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL is required under CI" >&2; exit 1
  fi
fi

echo "== ruff"; uv run --frozen ruff check .
echo "== mypy"; uv run --frozen mypy shared deploy services tests
echo "== pytest"
set +e
uv run --frozen pytest "$@"
status=$?
set -e
if [ $status -eq 5 ]; then echo "no tests were collected" >&2; fi
exit $status

#!/usr/bin/env bash
# Installs what the platform needs on a fresh machine: uv, the locked Python environment (.venv),
# and checks Java 17+ and Maven for the local Kafka broker (installs them from Debian's packages
# when running as root and they are missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
export UV_PYTHON_DOWNLOADS=never

need_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "Python 3.11+ is required" >&2; return 1
}
PY=$(need_python)

if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv..."
  "$PY" -m pip install --quiet --user uv 2>/dev/null \
    || "$PY" -m pip install --quiet --user --break-system-packages uv 2>/dev/null \
    || "$PY" -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
  hash -r
fi
UV=$(command -v uv || echo "$("$PY" -m site --user-base)/bin/uv")

"$UV" sync --frozen --quiet --python "$PY"

if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Java 17 and Maven from Debian's packages..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  else
    echo "Java 17+ and Maven are needed for the local Kafka broker (or set MENTORING_KAFKA_BOOTSTRAP_SERVERS)." >&2
  fi
fi

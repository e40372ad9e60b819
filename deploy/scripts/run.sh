#!/usr/bin/env bash
# Installs what is needed and runs the whole system on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/scripts/install.sh
export PATH="$HOME/.local/bin:$PATH"
export UV_PYTHON_DOWNLOADS=never
exec uv run --frozen mentoring run "$@"

#!/usr/bin/env bash
# mypy --strict over the project's two packages (src layout: jobs/src/smepulse and
# operator/src/smepulse_operator), found through the installed project like any import.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
exec mypy --config-file pyproject.toml --cache-dir "${MYPY_CACHE_DIR:-$HOME/.cache/smepulse/mypy}" \
  -p smepulse -p smepulse_operator "$@"

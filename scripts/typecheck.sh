#!/usr/bin/env bash
# mypy --strict over the project's packages.
#
# The folders jobs/ and operator/ import as smepulse.jobs and smepulse.operator (setup.py maps
# them; a bare `operator` package would shadow the standard library). mypy derives module
# names from folders, so it checks a throw-away tree of symlinks shaped like the import names.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/smepulse"
ln -s "$repo/jobs" "$tree/smepulse/jobs"
ln -s "$repo/operator" "$tree/smepulse/operator"
cd "$tree"
exec mypy --config-file "$repo/pyproject.toml" --cache-dir "${MYPY_CACHE_DIR:-$HOME/.cache/smepulse/mypy}" \
  --namespace-packages --explicit-package-bases -p smepulse.jobs -p smepulse.operator "$@"

#!/usr/bin/env bash
# Lint the GitHub workflows (.github/workflows) with actionlint, built once from the Go module
# proxy and cached like the other tools:
#   ${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}/actionlint-<version>/bin/actionlint
#
#   bash scripts/actionlint.sh            build if missing, then lint (extra args go to actionlint)
#   bash scripts/actionlint.sh --print-bin   build if missing, print the binary's path
set -euo pipefail
VERSION="${SMEPULSE_ACTIONLINT_VERSION:-1.7.12}"
CACHE="${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}"
dest="$CACHE/actionlint-$VERSION"
bin="$dest/bin/actionlint"
repo=$(cd "$(dirname "$0")/.." && pwd)

if [[ ! -x "$bin" ]]; then
  if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then export PATH="/usr/local/go/bin:$PATH"; fi
  command -v go >/dev/null || { echo "actionlint: Go is needed to build actionlint" >&2; exit 1; }
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.actionlint.lock"
  flock 9
  if [[ ! -x "$bin" ]]; then
    echo "actionlint: building v$VERSION from the Go module proxy" >&2
    tmp=$(mktemp -d "$CACHE/.actionlint.XXXXXX")
    # Installed into a fresh folder, then moved into place in one rename: an interrupted build
    # never counts as cached.
    GOBIN="$tmp/bin" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
      "github.com/rhysd/actionlint/cmd/actionlint@v$VERSION" >&2
    rm -rf "$dest" && mv "$tmp" "$dest"
  fi
fi

if [[ "${1:-}" == "--print-bin" ]]; then echo "$bin"; exit 0; fi
cd "$repo"
# actionlint runs shellcheck (and pyflakes) over workflow scripts when they are on PATH.
exec "$bin" -no-color "$@"

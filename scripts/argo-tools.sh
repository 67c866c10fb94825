#!/usr/bin/env bash
# Build (once) and cache Argo Workflows' workflow-controller from the Go module proxy, plus its
# CRDs, for benchmarks/bench_argo.py (a peer to compare the SME Pulse operator with).
#
# Usage:
#   scripts/argo-tools.sh          build what is missing, then print the tool directory
#   scripts/argo-tools.sh --check  build nothing; exit 1 if the controller is not built yet
#
# Contract:
#   * Cached in ${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}/argo-v<version>/
#     with bin/workflow-controller and crds/*.yaml (upstream's manifests/base/crds/minimal),
#     written atomically (a half-finished build never counts as cached).
#   * `go install ...@v3.6.10` fails here (the proxy refuses the module's version list, which
#     go install reads for deprecations), so a throw-away wrapper module is built instead.
#   * The last line on stdout is the tool directory; progress goes to stderr.
#
# Version override: SMEPULSE_ARGO_VERSION (without the leading "v").
set -euo pipefail

ARGO_VERSION="${SMEPULSE_ARGO_VERSION:-3.6.10}"
CACHE="${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}"
BUILD_JOBS="${SMEPULSE_BUILD_JOBS:-2}"
MODULE=github.com/argoproj/argo-workflows/v3

MODE=build
for arg in "$@"; do
  case "$arg" in
    --check) MODE=check ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "argo-tools: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "argo-tools: $*" >&2; }
die() { echo "argo-tools: ERROR: $*" >&2; exit 1; }

DEST="$CACHE/argo-v$ARGO_VERSION"
if [[ -x "$DEST/bin/workflow-controller" && -d "$DEST/crds" ]]; then
  echo "$DEST"; exit 0
fi
[[ $MODE == check ]] && die "workflow-controller v$ARGO_VERSION is not built yet (run scripts/argo-tools.sh)"

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || die "Go is needed to build workflow-controller (none on PATH or in /usr/local/go)"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock-argo"
flock 9
if [[ -x "$DEST/bin/workflow-controller" && -d "$DEST/crds" ]]; then
  echo "$DEST"; exit 0
fi

WORK="$CACHE/.build/argo-v$ARGO_VERSION"
log "building workflow-controller v$ARGO_VERSION (about 1.5 min with a warm module cache; much longer cold)"
rm -rf "$WORK" && mkdir -p "$WORK"
cd "$WORK"
go mod init local/argobin >/dev/null 2>&1
go get "$MODULE/cmd/workflow-controller@v$ARGO_VERSION" >&2
SRC="$(go list -m -f '{{.Dir}}' "$MODULE")"
[[ -d "$SRC/manifests/base/crds/minimal" ]] || die "no manifests/base/crds/minimal in $SRC"
mkdir -p out/bin out/crds
ldf="-s -w -X $MODULE.version=v$ARGO_VERSION -X $MODULE.gitTreeState=clean"
CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath -ldflags "$ldf" \
  -o out/bin/workflow-controller "$MODULE/cmd/workflow-controller" >&2
cp "$SRC"/manifests/base/crds/minimal/*.yaml out/crds/
rm -f out/crds/kustomization.yaml
chmod -R u+w out

tmp="$DEST.tmp.$$"
rm -rf "$tmp" && mv out "$tmp"
rm -rf "$DEST" && mv "$tmp" "$DEST"
log "workflow-controller -> $DEST/bin/workflow-controller"
echo "$DEST"

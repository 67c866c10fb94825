#!/usr/bin/env bash
# Build (once) and cache a MinIO server for the tests, from the Go module proxy (MinIO's
# community edition is source-only). The first build takes several minutes on 2 cores.
#
#   scripts/minio-tools.sh            build if missing; last stdout line: the minio binary
#   scripts/minio-tools.sh --check    build nothing; exit 1 when missing
#
# Cache: ${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}/minio-<version>/bin/minio,
# written atomically. A `minio` already on PATH is used as it is.
set -euo pipefail
MINIO_VERSION="${SMEPULSE_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
CACHE="${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}"
dest="$CACHE/minio-$MINIO_VERSION/bin/minio"

if command -v minio >/dev/null 2>&1; then command -v minio; exit 0; fi
if [ -x "$dest" ]; then echo "$dest"; exit 0; fi
[ "${1:-}" = "--check" ] && exit 1
echo "minio-tools: building github.com/minio/minio@$MINIO_VERSION (first time only)" >&2
tmp=$(mktemp -d "${CACHE}/.minio.XXXXXX")
GOBIN="$tmp/bin" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
  "github.com/minio/minio@$MINIO_VERSION" >&2
mkdir -p "$(dirname "$(dirname "$dest")")"
rm -rf "$(dirname "$(dirname "$dest")")" && mv "$tmp" "$(dirname "$(dirname "$dest")")"
echo "$dest"

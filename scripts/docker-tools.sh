#!/usr/bin/env bash
# A Docker engine and the local base images the image tests build on (no image registry needed).
#
# Usage:
#   eval "$(bash scripts/docker-tools.sh)"   ensure engine + base image, then export what tests read
#   bash scripts/docker-tools.sh --stop       stop the dockerd this script started (its pid file only)
#   bash scripts/docker-tools.sh --rebuild-base   re-create the base images (e.g. for Debian updates)
#
# What it does (idempotent; state under ${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/docker):
#   1. installs Debian's docker.io and debootstrap when dockerd/debootstrap are missing;
#   2. uses a daemon that already answers ($DOCKER_HOST, /var/run/docker.sock, or ours), else
#      starts dockerd as root with its own data-root, exec-root and socket in the cache, no
#      iptables and no bridge (containers run with --network none or host), logging to
#      dockerd.log there; it never stops a daemon it did not start;
#   3. builds the base images once: smepulse-local/debian:bookworm (debootstrap --variant=minbase
#      from this machine's Debian mirror, imported with `docker import`) and, on top of it,
#      smepulse-local/python3:bookworm (Debian's python3 3.11, python3-venv, ca-certificates),
#      which the Dockerfile's build and runtime stages take as BUILD_BASE/RUNTIME_BASE.
# stdout is only `export NAME=value` lines (progress goes to stderr):
#   DOCKER_HOST, SMEPULSE_DOCKER_BIN (the CLI that matches the daemon),
#   SMEPULSE_BASE_IMAGE (the python3 base), SMEPULSE_DOCKERD_STARTED (1 = this call started it).
set -euo pipefail

CACHE="${SMEPULSE_CACHE:-$HOME/.cache/smepulse}"
DIR="$CACHE/docker"
SOCK="$DIR/docker.sock"
PIDFILE="$DIR/dockerd.pid"
DEBIAN_IMAGE="smepulse-local/debian:bookworm"
BASE_IMAGE="smepulse-local/python3:bookworm"

log() { echo "docker-tools: $*" >&2; }
die() { echo "docker-tools: ERROR: $*" >&2; exit 1; }

MODE=ensure
for arg in "$@"; do
  case "$arg" in
    --stop) MODE=stop ;;
    --rebuild-base) MODE=rebuild ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

mkdir -p "$DIR"

ours_running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

if [[ $MODE == stop ]]; then
  if ours_running; then
    pid=$(cat "$PIDFILE")
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && die "dockerd (pid $pid) did not stop within 20 s"
    # dockerd leaves its default network namespace bind-mounted under the exec-root; left
    # there, the cache folder cannot be removed ("Device or resource busy").
    for ns in "$DIR"/exec/netns/*; do
      if [[ -e $ns ]] && mountpoint -q "$ns"; then umount "$ns"; fi
    done
  else
    log "no dockerd started by this script is running"
  fi
  exit 0
fi

# One setup at a time per cache (parallel test runs may call this together).
exec 9>"$DIR/.lock"
flock 9

# --- 1. packages -----------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
# debootstrap checks bookworm against this keyring (not installed by default outside Debian).
[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || need+=(debian-archive-keyring)
if [[ ${#need[@]} -gt 0 ]]; then
  [[ $(id -u) == 0 ]] || die "installing ${need[*]} needs root (apt-get)"
  log "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >&2
fi
# The CLI from the same package as the daemon (another docker CLI may come first on PATH).
DOCKER_BIN="$(dirname "$(command -v dockerd)")/../bin/docker"
[[ -x "$DOCKER_BIN" ]] || DOCKER_BIN="$(command -v docker)" || die "no docker CLI found"
DOCKER_BIN="$(readlink -f "$DOCKER_BIN")"

# --- 2. the daemon ---------------------------------------------------------------------------
answers() { DOCKER_HOST="$1" "$DOCKER_BIN" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
STARTED=0
HOST=""
for candidate in "${DOCKER_HOST:-}" unix:///var/run/docker.sock "unix://$SOCK"; do
  if [[ -n "$candidate" ]] && answers "$candidate"; then HOST="$candidate"; break; fi
done
if [[ -z "$HOST" ]]; then
  [[ $(id -u) == 0 ]] || die "no Docker daemon answers and starting dockerd needs root"
  ours_running && die "dockerd (pid $(cat "$PIDFILE")) runs but $SOCK does not answer: see $DIR/dockerd.log"
  log "starting dockerd (data-root $DIR/data, log $DIR/dockerd.log)"
  mkdir -p "$DIR/data" "$DIR/exec"
  setsid dockerd \
    --host "unix://$SOCK" --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$PIDFILE" \
    --iptables=false --ip-masq=false --bridge=none --storage-driver=overlay2 \
    >>"$DIR/dockerd.log" 2>&1 </dev/null 9>&- &
  HOST="unix://$SOCK"
  for _ in $(seq 150); do answers "$HOST" && break; sleep 0.2; done
  answers "$HOST" || die "dockerd did not answer on $SOCK within 30 s: see $DIR/dockerd.log"
  STARTED=1
fi
export DOCKER_HOST="$HOST"
log "daemon $("$DOCKER_BIN" version --format '{{.Server.Version}}') at $HOST"

# --- 3. base images --------------------------------------------------------------------------
have_image() { "$DOCKER_BIN" image inspect "$1" >/dev/null 2>&1; }

debian_mirror() { # the first plain Debian archive in this machine's apt sources
  local m
  m=${SMEPULSE_DEBIAN_MIRROR:-}
  if [[ -z "$m" ]]; then
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
      grep -oE '(https?|file)://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ')
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

if [[ $MODE == rebuild ]]; then
  "$DOCKER_BIN" image rm -f "$BASE_IMAGE" "$DEBIAN_IMAGE" >/dev/null 2>&1 || true
fi

if ! have_image "$DEBIAN_IMAGE"; then
  mirror=$(debian_mirror)
  root=$(mktemp -d "$DIR/rootfs.XXXXXX")
  log "debootstrap --variant=minbase bookworm from $mirror (about 30 s)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$DIR/debootstrap.log" 2>&1 ||
    { rm -rf "$root"; die "debootstrap failed: see $DIR/debootstrap.log"; }
  # What an image does not need: downloaded .debs and package lists.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "$DOCKER_BIN" import \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$root"
fi

if ! have_image "$BASE_IMAGE"; then
  log "building $BASE_IMAGE (Debian's python3)"
  ctx=$(mktemp -d "$DIR/ctx.XXXXXX")
  cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
# Like the upstream slim images: no manuals, docs or translations in images.
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \\
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' \\
      > /etc/dpkg/dpkg.cfg.d/excludes \\
 && apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      python3 python3-venv ca-certificates \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
EOF
  DOCKER_BUILDKIT=0 "$DOCKER_BIN" build -q --network host -t "$BASE_IMAGE" "$ctx" >&2 ||
    { rm -rf "$ctx"; die "building $BASE_IMAGE failed"; }
  rm -rf "$ctx"
fi
log "base image $BASE_IMAGE ($("$DOCKER_BIN" run --rm --network none "$BASE_IMAGE" python3 -V))"

echo "export DOCKER_HOST=$HOST"
echo "export SMEPULSE_DOCKER_BIN=$DOCKER_BIN"
echo "export SMEPULSE_BASE_IMAGE=$BASE_IMAGE"
echo "export SMEPULSE_DOCKERD_STARTED=$STARTED"

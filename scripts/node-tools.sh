#!/usr/bin/env bash
# Build (once) and cache the tools of a real Kubernetes node for the tests: kubelet,
# kube-scheduler and kube-proxy (Go module proxy, same wrapper module as scripts/k8s-tools.sh),
# the CNI plugins bridge, host-local, loopback and portmap (github.com/containernetworking/plugins),
# a static `pause` binary (gcc -static) for the pod sandbox image, crictl
# (sigs.k8s.io/cri-tools) with which a node's teardown removes its pod sandboxes, and CoreDNS
# (github.com/coredns/coredns) with only the plugins the cluster's DNS uses.
# containerd, ctr and runc come from Debian (the docker.io package); they are checked, not built.
#
# Usage:
#   scripts/node-tools.sh                  build what is missing, then print the bin directory
#   scripts/node-tools.sh --print-bin-dir  same, quieter: for BIN=$(scripts/node-tools.sh --print-bin-dir)
#   scripts/node-tools.sh --check          build nothing; exit 1 if a tool is missing
#
# Contract:
#   * Cached in ${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}/:
#     kubernetes-node-<k8s>/bin (kubelet, kube-scheduler, kube-proxy), cni-plugins-<cni>/bin,
#     pause-<hash of its source>/bin, cri-tools-<v>/bin, coredns-<v>-<hash of its plugin list>/bin;
#     each moved into place only once fully built.
#   * The last line on stdout is <cache>/node-bin-<k8s>-<cni>/ holding symlinks to all of them
#     plus containerd, ctr and runc; the CNI plugins are also in its cni/ subdirectory
#     (kubelet's --cni-bin-dir). Progress goes to stderr.
#   * Shares scripts/k8s-tools.sh's lock, so the two never build at the same time.
#
# Versions: SMEPULSE_K8S_VERSION (default 1.34.4), SMEPULSE_CNI_VERSION (default 1.9.1),
# SMEPULSE_CRI_TOOLS_VERSION (default 1.34.0), SMEPULSE_COREDNS_VERSION (default 1.14.7).
set -euo pipefail

K8S_VERSION="${SMEPULSE_K8S_VERSION:-1.34.4}"
CNI_VERSION="${SMEPULSE_CNI_VERSION:-1.9.1}"
CACHE="${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}"
BUILD_JOBS="${SMEPULSE_BUILD_JOBS:-2}"

MODE=build
PRINT_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --print-bin-dir) PRINT_ONLY=1 ;;
    --check) MODE=check ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "node-tools: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "node-tools: $*" >&2; }
die() { echo "node-tools: ERROR: $*" >&2; exit 1; }

K8S_MINOR="${K8S_VERSION#*.}"; K8S_MINOR="${K8S_MINOR%%.*}"

need_go() {
  if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null || die "Go >= 1.24 is needed to build the node tools (none on PATH or in /usr/local/go)"
}

new_module() { # dir name
  rm -rf "${1:?}" && mkdir -p "$1"
  (cd "$1" && go mod init "$2" >/dev/null 2>&1)
}

install_atomically() { # built-bin-dir dest
  local tmp="$2.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  mv "$1" "$tmp/bin"
  rm -rf "$2" && mv "$tmp" "$2"
}

# --- kubelet, kube-scheduler, kube-proxy -----------------------------------------------------
K8S_CMDS=(kubelet kube-scheduler kube-proxy)
build_kubernetes_node() {
  local dest="$CACHE/kubernetes-node-$K8S_VERSION" work="$CACHE/.build/kubernetes-node-$K8S_VERSION"
  local staging_v="v0.${K8S_VERSION#*.}" gomod m ldf cmd gets=()
  need_go
  log "building Kubernetes v$K8S_VERSION node binaries (${K8S_CMDS[*]}); cold: several minutes on 2 cores"
  new_module "$work" local/k8snodebin
  cd "$work"
  # Same recipe as scripts/k8s-tools.sh: replace every staging module by its published v0.X.Y.
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@v$K8S_VERSION from the Go module proxy"
  awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod" | while read -r m; do
    echo "replace $m => $m $staging_v" >>go.mod
  done
  if grep -q '^godebug' "$gomod"; then grep '^godebug' "$gomod" >>go.mod; fi
  for cmd in "${K8S_CMDS[@]}"; do gets+=("k8s.io/kubernetes/cmd/$cmd@v$K8S_VERSION"); done
  go get "${gets[@]}" >&2
  ldf="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
  ldf+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$K8S_MINOR"
  ldf+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldf+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  ldf+=" -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  ldf+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$K8S_MINOR"
  rm -rf "${work:?}/bin"
  for cmd in "${K8S_CMDS[@]}"; do
    log "  go build $cmd"
    CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath -ldflags "$ldf" -o "bin/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
  done
  install_atomically "$work/bin" "$dest"
}

# --- CNI plugins -----------------------------------------------------------------------------
CNI_PLUGINS=(main/bridge ipam/host-local main/loopback meta/portmap)
build_cni() {
  local dest="$CACHE/cni-plugins-$CNI_VERSION" work="$CACHE/.build/cni-plugins-$CNI_VERSION" p gets=()
  need_go
  log "building CNI plugins v$CNI_VERSION (${CNI_PLUGINS[*]})"
  new_module "$work" local/cnibin
  cd "$work"
  for p in "${CNI_PLUGINS[@]}"; do gets+=("github.com/containernetworking/plugins/plugins/$p@v$CNI_VERSION"); done
  go get "${gets[@]}" >&2
  rm -rf "${work:?}/bin"
  for p in "${CNI_PLUGINS[@]}"; do
    CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" -o "bin/${p#*/}" \
      "github.com/containernetworking/plugins/plugins/$p" >&2
  done
  install_atomically "$work/bin" "$dest"
}

# --- crictl: removes every pod sandbox (with its CNI teardown) when a node stops ----------
CRI_TOOLS_VERSION="${SMEPULSE_CRI_TOOLS_VERSION:-1.34.0}"
build_crictl() {
  local dest="$CACHE/cri-tools-$CRI_TOOLS_VERSION" work="$CACHE/.build/cri-tools-$CRI_TOOLS_VERSION"
  need_go
  log "building crictl v$CRI_TOOLS_VERSION"
  new_module "$work" local/crictlbin
  cd "$work"
  go get "sigs.k8s.io/cri-tools/cmd/crictl@v$CRI_TOOLS_VERSION" >&2
  rm -rf "${work:?}/bin"
  CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v$CRI_TOOLS_VERSION" \
    -o bin/crictl sigs.k8s.io/cri-tools/cmd/crictl >&2
  install_atomically "$work/bin" "$dest"
}

# --- CoreDNS: Service names for the real node's Pods ---------------------------------------
# Not the default build (all ~60 plugins, with the cloud providers' SDKs): a main package of our
# own that links only the plugins below, the way CoreDNS documents for out-of-tree builds. Their
# order in the chain is CoreDNS's own (dnsserver.Directives), whatever the order here.
COREDNS_VERSION="${SMEPULSE_COREDNS_VERSION:-1.14.7}"
COREDNS_PLUGINS=(bind errors log ready kubernetes template)
COREDNS_HASH="$(printf '%s\n' "${COREDNS_PLUGINS[@]}" | sha256sum | cut -c1-8)"
build_coredns() {
  local dest="$CACHE/coredns-$COREDNS_VERSION-$COREDNS_HASH" p gets=() started=$SECONDS
  local work="$CACHE/.build/coredns-$COREDNS_VERSION-$COREDNS_HASH"
  need_go
  log "building CoreDNS v$COREDNS_VERSION (plugins: ${COREDNS_PLUGINS[*]})"
  new_module "$work" local/corednsbin
  cd "$work"
  {
    echo "package main"
    echo
    echo "import ("
    for p in "${COREDNS_PLUGINS[@]}"; do echo "	_ \"github.com/coredns/coredns/plugin/$p\""; done
    echo "	\"github.com/coredns/coredns/coremain\""
    echo ")"
    echo
    echo "func main() { coremain.Run() }"
  } >main.go
  gets=("github.com/coredns/coredns/coremain@v$COREDNS_VERSION")
  for p in "${COREDNS_PLUGINS[@]}"; do gets+=("github.com/coredns/coredns/plugin/$p@v$COREDNS_VERSION"); done
  go get "${gets[@]}" >&2
  rm -rf "${work:?}/bin"
  CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" -o bin/coredns . >&2
  install_atomically "$work/bin" "$dest"
  log "CoreDNS built in $((SECONDS - started)) s"
}

# --- pause: the pod sandbox's only process ---------------------------------------------------
# Sleeps until SIGINT/SIGTERM and reaps orphans (it is PID 1 of the pod's PID namespace when
# the namespace is shared), like Kubernetes' own pause.c.
PAUSE_C='#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }
static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

int main(void) {
  struct sigaction term = {.sa_handler = on_term}, child = {.sa_handler = on_child};
  child.sa_flags = SA_NOCLDSTOP;
  if (sigaction(SIGINT, &term, NULL) < 0 || sigaction(SIGTERM, &term, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
'
PAUSE_HASH="$(printf '%s' "$PAUSE_C" | sha256sum | cut -c1-12)"
build_pause() {
  local dest="$CACHE/pause-$PAUSE_HASH" work="$CACHE/.build/pause-$PAUSE_HASH"
  command -v gcc >/dev/null || die "gcc is needed to build pause (apt-get install gcc libc6-dev)"
  log "building pause (gcc -static)"
  rm -rf "$work" && mkdir -p "$work/bin"
  printf '%s' "$PAUSE_C" >"$work/pause.c"
  gcc -static -Os -s -Wall -Werror -o "$work/bin/pause" "$work/pause.c" >&2
  install_atomically "$work/bin" "$dest"
}

# --- main ------------------------------------------------------------------------------------
declare -A CACHED=(
  [kubelet]="$CACHE/kubernetes-node-$K8S_VERSION/bin/kubelet"
  [kube-scheduler]="$CACHE/kubernetes-node-$K8S_VERSION/bin/kube-scheduler"
  [kube-proxy]="$CACHE/kubernetes-node-$K8S_VERSION/bin/kube-proxy"
  [bridge]="$CACHE/cni-plugins-$CNI_VERSION/bin/bridge"
  [host-local]="$CACHE/cni-plugins-$CNI_VERSION/bin/host-local"
  [loopback]="$CACHE/cni-plugins-$CNI_VERSION/bin/loopback"
  [portmap]="$CACHE/cni-plugins-$CNI_VERSION/bin/portmap"
  [pause]="$CACHE/pause-$PAUSE_HASH/bin/pause"
  [crictl]="$CACHE/cri-tools-$CRI_TOOLS_VERSION/bin/crictl"
  [coredns]="$CACHE/coredns-$COREDNS_VERSION-$COREDNS_HASH/bin/coredns"
)
declare -A BUILDER=(
  [kubelet]=build_kubernetes_node [kube-scheduler]=build_kubernetes_node
  [kube-proxy]=build_kubernetes_node [bridge]=build_cni [host-local]=build_cni
  [loopback]=build_cni [portmap]=build_cni [pause]=build_pause [crictl]=build_crictl
  [coredns]=build_coredns
)
TOOLS=(kubelet kube-scheduler kube-proxy bridge host-local loopback portmap pause crictl coredns)
CNI_TOOLS=(bridge host-local loopback portmap)
SYSTEM_TOOLS=(containerd ctr runc)

for tool in "${SYSTEM_TOOLS[@]}"; do
  command -v "$tool" >/dev/null ||
    die "$tool not found: install Debian's docker.io package (apt-get install -y docker.io)"
done

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

for tool in "${TOOLS[@]}"; do
  path="${CACHED[$tool]}"
  if [[ ! -x "$path" ]]; then
    [[ $MODE == check ]] && die "$tool is not built yet (run scripts/node-tools.sh)"
    (${BUILDER[$tool]})
    [[ -x "$path" ]] || die "building $tool failed"
  fi
done
for tool in kubelet kube-scheduler kube-proxy; do
  v="$("${CACHED[$tool]}" --version 2>/dev/null || true)"
  [[ "$v" == *"v$K8S_VERSION"* ]] || die "${CACHED[$tool]} reports '$v', not v$K8S_VERSION"
done
v="$("${CACHED[coredns]}" -version 2>/dev/null | head -1 || true)"
[[ "$v" == "CoreDNS-$COREDNS_VERSION" ]] || die "${CACHED[coredns]} reports '$v', not CoreDNS-$COREDNS_VERSION"

BIN_DIR="$CACHE/node-bin-$K8S_VERSION-$CNI_VERSION"
mkdir -p "$BIN_DIR/cni"
for tool in "${TOOLS[@]}"; do ln -sfn "${CACHED[$tool]}" "$BIN_DIR/$tool"; done
for tool in "${CNI_TOOLS[@]}"; do ln -sfn "${CACHED[$tool]}" "$BIN_DIR/cni/$tool"; done
ln -sfn "${CACHED[pause]}" "$BIN_DIR/pause"
for tool in "${SYSTEM_TOOLS[@]}"; do ln -sfn "$(command -v "$tool")" "$BIN_DIR/$tool"; done

if [[ $PRINT_ONLY == 0 ]]; then
  log "containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1{print $3}')"
  log "all node tools ready in $BIN_DIR"
fi
echo "$BIN_DIR"

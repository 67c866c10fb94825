#!/usr/bin/env bash
# Build (once) and cache the Kubernetes test tools: kube-apiserver, kube-controller-manager,
# kubectl, etcd and Helm v3, all from the Go module proxy (no Docker, no GitHub downloads).
#
# Usage:
#   scripts/k8s-tools.sh                  build what is missing, then print the bin directory
#   scripts/k8s-tools.sh --print-bin-dir  same, quieter: for BIN=$(scripts/k8s-tools.sh --print-bin-dir)
#   scripts/k8s-tools.sh --check          build nothing; exit 1 if a tool is missing
#
# Contract:
#   * Each tool is cached in ${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}/<tool>-<version>/bin,
#     keyed by version, written atomically (a half-finished build never counts as cached).
#   * A tool already present and of a suitable version is used instead of building:
#     $KUBEBUILDER_ASSETS (kube-apiserver, etcd, kubectl) first, then $PATH, then the cache.
#     An older kubectl on PATH (Debian's /usr/bin/kubectl) fails the version check and is skipped.
#   * The last line on stdout is a directory holding symlinks to all five tools
#     (<cache>/bin-<k8s>-<etcd>-<helm>/, or <cache>/bin-custom-<hash>/ when some come from
#     KUBEBUILDER_ASSETS or PATH); progress goes to stderr.
#   * Idempotent: a second run with a warm cache takes seconds.
#
# Versions can be overridden with SMEPULSE_K8S_VERSION, SMEPULSE_ETCD_VERSION and
# SMEPULSE_HELM_VERSION (without the leading "v").
set -euo pipefail

K8S_VERSION="${SMEPULSE_K8S_VERSION:-1.34.4}"
ETCD_VERSION="${SMEPULSE_ETCD_VERSION:-3.6.8}"
HELM_VERSION="${SMEPULSE_HELM_VERSION:-3.19.5}"
CACHE="${SMEPULSE_TOOLS_CACHE:-${SMEPULSE_CACHE:-$HOME/.cache/smepulse}/tools}"
BUILD_JOBS="${SMEPULSE_BUILD_JOBS:-2}"

MODE=build
PRINT_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --print-bin-dir) PRINT_ONLY=1 ;;
    --check) MODE=check ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "k8s-tools: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "k8s-tools: $*" >&2; }
die() { echo "k8s-tools: ERROR: $*" >&2; exit 1; }

K8S_MINOR="${K8S_VERSION#*.}"; K8S_MINOR="${K8S_MINOR%%.*}"
ETCD_MINOR="${ETCD_VERSION#*.}"; ETCD_MINOR="${ETCD_MINOR%%.*}"

# --- version probes: print "major.minor.patch" of a binary, or nothing ----------------------
probe_version() { # tool path
  local out=""
  case "$1" in
    kube-apiserver | kube-controller-manager) out="$("$2" --version 2>/dev/null || true)" ;;
    kubectl) out="$("$2" version --client 2>/dev/null || true)" ;;
    etcd) out="$("$2" --version 2>/dev/null | head -n1 || true)" ;;
    helm) out="$("$2" version --short 2>/dev/null || true)" ;;
  esac
  grep -oE '[0-9]+\.[0-9]+\.[0-9]+' <<<"$out" | head -n1 || true
}

# Suitable = same major, minor at least the wanted one (Kubernetes >= 1.34, etcd >= 3.6,
# Helm 3.x). Newer Kubernetes/etcd from a user's KUBEBUILDER_ASSETS is fine.
suitable() { # tool path
  local v major minor
  [[ -x "$2" ]] || return 1
  v="$(probe_version "$1" "$2")"
  [[ -n "$v" ]] || return 1
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  case "$1" in
    kube-apiserver | kube-controller-manager | kubectl) [[ $major == 1 && $minor -ge $K8S_MINOR ]] ;;
    etcd) [[ $major == 3 && $minor -ge $ETCD_MINOR ]] ;;
    helm) [[ $major == 3 ]] ;;
  esac
}

# Where an existing binary for a tool is looked for, before the cache.
find_existing() { # tool -> path or nothing
  local tool="$1" p
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$tool" ]] &&
    suitable "$tool" "$KUBEBUILDER_ASSETS/$tool"; then
    echo "$KUBEBUILDER_ASSETS/$tool"; return
  fi
  if p="$(command -v "$tool" 2>/dev/null)" && suitable "$tool" "$p"; then
    echo "$p"; return
  fi
}

need_go() {
  if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null || die "Go >= 1.24 is needed to build the tools (none on PATH or in /usr/local/go)"
}

# Write a throw-away wrapper module in $1 and echo nothing; fails loudly.
new_module() { # dir name
  rm -rf "${1:?}" && mkdir -p "$1"
  (cd "$1" && go mod init "$2" >/dev/null 2>&1)
}

# --- Kubernetes: kube-apiserver, kube-controller-manager, kubectl ----------------------------
build_kubernetes() { # -> builds into $CACHE/kubernetes-$K8S_VERSION/bin
  local dest="$CACHE/kubernetes-$K8S_VERSION" work="$CACHE/.build/kubernetes-$K8S_VERSION"
  local staging_v="v0.${K8S_VERSION#*.}" gomod m ldf
  need_go
  log "building Kubernetes v$K8S_VERSION (kube-apiserver, kube-controller-manager, kubectl); first time takes 15-30 min on 2 cores"
  new_module "$work" local/k8sbin
  cd "$work"
  # k8s.io/kubernetes requires its staging modules at v0.0.0, which no proxy serves: replace
  # each with its published v0.<minor>.<patch>. The list comes from k8s.io/kubernetes's own
  # go.mod (its "=> ./staging/..." lines), so new staging modules (1.36+) are picked up.
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  [[ -f "$gomod" ]] || die "could not download k8s.io/kubernetes@v$K8S_VERSION from the Go module proxy"
  awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod" | while read -r m; do
    echo "replace $m => $m $staging_v" >>go.mod
  done
  # Keep upstream's runtime behaviour (it pins GODEBUG defaults in its go.mod).
  if grep -q '^godebug' "$gomod"; then grep '^godebug' "$gomod" >>go.mod; fi
  # `go get` of the module alone leaves go.sum without the commands' package dependencies
  # ("missing go.sum entry"): get the three command packages themselves.
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" >&2
  # Without these /version says v0.0.0-master and Helm's kubeVersion checks fail.
  ldf="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION"
  ldf+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$K8S_MINOR"
  ldf+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldf+=" -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
  ldf+=" -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  ldf+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$K8S_MINOR"
  rm -rf "${work:?}/bin"
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    log "  go build $cmd"
    CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath -ldflags "$ldf" -o "bin/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
  done
  install_atomically "$work/bin" "$dest"
}

# --- etcd ------------------------------------------------------------------------------------
build_etcd() {
  local dest="$CACHE/etcd-$ETCD_VERSION" work="$CACHE/.build/etcd-$ETCD_VERSION"
  need_go
  log "building etcd v$ETCD_VERSION"
  new_module "$work" local/etcdbin
  cd "$work"
  # `go install` refuses etcd (its go.mod has replace lines); as a dependency those are ignored.
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
  rm -rf "${work:?}/bin"
  CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" -o bin/etcd go.etcd.io/etcd/server/v3 >&2
  install_atomically "$work/bin" "$dest"
}

# --- Helm v3 ---------------------------------------------------------------------------------
build_helm() {
  local dest="$CACHE/helm-$HELM_VERSION" work="$CACHE/.build/helm-$HELM_VERSION" ldf
  need_go
  log "building Helm v$HELM_VERSION"
  new_module "$work" local/helmbin
  cd "$work"
  go get "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2
  # version.version makes `helm version` honest; the k8sVersion pair is the default
  # Capabilities.KubeVersion for `helm template` without --kube-version.
  ldf="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  ldf+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldf+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
  ldf+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$K8S_MINOR"
  rm -rf "${work:?}/bin"
  CGO_ENABLED=0 go build -p "$BUILD_JOBS" -trimpath -ldflags "$ldf" -o bin/helm helm.sh/helm/v3/cmd/helm >&2
  install_atomically "$work/bin" "$dest"
}

# Move a finished bin/ into the cache in one rename, so an interrupted build never looks cached.
install_atomically() { # built-bin-dir dest
  local tmp="$2.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  mv "$1" "$tmp/bin"
  rm -rf "$2" && mv "$tmp" "$2"
}

# --- main ------------------------------------------------------------------------------------
declare -A CACHED=(
  [kube-apiserver]="$CACHE/kubernetes-$K8S_VERSION/bin/kube-apiserver"
  [kube-controller-manager]="$CACHE/kubernetes-$K8S_VERSION/bin/kube-controller-manager"
  [kubectl]="$CACHE/kubernetes-$K8S_VERSION/bin/kubectl"
  [etcd]="$CACHE/etcd-$ETCD_VERSION/bin/etcd"
  [helm]="$CACHE/helm-$HELM_VERSION/bin/helm"
)
declare -A BUILDER=(
  [kube-apiserver]=build_kubernetes [kube-controller-manager]=build_kubernetes
  [kubectl]=build_kubernetes [etcd]=build_etcd [helm]=build_helm
)
TOOLS=(etcd kube-apiserver kube-controller-manager kubectl helm)

mkdir -p "$CACHE"
# One build at a time per cache (parallel CI jobs or pytest workers may call this together).
exec 9>"$CACHE/.lock"
flock 9

declare -A FOUND=()
for tool in "${TOOLS[@]}"; do
  path="$(find_existing "$tool")"
  if [[ -z "$path" && -x "${CACHED[$tool]}" ]]; then path="${CACHED[$tool]}"; fi
  if [[ -z "$path" ]]; then
    [[ $MODE == check ]] && die "$tool is not built yet (run scripts/k8s-tools.sh)"
    (${BUILDER[$tool]})
    path="${CACHED[$tool]}"
    [[ -x "$path" ]] || die "building $tool failed"
  fi
  suitable "$tool" "$path" || die "$path does not report a suitable version ($(probe_version "$tool" "$path"))"
  FOUND[$tool]="$path"
  log "$tool $(probe_version "$tool" "$path") -> $path"
done

# Named by versions when everything comes from the cache; tools found elsewhere
# (KUBEBUILDER_ASSETS, PATH) get a directory named after their paths, so runs never mix.
BIN_DIR="$CACHE/bin-$K8S_VERSION-$ETCD_VERSION-$HELM_VERSION"
for tool in "${TOOLS[@]}"; do
  if [[ "${FOUND[$tool]}" != "${CACHED[$tool]}" ]]; then
    BIN_DIR="$CACHE/bin-custom-$(printf '%s\n' "${FOUND[@]}" | sha256sum | cut -c1-12)"
    break
  fi
done
mkdir -p "$BIN_DIR"
for tool in "${TOOLS[@]}"; do
  ln -sfn "${FOUND[$tool]}" "$BIN_DIR/$tool"
done

if [[ $PRINT_ONLY == 0 ]]; then
  log "all tools ready; export SMEPULSE_KUBE_BIN_DIR=$BIN_DIR"
fi
echo "$BIN_DIR"

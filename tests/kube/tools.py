"""Find the Kubernetes tool binaries built by ``scripts/k8s-tools.sh``.

Lookup order: ``$SMEPULSE_KUBE_BIN_DIR`` (or ``$SMEPULSE_KUBE_BIN``), a directory holding
all five tools; then the script itself in ``--check`` mode, which looks in
``$KUBEBUILDER_ASSETS``, on ``PATH`` (with a version check) and in the version-keyed cache,
and builds nothing. Building is slow (tens of
minutes on two cores), so it happens only when asked for: ``build=True`` here, or
``SMEPULSE_KUBE_BUILD=1``, or running the script by hand / from ``.ci/run``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_SCRIPT = REPO_ROOT / "scripts" / "k8s-tools.sh"
REQUIRED_TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")


class ToolsUnavailable(RuntimeError):
    """The control-plane binaries are not there (and were not built)."""


def _check_dir(bin_dir: Path) -> Path:
    missing = [t for t in REQUIRED_TOOLS if not os.access(bin_dir / t, os.X_OK)]
    if missing:
        raise ToolsUnavailable(f"{bin_dir} lacks {', '.join(missing)}")
    return bin_dir


def find_bin_dir(*, build: bool | None = None) -> Path:
    """Return a directory with etcd, kube-apiserver, kube-controller-manager, kubectl, helm.

    Raises :class:`ToolsUnavailable` with the reason and the command that fixes it.
    """
    # SMEPULSE_KUBE_BIN is the name scripts/test.sh exports; both mean the same.
    explicit = os.environ.get("SMEPULSE_KUBE_BIN_DIR") or os.environ.get("SMEPULSE_KUBE_BIN")
    if explicit:
        return _check_dir(Path(explicit))
    if build is None:
        build = os.environ.get("SMEPULSE_KUBE_BUILD") == "1"
    if not TOOLS_SCRIPT.exists():
        raise ToolsUnavailable(f"{TOOLS_SCRIPT} is missing")
    args = ["bash", str(TOOLS_SCRIPT), "--print-bin-dir"] + ([] if build else ["--check"])
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ToolsUnavailable(
            f"Kubernetes test binaries not available ({tail or 'no output'}); "
            f"build them once with `bash scripts/k8s-tools.sh` (~20-30 min on 2 cores)"
        )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise ToolsUnavailable(f"{TOOLS_SCRIPT} printed no bin directory")
    return _check_dir(Path(lines[-1]))

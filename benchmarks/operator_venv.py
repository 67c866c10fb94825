"""The operator as its image runs it, for the benchmarks: a virtualenv with exactly the locked
``operator`` dependency group (``uv sync --only-group operator``, as the Dockerfile does: no
``kubernetes`` package, no dbt or ML libraries) and the project's code from this checkout.

Measuring the operator from the project's own virtualenv would count what the image does not
have: kopf imports the ``kubernetes`` package whenever it is installed (~65 MiB).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UV = Path(os.environ.get("SMEPULSE_UV") or Path.home() / ".cache/smepulse/uv-0.13.9/bin/uv")
CACHE = Path(os.environ.get("SMEPULSE_CACHE") or Path.home() / ".cache/smepulse")


def operator_venv() -> Path:
    """The virtualenv, made once per uv.lock under the cache."""
    lock = hashlib.sha256((REPO / "uv.lock").read_bytes()).hexdigest()[:12]
    venv = CACHE / "bench" / f"operator-{lock}"
    done = venv / ".installed"  # written last: a half-made venv is made again
    if done.exists():
        return venv
    if not UV.exists():
        sys.exit(f"uv not found at {UV} (set SMEPULSE_UV): needed to create {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    print(f"creating the operator image's virtualenv {venv} ...", flush=True)
    env = {
        **os.environ,
        "UV_CACHE_DIR": str(CACHE / "uv-cache"),
        "UV_PROJECT_ENVIRONMENT": str(venv),
    }
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([str(UV), "venv", "-q", "--python", base, str(venv)], env=env, check=True)
    subprocess.run(
        [str(UV), "sync", "-q", "--frozen", "--only-group", "operator", "--no-install-project"],
        env=env,
        cwd=REPO,
        check=True,
    )
    done.write_text(lock + "\n")
    return venv


def operator_command() -> list[str]:
    """``smepulse operator`` from that virtualenv (add ``-n NAMESPACE``)."""
    python = operator_venv() / "bin" / "python"
    return [str(python), "-c", "from smepulse.cli import main; main()", "operator"]


def operator_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment, the virtualenv first on PATH, the checkout's code importable."""
    venv = operator_venv()
    return {
        **os.environ,
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "VIRTUAL_ENV": str(venv),
        "PYTHONPATH": f"{REPO / 'jobs' / 'src'}:{REPO / 'operator' / 'src'}",
        **extra,
    }

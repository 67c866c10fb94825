"""The benchmarks' own virtualenvs (never the project's), made once under the cache.

The operator as its image runs it: a virtualenv with exactly the locked ``operator`` dependency
group (``uv sync --only-group operator``, as the Dockerfile does: no
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
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UV = Path(os.environ.get("SMEPULSE_UV") or Path.home() / ".cache/smepulse/uv-0.13.9/bin/uv")
CACHE = Path(os.environ.get("SMEPULSE_CACHE") or Path.home() / ".cache/smepulse")


def cached_venv(name: str, what: str, install: Callable[[Path, dict[str, str]], None]) -> Path:
    """A benchmark's own virtualenv under ``$SMEPULSE_CACHE/bench/<name>``, never the project's,
    made once: ``install(venv, env)`` fills it (``env`` has uv's cache), and a marker written
    last makes a half-made one be made again."""
    venv = CACHE / "bench" / name
    done = venv / ".installed"
    if done.exists():
        return venv
    if not UV.exists():
        sys.exit(f"uv not found at {UV} (set SMEPULSE_UV): needed to create {venv}")
    shutil.rmtree(venv, ignore_errors=True)
    print(f"installing {what} into {venv} ...", flush=True)
    env = {**os.environ, "UV_CACHE_DIR": str(CACHE / "uv-cache")}
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([str(UV), "venv", "-q", "--python", base, str(venv)], env=env, check=True)
    install(venv, env)
    done.write_text(what + "\n")
    return venv


def operator_venv() -> Path:
    """The operator image's dependencies, made once per uv.lock."""

    def install(venv: Path, env: dict[str, str]) -> None:
        subprocess.run(
            [str(UV), "sync", "-q", "--frozen", "--only-group", "operator", "--no-install-project"],
            env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
            cwd=REPO,
            check=True,
        )

    lock = hashlib.sha256((REPO / "uv.lock").read_bytes()).hexdigest()[:12]
    return cached_venv(f"operator-{lock}", "the operator group of uv.lock", install)


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

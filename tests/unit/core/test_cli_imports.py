"""Start-up budget of the CLI: ``smepulse --help``, the local runner and a non-dbt stage
such as verify-infra load no dbt, data-frame or ML library (each costs 0.3-1.5 s to import,
paid by every stage process and every command)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

#: Heavy top-level packages that only some stages need.
HEAVY = ("dbt", "pandas", "pyarrow", "numpy", "mlflow", "sklearn", "prophet", "duckdb", "boto3")


def loaded_after(code: str) -> list[str]:
    """Top-level packages a fresh interpreter has imported after ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return sorted({m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])})


def test_help_runner_and_verify_infra_import_nothing_heavy() -> None:
    loaded = loaded_after(
        "from smepulse.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "import smepulse.runner, smepulse.runner.dbt_worker\n"
        "from smepulse.stages import resolve\n"
        "resolve('verify-infra'); resolve('notify')\n"
    )
    assert "smepulse" in loaded and "typer" in loaded
    assert [m for m in HEAVY if m in loaded] == []
    # The cluster commands (submit, watch, logs, ...) import the Kubernetes client when run.
    assert "kubernetes" not in loaded

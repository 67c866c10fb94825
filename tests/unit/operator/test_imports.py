"""The operator image has no dbt or ML libraries: the operator's modules, and the catalog they
plan from, must load without importing them (nor the dbt runner or the ML stages)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

#: Top-level packages only the stages image has, and smepulse modules that pull them in.
STAGE_ONLY = ("dbt", "duckdb", "sklearn", "prophet", "statsforecast", "mlflow", "matplotlib")
STAGE_ONLY_MODULES = ("smepulse.dbt_runner", "smepulse.dbt_results", "smepulse.ml.")


def test_operator_and_catalog_import_no_dbt_or_ml() -> None:
    # A fresh interpreter: this test process has imported everything already.
    code = (
        "import json, sys\n"
        "import smepulse_operator.handlers, smepulse_operator.submit, smepulse_operator.runtime\n"
        "import smepulse_operator.follow, smepulse_operator.control\n"
        "from smepulse.catalog import load_catalog\n"
        "from smepulse.stages import registry\n"
        "registry(load_catalog())\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "smepulse.catalog" in loaded and "smepulse_operator.handlers" in loaded
    offending = [
        m
        for m in loaded
        if m.split(".")[0] in STAGE_ONLY
        or any(m == p or (p.endswith(".") and m.startswith(p)) for p in STAGE_ONLY_MODULES)
    ]
    assert offending == []


def test_operator_runs_without_the_kubernetes_package() -> None:
    """The operator image installs the ``operator`` dependency group, which has no
    ``kubernetes`` package (kopf imports it whenever present: ~65 MiB). Everything the operator
    process and ``smepulse submit``/``cancel``/``retry`` load must work without it."""
    code = (
        "import sys\n"
        "sys.modules['kubernetes'] = None  # as if not installed: importing it raises\n"
        "import smepulse.cli, smepulse_operator.handlers, smepulse_operator.submit\n"
        "import smepulse_operator.control, smepulse_operator.runtime\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

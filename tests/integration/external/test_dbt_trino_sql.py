"""The external models compile for the trino target and their SQL parses as Trino SQL.

No Trino server is needed: ``dbt compile`` renders the models (dispatch picks the ``trino__``
macros, e.g. listagg) and sqlglot parses the result with its Trino dialect.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot

from smepulse.settings import Settings

pytestmark = pytest.mark.integration

MODELS = {
    "stg_external__worldbank_indicators",
    "stg_external__provinces",
    "stg_external__wards",
    "stg_external__province_legacy_map",
    "int_province_codes_resolved",
    "dim_province",
    "fct_macro_indicators_yearly",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("external_trino")
    settings = Settings(home=tmp / "home", warehouse="trino")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SMEPULSE_")
    } | settings.dbt_env()
    project = str(settings.dbt_project_dir)
    args = ["compile", "--select", "tag:external", "--exclude", "resource_type:test"]
    args += ["--project-dir", project, "--profiles-dir", project, "--target", "trino"]
    args += ["--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs")]
    args += ["--no-populate-cache", "--no-send-anonymous-usage-stats"]
    cmd = [sys.executable, "-c", "from dbt.cli.main import cli; cli()", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"dbt compile failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    )
    root = tmp / "target" / "compiled" / "smepulse" / "models"
    return {
        path.stem: path.read_text() for path in Path(root).rglob("*.sql") if path.stem in MODELS
    }


def test_every_external_model_compiles_for_trino(compiled: dict[str, str]) -> None:
    assert set(compiled) == MODELS


@pytest.mark.parametrize("model", sorted(MODELS))
def test_compiled_sql_parses_as_trino(compiled: dict[str, str], model: str) -> None:
    sql = compiled[model]
    statements = sqlglot.parse(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    assert len([s for s in statements if s is not None]) == 1
    # The trino__ variants were picked (DuckDB's string_agg would not run on Trino).
    assert "string_agg" not in sql.lower()

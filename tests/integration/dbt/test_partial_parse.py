"""A dbt stage does not parse the whole project again when only the logical date changed.

Two stages in sequence on one home (DuckDB: one shared target folder), for two different
logical dates. The second invocation must reuse the first one's parse: dbt's own debug log
(``<home>/dbt/logs/dbt.log``) says "Partial parsing enabled: 0 files deleted, 0 files added,
0 files changed" and never "Unable to do partial parsing". The logical date still reaches
the SQL: silver's as_of_date column holds the second date.

And the image's baked Trino parse (dbt_runner.BAKED_SETTINGS) is accepted by a stage Job of
the default chart install: the Job's settings come from the ConfigMap and Secret that Helm
renders for `helm install smepulse charts/smepulse -n smepulse`; `dbt parse` needs no Trino.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import time
from pathlib import Path

import duckdb
import msgpack
import pytest
from dbt.cli.main import dbtRunner

from smepulse.dbt_runner import (
    BAKED_SETTINGS,
    PARTIAL_PARSE_FILE,
    QUIET,
    _common_args,
    bake_parse_artefacts,
    dbt_environment,
    run_build,
)
from smepulse.settings import Settings
from tests.integration.dbt.bronze_fixture import write_bronze
from tests.integration.dbt.conftest import make_settings
from tests.needs import KUBE, missing
from tests.unit.charts.helmlib import Helm, HelmUnavailable, find, find_helm

pytestmark = pytest.mark.integration

D1 = dt.date(2026, 6, 29)
D2 = dt.date(2026, 6, 30)
FULL = "Unable to do partial parsing"
REPO_DBT = Path(__file__).resolve().parents[3] / "dbt"
PARTIAL = re.compile(
    r"Partial parsing enabled: (\d+) files deleted, (\d+) files added, (\d+) files changed"
)


def _log_after(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def _as_of_dates(warehouse: Path) -> set[dt.date]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute("select distinct as_of_date from silver.feat_ar_invoice_balances")
        return {row[0] for row in rows.fetchall()}
    finally:
        con.close()


def test_second_stage_for_another_date_parses_partially(tmp_path: Path) -> None:
    first = make_settings(tmp_path, D1)
    write_bronze(Path(first.bronze_root), D2, n_invoices=40)
    log = tmp_path / "dbt" / "logs" / "dbt.log"

    started = time.monotonic()
    result = run_build(first, "dbt-silver")
    assert result.success, (result.error, [o.describe() for o in result.outcomes if o.failed])
    first_log = _log_after(log, 0)
    assert "Unable to do partial parsing because saved manifest not found" in first_log
    print(f"\nfirst stage (full parse + build): {time.monotonic() - started:.1f} s")
    # Read at execution time only: the saved parse recorded no env var of the run's values.
    saved = msgpack.unpackb(
        (tmp_path / "dbt" / "target" / PARTIAL_PARSE_FILE).read_bytes(),
        strict_map_key=False,
        timestamp=3,
    )
    assert set(saved["env_vars"]) == {"SMEPULSE_BRONZE_ROOT"}, saved["env_vars"]

    offset = log.stat().st_size
    started = time.monotonic()
    second = run_build(make_settings(tmp_path, D2), "dbt-silver")
    assert second.success, (second.error, [o.describe() for o in second.outcomes if o.failed])
    second_log = _log_after(log, offset)
    print(f"second stage (partial parse + build): {time.monotonic() - started:.1f} s")
    assert FULL not in second_log, [line for line in second_log.splitlines() if FULL in line]
    found = PARTIAL.search(second_log)
    assert found, "dbt did not log a partial parse for the second stage:\n" + second_log[:3000]
    assert found.groups() == ("0", "0", "0")
    assert _as_of_dates(first.warehouse_path) == {D2}


def _default_install_job_env(tmp_path: Path) -> dict[str, str]:
    """The SMEPULSE_* settings a stage Job of the default chart install gets (envFrom)."""
    try:
        helm = Helm(find_helm(), tmp_path / "helm")
    except HelmUnavailable as exc:
        missing(f"Helm ({exc})", setting=KUBE)
    manifests = helm.template(release="smepulse", namespace="smepulse")
    config = find(manifests, "ConfigMap", "smepulse-config")["data"]
    secret = find(manifests, "Secret", "smepulse-secrets")["data"]
    env = {**config, **{k: base64.b64decode(v).decode() for k, v in secret.items()}}
    return {k: v for k, v in env.items() if k.startswith("SMEPULSE_")}


def test_default_chart_install_accepts_the_baked_trino_parse(tmp_path: Path) -> None:
    project = tmp_path / "dbt"
    shutil.copytree(REPO_DBT, project, ignore=shutil.ignore_patterns("target", "logs", ".user.yml"))
    baked = {**BAKED_SETTINGS["trino"], "home": tmp_path / "bake"}
    bake_parse_artefacts(Settings(**baked, dbt_project_dir=project))
    assert sorted(p.name for p in (project / "target" / "trino").iterdir()) == [
        "manifest.json",
        PARTIAL_PARSE_FILE,
    ]

    env = _default_install_job_env(tmp_path)
    values: dict[str, object] = {k.removeprefix("SMEPULSE_").lower(): v for k, v in env.items()}
    assert values["home"] == BAKED_SETTINGS["trino"]["home"]
    # The chart's home (/tmp/smepulse) only places dbt's logs: not part of dbt's state check.
    values.update(home=tmp_path / "job", logical_date=D2, dbt_project_dir=project)
    job = Settings(**values)  # type: ignore[arg-type]
    assert job.warehouse == "trino"
    args = [*QUIET, "parse", *_common_args(job, "dbt-gold-facts", None)]
    with dbt_environment(job):
        outcome = dbtRunner().invoke(args)
    assert outcome.success, outcome.exception
    log = (tmp_path / "job" / "dbt" / "logs" / "dbt.log").read_text()
    assert FULL not in log, [line for line in log.splitlines() if FULL in line]
    found = PARTIAL.search(log)
    assert found, "the Job did not start from the baked parse:\n" + log[:3000]
    assert found.groups() == ("0", "0", "0")

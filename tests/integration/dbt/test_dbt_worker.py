"""The local runner's warm dbt worker (smepulse.runner.dbt_worker) with real dbt on DuckDB.

Two dbt stages of the packaged project with no dependency between them, one slot: the first
one fails (gold KPIs on a warehouse without gold facts), times out or is cancelled; the
second (silver from the small bronze data set) must still run and succeed, each stage with
its own record, exit code and log file.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from rich.console import Console

from smepulse.catalog import parse_catalog
from smepulse.runner import history as runs_store
from smepulse.runner import run_pipeline
from smepulse.settings import Settings
from tests.integration.dbt.bronze_fixture import write_bronze
from tests.integration.dbt.conftest import END_DATE

pytestmark = pytest.mark.integration


def catalog_doc(first: dict[str, Any]) -> dict[str, Any]:
    return {
        "defaults": {"timeoutSeconds": 120, "retries": {"limit": 0, "backoffSeconds": 0}},
        "pipelines": {
            "w": {
                "stages": [
                    {"name": "dbt-gold-kpis", "dbt": {"select": ["tag:gold_kpis"]}, **first},
                    {
                        "name": "dbt-silver",
                        "dbt": {
                            "select": ["tag:silver"],
                            "exclude": ["tag:external"],
                            "bronzeSources": ["bronze"],
                        },
                    },
                ]
            }
        },
    }


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One home for the module: dbt parses the project in full once, then partially."""
    home = tmp_path_factory.mktemp("dbt-worker")
    settings = Settings(home=home, logical_date=END_DATE, runner_max_parallel=1)
    write_bronze(Path(settings.bronze_root), END_DATE)
    return settings


def run(settings: Settings, first: dict[str, Any]) -> runs_store.RunRecord:
    run_pipeline(
        settings,
        "w",
        END_DATE,
        catalog=parse_catalog(catalog_doc(first)),
        console=Console(file=io.StringIO(), width=200),
    )
    return runs_store.runs_for(settings.runs_dir, "w", END_DATE)[-1]


def worker_pid(log: str) -> int:
    """The worker's pid from an attempt log's header line."""
    header = Path(log).read_text().splitlines()[0]
    assert "warm dbt worker, pid " in header, header
    return int(header.split("warm dbt worker, pid ")[1].split(")")[0])


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def silver_rows(settings: Settings) -> int:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        row = con.execute("select count(*) from silver.stg_bronze__ar_invoices").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def test_a_failing_stage_fails_alone_and_the_next_runs_in_the_same_worker(
    settings: Settings,
) -> None:
    record = run(settings, {"retries": {"limit": 1, "backoffSeconds": 0}})
    kpis, silver = record.stage("dbt-gold-kpis"), record.stage("dbt-silver")
    assert (kpis.state, kpis.exit_code, kpis.attempts) == ("Failed", 1, 2)
    assert "dbt-gold-kpis: dbt build failed" in (kpis.message or "")
    assert (silver.state, silver.exit_code, silver.attempts) == ("Succeeded", 0, 1)
    assert record.status == "Failed" and record.failed_stage == "dbt-gold-kpis"
    # One log per attempt, each with its own stage's lines only.
    assert [Path(p).name for p in kpis.logs] == ["dbt-gold-kpis.log", "dbt-gold-kpis.2.log"]
    for log in kpis.logs:
        text = Path(log).read_text()
        assert "error: dbt-gold-kpis: dbt build failed" in text and "dbt-silver" not in text
    silver_log = Path(silver.logs[0]).read_text()
    assert "dbt-silver: succeeded" in silver_log and "dbt-gold-kpis" not in silver_log
    # All three attempts in one warm worker, which ended with the run.
    pids = {worker_pid(log) for log in [*kpis.logs, *silver.logs]}
    assert len(pids) == 1 and gone(pids.pop())
    assert silver_rows(settings) == 160  # the fixture's invoices (n_invoices=160)


def test_a_timed_out_stage_kills_the_worker_and_the_next_gets_a_fresh_one(
    settings: Settings,
) -> None:
    record = run(settings, {"timeoutSeconds": 1})
    kpis, silver = record.stage("dbt-gold-kpis"), record.stage("dbt-silver")
    assert kpis.state == "Failed" and kpis.message == "timed out after 1s (attempt 1)"
    assert kpis.exit_code is not None and kpis.exit_code < 0  # killed by a signal
    assert record.status == "TimedOut"
    first, second = worker_pid(kpis.logs[0]), worker_pid(silver.logs[0])
    assert first != second and gone(first) and gone(second)
    assert (silver.state, silver.exit_code) == ("Succeeded", 0)
    assert silver_rows(settings) == 160


def test_cancel_kills_the_worker_mid_stage(settings: Settings) -> None:
    script = (
        "import io, json, sys\n"
        "from rich.console import Console\n"
        "from smepulse.catalog import parse_catalog\n"
        "from smepulse.runner import run_pipeline\n"
        "from smepulse.settings import Settings\n"
        f"settings = Settings(home={str(settings.home)!r}, runner_max_parallel=1)\n"
        f"run_pipeline(settings, 'w', __import__('datetime').date.fromisoformat({END_DATE.isoformat()!r}),"
        f" catalog=parse_catalog(json.loads({json.dumps(catalog_doc({}))!r})),"
        " console=Console(file=io.StringIO()))\n"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    done = len(runs_store.runs_for(settings.runs_dir, "w", END_DATE))
    run_id = f"w-{END_DATE:%Y%m%d}" + (f"-{done + 1}" if done else "")
    path = settings.runs_dir / run_id / "run.json"
    deadline = time.monotonic() + 60
    pid = None
    while time.monotonic() < deadline and pid is None:
        record = runs_store.load(path) if path.exists() else None
        if record is not None and record.stage("dbt-gold-kpis").state == "Running":
            pid = record.stage("dbt-gold-kpis").pid
        time.sleep(0.1)
    assert pid is not None, "dbt-gold-kpis never started"
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=60)
    record = runs_store.load(path)
    assert record is not None
    assert record.status == "Cancelled", err.decode()[-2000:]
    assert record.stage("dbt-gold-kpis").state == "Cancelled"
    assert record.stage("dbt-silver").state == "Skipped"
    assert worker_pid(record.stage("dbt-gold-kpis").logs[0]) == pid
    assert gone(pid)

"""``smepulse demo`` end to end through the real CLI, then the runner's semantics on the real
stages: a second run of the same date changes nothing, ``--from-stage`` resumes, and a failing
stage is retried, stops its dependants, spares the independent branch and is reported by the
finally stage.

One demo (small scale, fixed date, a temporary SMEPULSE_HOME) is shared by the tests of this
module, which run in file order; the failure test comes last because it rewrites the
anomaly table for an earlier date. Slow (several minutes): marked e2e.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from smepulse.catalog import load_catalog
from smepulse.runner import history as runs_store
from tests.integration.stages.services import FakeHTTP, http_server, required  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

CATALOG_DAILY = [s.name for s in load_catalog().pipeline("daily-etl").stages]
DAY = "2025-06-30"
SCALE = "0.1"
DIMS = {"dim_bank_account", "dim_channel", "dim_customer", "dim_date", "dim_expense_category",
        "dim_payment_method", "dim_product", "dim_province", "dim_supplier"}  # fmt: skip
FACTS = {
    "fct_ap_bills",
    "fct_ap_payments",
    "fct_ar_invoices",
    "fct_ar_payments",
    "fct_bank_transactions",
    "fct_sales_lines",
}
KPIS = {"kpi_ar_ageing", "kpi_daily_cash_flow", "kpi_daily_revenue", "kpi_working_capital"}
ML = {"ml_ar_priority_scores", "ml_cashflow_forecast", "ml_anomaly_alerts"}
VOLATILE = {"created_at"}  # when an ML stage wrote its rows: differs by design between runs


@dataclass
class Demo:
    home: Path
    cwd: Path
    output: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SMEPULSE_") and k != "REDIS_URL"
        }
        env.update(SMEPULSE_HOME=str(self.home), **extra)
        return env

    def cli(
        self, *args: str, timeout: float = 1200, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smepulse.cli", *args],
            cwd=self.cwd, env=self.env(**extra), capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def record(self, run_id: str) -> runs_store.RunRecord:
        rec = runs_store.load(self.home / "runs" / run_id / "run.json")
        assert rec is not None, f"no record for {run_id}"
        return rec


def fingerprint(home: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    """Per gold table: row count and an order-independent hash of every (non-volatile) column."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        out: dict[str, tuple[int, dict[str, Any]]] = {}
        tables = [t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'gold' order by 1").fetchall()]  # fmt: skip
        for t in tables:
            cols = [c for (c,) in con.execute(
                "select column_name from information_schema.columns where table_schema = 'gold' and table_name = ?",
                [t]).fetchall() if c not in VOLATILE]  # fmt: skip
            n = con.execute(f"select count(*) from gold.{t}").fetchone()[0]  # type: ignore[index]
            hashes = {
                c: con.execute(f'select sum(hash("{c}")) from gold.{t}').fetchone()[0] for c in cols
            }  # type: ignore[index]
            out[t] = (int(n), hashes)
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    state = Demo(home=root / "home", cwd=root, output="")
    proc = state.cli("demo", "--scale", SCALE, "--end-date", DAY, timeout=1800)
    state.output = proc.stdout + proc.stderr
    assert proc.returncode == 0, state.output[-4000:]
    yield state


def test_demo_produces_every_expected_output(demo: Demo) -> None:
    tables = fingerprint(demo.home)
    assert set(tables) >= DIMS | FACTS | KPIS | ML, (
        f"missing: {sorted((DIMS | FACTS | KPIS | ML) - set(tables))}"
    )
    assert tables["ml_cashflow_forecast"][0] == 30
    assert tables["ml_ar_priority_scores"][0] > 0
    con = duckdb.connect(str(demo.home / "warehouse.duckdb"), read_only=True)
    try:
        dupes = con.execute(
            "select count(*) - count(distinct invoice_id) from gold.ml_ar_priority_scores"
        ).fetchone()
        window = con.execute(
            f"select count(*) from gold.fct_bank_transactions where txn_at >= date '{DAY}' - interval 6 day"
        ).fetchone()
    finally:
        con.close()
    assert dupes == (0,)
    # Known answers, not an alert count: the generator's planted anomalies (its labels, kept
    # outside bronze) of the week lead the alerts.
    planted = set(
        duckdb.sql(
            f"select txn_id from '{demo.home / 'labels' / 'bank_transaction_anomalies.parquet'}'"
        ).fetchnumpy()["txn_id"]
    )
    con = duckdb.connect(str(demo.home / "warehouse.duckdb"), read_only=True)
    try:
        ranked = [r[0] for r in con.execute(
            "select txn_id from gold.ml_anomaly_alerts order by anomaly_rank").fetchall()]  # fmt: skip
    finally:
        con.close()
    assert window is not None and 0 < len(ranked) <= window[0], (len(ranked), window)
    assert ranked[0] in planted, ranked[:5]
    report = demo.home / "reports" / f"ml-predict-{DAY}.html"  # ml-predict ends with it
    html = report.read_text()
    sections = dict(re.findall(r'<section id="(\w+)">(.*?)</section>', html, re.S))
    # the forecast section has its chart; the receivables section has the bands chart
    assert "<svg" in sections["forecast"] and "<svg" in sections["receivables"]
    assert "Forecast not available yet" not in html
    assert (demo.home / "reports" / f"ml-predict-{DAY}.md").exists()
    day = DAY.replace("-", "")
    for run_id in (
        f"external-sync-{day}",
        f"daily-etl-{day}",
        f"ml-training-{day}",
        f"ml-predict-{day}",
    ):
        assert demo.record(run_id).status == "Succeeded", run_id
    assert demo.record(f"daily-etl-{day}").stage("trigger-ml-predict").state == "Succeeded"
    for text in (
        "mlflow ui --backend-store-uri sqlite:///",
        str(report.resolve()),
        "ml_cashflow_forecast",
    ):
        assert text in demo.output
    history = demo.cli("runs")
    assert history.returncode == 0 and f"ml-predict-{day}" in history.stdout


def test_demo_report_renders_in_chromium(demo: Demo, tmp_path: Path) -> None:
    from scripts.screenshot_report import find_browser, screenshot

    if find_browser() is None:
        required("chromium (apt-get install -y chromium)")
    import numpy as np
    from PIL import Image

    png = screenshot(demo.home / "reports" / f"ml-predict-{DAY}.html", tmp_path / "demo-report.png")
    assert np.asarray(Image.open(png).convert("RGB")).std() > 20


def test_second_run_of_the_same_date_is_idempotent(demo: Demo) -> None:
    before = fingerprint(demo.home)
    etl = demo.cli("run", "daily-etl", "--logical-date", DAY)  # the trigger runs ml-predict too
    assert etl.returncode == 0, etl.stdout[-3000:]
    after = fingerprint(demo.home)
    assert set(after) == set(before)
    changed = {t for t in before if before[t] != after[t]}
    assert not changed, {t: (before[t][0], after[t][0]) for t in changed}
    day = DAY.replace("-", "")
    assert demo.record(f"daily-etl-{day}-2").triggered == [f"ml-predict-{day}-2"]
    assert demo.record(f"ml-predict-{day}-2").triggered_by == f"daily-etl-{day}-2"


def test_from_stage_resumes_downstream_only(demo: Demo) -> None:
    proc = demo.cli(
        "run", "daily-etl", "--logical-date", DAY, "--from-stage", "dbt-ml-scores", "--no-trigger"
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    latest = runs_store.runs_for(demo.home / "runs", "daily-etl", dt.date.fromisoformat(DAY))[-1]
    states = {s.name: s.state for s in latest.stages}
    assert latest.from_stage == "dbt-ml-scores"
    assert set(CATALOG_DAILY) - set(states) == {  # not selected: not in the record
        "verify-infra", "validate-bronze", "dbt-silver", "dbt-gold-dims", "dbt-gold-facts", "dbt-gold-links", "dbt-gold-kpis",
    }  # fmt: skip
    assert states["dbt-ml-scores"] == "Succeeded" and "report" not in states  # in ml-predict
    assert states["trigger-ml-predict"] == "Succeeded" and states["notify"] == "Succeeded"
    assert (latest.stage("notify").message or "").startswith("skipped: ")  # nothing configured


def test_failure_is_retried_stops_dependants_spares_the_other_branch_and_is_notified(
    demo: Demo,
    http_server: FakeHTTP,  # noqa: F811 - the fixture
) -> None:
    # Both champions were trained on data up to DAY: a forecast or alerts "made on" an earlier
    # date are refused by uc09-forecast and uc10-detect (expected failures); the two branches
    # are independent, so each runs (with its retry) and fails on its own.
    early = "2025-06-01"
    proc = demo.cli(
        "run",
        "ml-predict",
        "--logical-date",
        early,
        SMEPULSE_NOTIFY_WEBHOOK_URL=http_server.url + "/hook",
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    rec = demo.record("ml-predict-20250601")
    assert rec.status == "Failed" and rec.failed_stage in {"uc09-forecast", "uc10-detect"}
    uc09 = rec.stage("uc09-forecast")
    assert uc09.state == "Failed" and uc09.attempts == 2  # the catalog's one retry happened
    assert [Path(p).name for p in uc09.logs] == ["uc09-forecast.log", "uc09-forecast.2.log"]
    assert "trained on data up to" in (uc09.message or "")
    uc10 = rec.stage("uc10-detect")  # the independent branch ran, and refused an earlier date
    assert uc10.state == "Failed" and uc10.attempts == 2
    # uc10-detect reads its data before its model: silver (as of DAY) is refused for an
    # earlier date before the champion's date guard is reached.
    assert f"after this run's logical date {early}" in (uc10.message or "")
    assert rec.stage("refresh-metabase").state == "Skipped"
    assert rec.stage("invalidate-cache").state == "Skipped"
    assert rec.stage("notify").state == "Succeeded"
    (hook,) = http_server.requests
    text = json.loads(hook.body)["text"]
    assert "ml-predict" in text and "Failed" in text and early in text
    assert "uc09-forecast" in text or "uc10-detect" in text

"""Models serve from day one: on a fresh home where ml-training never ran, the whole
``smepulse run ml-predict`` pipeline succeeds, UC09 forecasts with the registered weekly
seasonal-naive baseline and UC10 alerts with the registered robust-z baseline.

Through the real CLI, MLflow on SQLite and DuckDB: once on silver tables written directly with a
hand-set last week (a known forecast), and once per synthetic business from
``smepulse generate-data`` through daily-etl (dbt), where the known answer is the rule itself:
each forecast day equals the realised net cash flow of the same weekday in the last week.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from smepulse.runner import history as runs_store
from tests.integration.ml.test_ml_stages import (
    END,
    LAST_WEEK,
    _load_silver,
    _plant_last_week_and_a_future,
    _settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _cli(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMEPULSE_", "MLFLOW_"))}
    env.pop("REDIS_URL", None)
    env["SMEPULSE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "smepulse.cli", *args],
        cwd=home.parent, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _query(home: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchdf()
    finally:
        con.close()


def _run_ml_predict(home: Path) -> None:
    proc = _cli(home, "run", "ml-predict", "--logical-date", str(END))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    rec = runs_store.load(home / "runs" / f"ml-predict-{END:%Y%m%d}" / "run.json")
    assert rec is not None and rec.status == "Succeeded"
    for stage in ("uc09-forecast", "uc10-detect", "report"):
        assert rec.stage(stage).state == "Succeeded"


def _assert_served_by_baselines(home: Path) -> pd.DataFrame:
    """Common facts of a first-day ml-predict; returns the forecast rows (by date)."""
    rows = _query(home, "select * from gold.ml_cashflow_forecast order by forecast_date")
    assert rows["forecast_date"].dt.date.tolist() == [
        END + dt.timedelta(days=i) for i in range(1, 31)
    ]
    assert set(rows["model_name"]) == {"smepulse-uc09-baseline"}
    assert set(rows["model_version"]) == {"1"} and set(rows["model_kind"]) == {"seasonal_naive/net"}
    assert set(rows["logical_date"].dt.date) == {END}
    alerts = _query(home, "select * from gold.ml_anomaly_alerts")
    assert len(alerts) > 0
    assert set(alerts["model_name"]) == {"smepulse-uc10-baseline"}
    assert set(alerts["model_kind"]) == {"robust_z"}
    uri = f"sqlite:///{home / 'mlflow.db'}"
    mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert mlflow.search_model_versions("name = 'smepulse-uc09-cashflow'") == []  # never trained
    (v1,) = mlflow.search_model_versions("name = 'smepulse-uc09-baseline'")
    assert v1.tags["logical_date"] == str(END) and v1.tags["data_end"] <= str(END)
    assert set(rows["mlflow_run_id"]) == {v1.run_id}
    report = (home / "reports" / f"ml-predict-{END}.html").read_text()
    assert "Forecast not available yet" not in report
    return rows


def test_ml_predict_on_a_fresh_home_serves_both_baselines_known_forecast(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    settings.home.mkdir()
    _load_silver(settings)
    _plant_last_week_and_a_future(settings)
    _run_ml_predict(settings.home)
    rows = _assert_served_by_baselines(settings.home)
    # Hand-set last week Wed..Tue; forecasts start on Wednesday 2026-07-01.
    assert rows["yhat_vnd"].tolist()[:8] == [*LAST_WEEK, LAST_WEEK[0]]
    assert rows["yhat_vnd"].tolist()[-2:] == [LAST_WEEK[0], LAST_WEEK[1]]  # 07-29 Wed, 07-30 Thu


@pytest.mark.parametrize("business", ["distributor", "highlands"])
def test_ml_predict_after_daily_etl_with_no_training_ever(tmp_path: Path, business: str) -> None:
    home = tmp_path / "home"
    gen = _cli(
        home, "generate-data", "--business", business, "--scale", "0.05", "--years", "0.5",
        "--ingest-dates", "1", "--end-date", str(END),
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr[-2000:]
    etl = _cli(home, "run", "daily-etl", "--logical-date", str(END), "--no-trigger")
    assert etl.returncode == 0, (etl.stdout + etl.stderr)[-4000:]
    _run_ml_predict(home)
    rows = _assert_served_by_baselines(home)
    # The known answer of a weekly seasonal naive: the realised net cash flow (silver, as
    # daily-etl published it) of the same weekday in the week ending on END, days with no cash
    # movement being zero.
    daily = _query(
        home,
        "select cash_date, net_vnd from silver.ml_training_uc09_daily_cashflow "
        f"where cash_date > date '{END}' - interval 7 day and cash_date <= date '{END}'",
    )
    net = {d: int(v) for d, v in zip(daily["cash_date"].dt.date, daily["net_vnd"], strict=True)}
    last_week = [net.get(END - dt.timedelta(days=6 - i), 0) for i in range(7)]
    assert any(last_week), "the generated last week has no cash movement at all"
    assert rows["yhat_vnd"].tolist() == [last_week[i % 7] for i in range(30)]

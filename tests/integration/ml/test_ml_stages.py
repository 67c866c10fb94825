"""train -> validate -> predict against a real MLflow (SQLite store) and a DuckDB warehouse.

The two silver training tables are created directly in a temporary DuckDB file from small
synthetic frames, so the test does not depend on dbt; the stages are the real ones.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from smepulse.errors import StageError
from smepulse.ml import uc09_predict, uc09_train, uc10_detect, uc10_train, validate
from smepulse.settings import Settings
from tests.unit.ml.synthetic import daily_cashflow, transactions

pytestmark = pytest.mark.integration
END = dt.date(2026, 6, 30)


def _settings(home: Path, **extra: object) -> Settings:
    options: dict[str, object] = {
        "ml_backtest_folds": 2,
        "ml_forecast_candidates": ["prophet", "ets"],
    }
    return Settings(**{"home": home, "logical_date": END, **options, **extra})  # type: ignore[arg-type]


def _load_silver(settings: Settings) -> None:
    daily = daily_cashflow(days=240, end=END, seed=21)
    txns, labels = transactions(days=90, end=END, per_day=30, seed=22)
    settings.labels_dir.mkdir(parents=True, exist_ok=True)
    labels.to_parquet(settings.labels_dir / "bank_transaction_anomalies.parquet")
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.register("daily", daily)
        con.register("txns", txns)
        con.execute("create schema silver")
        con.execute(
            "create table silver.ml_training_uc09_daily_cashflow as select cast(cash_date as date) cash_date, "
            "cast(inflow_vnd as decimal(18,0)) inflow_vnd, cast(outflow_vnd as decimal(18,0)) outflow_vnd, "
            "cast(net_vnd as decimal(18,0)) net_vnd, cast(n_transactions as integer) n_transactions from daily"
        )
        con.execute(
            "create table silver.ml_training_uc10_transactions as select txn_id, bank_account_id, "
            "cast(txn_at as timestamp) txn_at, cast(amount_vnd as decimal(18,0)) amount_vnd, counterparty, "
            "category, description, reference_id from txns"
        )
    finally:
        con.close()


def _gold(settings: Settings, table: str) -> pd.DataFrame:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(f"select * from gold.{table}").fetchdf()
    finally:
        con.close()


def _alias_holder(mlflow: MlflowClient, name: str) -> str | None:
    """The version holding ``name``'s champion alias, read straight from MLflow."""
    try:
        return str(mlflow.get_model_version_by_alias(name, "champion").version)
    except MlflowException:
        return None


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One home with silver data, both models trained and validated once."""
    settings = _settings(tmp_path_factory.mktemp("ml"))
    _load_silver(settings)
    uc09_train.run(settings)
    uc10_train.run(settings)
    validate.run(settings)
    return settings


#: Hand-set net cash flow of the last week before END (Wed 2026-06-24 .. Tue 2026-06-30).
LAST_WEEK = [11_000_000, -22_000_000, 33_000_000, 0, -150_000_000, 5_000_000, 70_000_000]


def _plant_last_week_and_a_future(settings: Settings) -> None:
    """The last 7 days get LAST_WEEK; rows after END (which no forecast made on END may see)
    get an absurd value."""
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        table = "silver.ml_training_uc09_daily_cashflow"
        for i, net in enumerate(LAST_WEEK):
            day = END - dt.timedelta(days=6 - i)
            con.execute(f"update {table} set net_vnd = ? where cash_date = ?", [net, day])
        for i in range(1, 8):
            con.execute(
                f"insert into {table} values (?, 0, 0, 999000000000, 1)",
                [END + dt.timedelta(days=i)],
            )
    finally:
        con.close()


def test_without_a_champion_the_seasonal_naive_baseline_is_registered_and_serves(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    _load_silver(settings)
    _plant_last_week_and_a_future(settings)
    uc09_predict.run(settings)
    rows = _gold(settings, "ml_cashflow_forecast")
    # Seasonal naive, known answer: each future day is the same weekday of the last week.
    assert rows["forecast_date"].dt.date.tolist() == [
        END + dt.timedelta(days=i) for i in range(1, 31)
    ]
    assert rows["yhat_vnd"].tolist() == [LAST_WEEK[i % 7] for i in range(30)]
    assert (
        (rows["yhat_lower_vnd"] <= rows["yhat_vnd"]) & (rows["yhat_vnd"] <= rows["yhat_upper_vnd"])
    ).all()
    assert set(rows["model_name"]) == {"smepulse-uc09-baseline"}
    assert set(rows["model_version"]) == {"1"} and set(rows["model_kind"]) == {"seasonal_naive/net"}
    mlflow = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    v1 = mlflow.get_model_version("smepulse-uc09-baseline", "1")
    assert (v1.tags["logical_date"], v1.tags["data_end"]) == (str(END), str(END))  # no future
    assert set(rows["mlflow_run_id"]) == {v1.run_id}
    assert _alias_holder(mlflow, "smepulse-uc09-cashflow") is None  # nothing was promoted

    # A re-run of the same date serves the version registered for it (no second version) ...
    uc09_predict.run(settings)
    assert len(mlflow.search_model_versions("name = 'smepulse-uc09-baseline'")) == 1
    assert _gold(settings, "ml_cashflow_forecast")["yhat_vnd"].tolist() == rows["yhat_vnd"].tolist()
    # ... and the next day gets its own version, fitted on data up to that day only.
    uc09_predict.run(_settings(tmp_path, logical_date=END + dt.timedelta(days=1)))
    v2 = mlflow.get_model_version("smepulse-uc09-baseline", "2")
    assert v2.tags["data_end"] == str(END + dt.timedelta(days=1))
    assert _gold(settings, "ml_cashflow_forecast")["yhat_vnd"].iloc[6] == 999_000_000_000
    # A backfill of END after that still serves END's own version (v1), not a new one.
    uc09_predict.run(settings)
    assert len(mlflow.search_model_versions("name = 'smepulse-uc09-baseline'")) == 2
    assert set(_gold(settings, "ml_cashflow_forecast")["model_version"]) == {"1"}


def test_quiet_days_before_the_logical_date_are_zeros_for_the_baseline(tmp_path: Path) -> None:
    # Silver ends on the last day with a transaction; Mon 06-29 and Tue 06-30 had none.
    settings = _settings(tmp_path)
    _load_silver(settings)
    _plant_last_week_and_a_future(settings)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute(
        "delete from silver.ml_training_uc09_daily_cashflow where cash_date >= ?",
        [END - dt.timedelta(days=1)],
    )
    con.close()
    uc09_predict.run(settings)
    rows = _gold(settings, "ml_cashflow_forecast")
    assert rows["forecast_date"].iloc[0] == pd.Timestamp(END + dt.timedelta(days=1))
    assert rows["yhat_vnd"].tolist()[:7] == [*LAST_WEEK[:5], 0, 0]


def test_a_logical_date_far_past_the_data_is_one_clear_line_naming_the_last_day(
    tmp_path: Path,
) -> None:
    """ml-training created without spec.logicalDate (today) on data ending months earlier
    crashed with an IndexError in the book model on the real node."""
    settings = _settings(tmp_path, logical_date=END + dt.timedelta(days=31))
    _load_silver(settings)
    with pytest.raises(
        StageError,
        match=rf"ends on {END}, 31 days before the logical date {END + dt.timedelta(days=31)}: "
        rf"run with the logical date of the data \(--logical-date / spec.logicalDate {END}\)",
    ):
        uc09_train.run(settings)
    # 30 quiet days (the horizon) are still a business's quiet spell: the baseline serves.
    uc09_predict.run(_settings(tmp_path, logical_date=END + dt.timedelta(days=30)))


def test_too_little_history_for_the_baseline_is_one_clear_line_and_keeps_previous_outputs(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    _load_silver(settings)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute(
        "delete from silver.ml_training_uc09_daily_cashflow where cash_date < ?",
        [END - dt.timedelta(days=9)],
    )  # 10 days left
    con.execute("create schema gold")
    con.execute("create table gold.ml_cashflow_forecast as select 42 as yhat_vnd")
    con.close()
    with pytest.raises(
        StageError,
        match=r"^UC09 has no champion and too little history up to 2026-06-30 to fit the "
        r"seasonal-naive baseline \(10 days, needs 14\): run daily-etl for more days first$",
    ):
        uc09_predict.run(settings)
    assert _gold(settings, "ml_cashflow_forecast")["yhat_vnd"].tolist() == [42]

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "smepulse.cli",
            "stage",
            "uc09-forecast",
            "--logical-date",
            str(END),
        ],
        env={"SMEPULSE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert "error: UC09 has no champion and too little history" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validation_promotes_both_first_versions(trained: Settings) -> None:
    doc = json.loads((trained.home / "ml" / f"validation-{END}.json").read_text())
    assert doc["uc09"]["decision"] == "promoted" and doc["uc09"]["champion_after"] == "1"
    assert doc["uc09"]["figures"]["candidate_mase"] < doc["uc09"]["figures"]["baseline_mase"]
    assert doc["uc10"]["decision"] == "promoted" and doc["uc10"]["figures"]["labelled"] is True


def test_forecast_has_30_future_days_and_replaces_atomically(trained: Settings) -> None:
    uc09_predict.run(trained)
    uc09_predict.run(trained)  # a re-run replaces the table, never appends
    rows = _gold(trained, "ml_cashflow_forecast")
    assert len(rows) == 30
    assert rows["forecast_date"].dt.date.tolist() == [
        END + dt.timedelta(days=i) for i in range(1, 31)
    ]
    assert (rows["yhat_lower_vnd"] <= rows["yhat_vnd"]).all() and (
        rows["yhat_vnd"] <= rows["yhat_upper_vnd"]
    ).all()
    assert set(rows["model_version"]) == {"1"} and rows["mlflow_run_id"].str.len().min() == 32
    assert set(rows["logical_date"].dt.date) == {END}


def test_planted_anomalies_of_the_week_are_alerted_first_with_reasons(trained: Settings) -> None:
    # Known answers instead of an alert count (which serving may shape): the fixture plants 8
    # anomalies in the last week, 5 of them amounts 15x a counterparty's usual; the planted ones
    # are the most extreme transactions of the week, so they must lead the alerts.
    uc10_detect.run(trained)
    alerts = _gold(trained, "ml_anomaly_alerts")
    txns, labels = transactions(days=90, end=END, per_day=30, seed=22)
    local_day = (pd.to_datetime(txns["txn_at"]) + pd.Timedelta(hours=7)).dt.date
    week = set(txns.loc[local_day > END - dt.timedelta(days=7), "txn_id"])
    planted = labels[labels["txn_id"].isin(week)]
    outliers = set(planted.loc[planted["anomaly_type"] == "amount_outlier", "txn_id"])
    assert len(planted) == 8 and len(outliers) == 5  # the fixture as hand-checked
    assert set(alerts["txn_id"].iloc[:3]) <= set(planted["txn_id"])  # precision@3 = 1
    assert len(outliers & set(alerts["txn_id"])) > len(outliers) / 2  # most 15x amounts
    assert set(alerts["txn_id"]) <= week  # only the window's transactions
    assert alerts["anomaly_rank"].tolist() == list(range(1, len(alerts) + 1))
    assert alerts["anomaly_score"].is_monotonic_decreasing
    assert alerts["reasons"].str.len().min() > 10
    assert set(alerts["model_version"]) == {"1"}


def test_retraining_on_the_same_data_keeps_the_champion_and_says_why(trained: Settings) -> None:
    uc10_train.run(trained)
    validate.run(trained)
    doc = json.loads((trained.home / "ml" / f"validation-{END}.json").read_text())
    assert doc["uc10"]["candidate_version"] == "2"
    assert doc["uc10"]["decision"] == "rejected" and doc["uc10"]["champion_after"] == "1"
    assert "does not beat the champion" in doc["uc10"]["reason"]
    assert doc["uc09"]["decision"] == "unchanged"


def test_a_challenger_of_another_kind_is_judged_against_the_champions_logged_figure(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, ml_forecast_candidates=["ets"])
    _load_silver(settings)
    uc09_train.run(settings)
    with pytest.raises(StageError, match="no registered model version for UC10"):
        validate.run(settings)  # decides UC09 all the same, then says what is missing
    challenger = _settings(tmp_path, ml_forecast_candidates=["prophet"])
    uc09_train.run(challenger)
    with pytest.raises(StageError, match="UC10"):
        validate.run(challenger)
    doc = json.loads((tmp_path / "ml" / f"validation-{END}.json").read_text())["uc09"]
    figures = doc["figures"]
    assert doc["candidate_version"] == "2" and doc["champion_before"] == "1"
    assert figures["champion_kind"].startswith("ets/") and figures["candidate_kind"].startswith(
        "prophet/"
    )
    # The champion's figure is the nested-backtest MASE its own training run logged (read from
    # MLflow here, not from validate-models), never a re-run on the candidate's folds.
    mlflow = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    v1 = mlflow.get_model_version("smepulse-uc09-cashflow", "1")
    logged = mlflow.get_run(v1.run_id).data.metrics["mase"]
    assert figures["champion_mase"] == pytest.approx(logged, rel=1e-9)
    assert figures["champion_mase"] != pytest.approx(figures["candidate_mase"], rel=1e-6)
    # The decision is what the registry now holds (the rule itself: tests/unit/ml).
    alias = _alias_holder(mlflow, "smepulse-uc09-cashflow")
    assert doc["champion_after"] == alias
    assert doc["decision"] == ("promoted" if alias == "2" else "rejected")
    assert (doc["decision"] == "promoted") == (figures["candidate_mase"] < figures["champion_mase"])


def test_the_uc09_gate_rejects_a_retrained_model_that_is_no_better(tmp_path: Path) -> None:
    settings = _settings(tmp_path, ml_forecast_candidates=["ets"])
    _load_silver(settings)
    uc09_train.run(settings)
    with pytest.raises(StageError, match="UC10"):
        validate.run(settings)
    uc09_train.run(settings)  # the same procedure on the same data: the same logged figure
    with pytest.raises(StageError, match="UC10"):
        validate.run(settings)
    doc = json.loads((tmp_path / "ml" / f"validation-{END}.json").read_text())["uc09"]
    assert (doc["candidate_version"], doc["champion_before"]) == ("2", "1")
    assert doc["decision"] == "rejected" and doc["champion_after"] == "1"
    assert "does not beat the champion" in doc["reason"]


def test_without_labels_the_held_out_window_rule_decides(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _load_silver(settings)
    (settings.labels_dir / "bank_transaction_anomalies.parquet").unlink()
    uc10_train.run(settings)
    uc10_train.run(_settings(tmp_path, ml_anomaly_alert_rate=0.05))
    with pytest.raises(StageError, match="UC09"):
        validate.run(settings)  # v2 is the candidate; there is no champion yet
    doc = json.loads((tmp_path / "ml" / f"validation-{END}.json").read_text())["uc10"]
    assert doc["figures"]["labelled"] is False and "no labels" in doc["reason"]
    # Whatever the unlabelled rule decided (pinned by tests/unit/ml), the registry holds it.
    mlflow = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    holder = _alias_holder(mlflow, "smepulse-uc10-anomaly")
    assert holder == ("2" if doc["decision"] == "promoted" else None)
    assert doc["champion_after"] == ("2" if doc["decision"] == "promoted" else None)


def test_a_champion_trained_after_the_logical_date_is_refused_not_replaced(
    trained: Settings,
) -> None:
    # As uc10-detect does: the stage fails with one line; it does not fall back to the baseline.
    early = END - dt.timedelta(days=10)
    with pytest.raises(StageError, match=r"after the logical date 2026-06-20: its forecast"):
        uc09_predict.run(_settings(trained.home, logical_date=early))
    mlflow = MlflowClient(tracking_uri=trained.tracking_uri, registry_uri=trained.tracking_uri)
    assert mlflow.search_model_versions("name = 'smepulse-uc09-baseline'") == []


def test_with_an_mlflow_server_the_models_go_to_its_artifact_store_not_the_pods_folder(
    tmp_path: Path,
) -> None:
    """A real ``mlflow server --serve-artifacts`` on loopback, as the chart runs it (there with
    S3 behind it; here a folder). Before, experiments were created with ``<home>/mlartifacts``
    as their location even under a server: on the real node the models stayed in the stage
    Pod's own /tmp and the bucket's MLflow prefix was empty."""
    import socket
    import time as _time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = tmp_path / "server-artifacts"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--serve-artifacts", "--artifacts-destination", str(store)],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = _time.monotonic() + 90
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert _time.monotonic() < deadline and server.poll() is None, "no MLflow server"
                _time.sleep(0.5)
        home = tmp_path / "pod"
        settings = _settings(home, mlflow_tracking_uri=f"http://127.0.0.1:{port}")
        assert settings.artifact_uri is None
        _load_silver(settings)
        uc09_predict.run(settings)  # registers the seasonal-naive baseline: a logged model
        version = MlflowClient(f"http://127.0.0.1:{port}").get_model_version(
            "smepulse-uc09-baseline", "1"
        )
        assert version.source.startswith("mlflow-artifacts:/"), version.source
        assert any(p.name == "MLmodel" for p in store.rglob("MLmodel")), "not in the server store"
        assert not (home / "mlartifacts").exists()
    finally:
        server.terminate()
        server.wait(timeout=30)

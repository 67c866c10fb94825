"""UC10 from day one and the alert-feedback round trip, on a real MLflow (SQLite) and DuckDB.

No planted labels here (a real user's first day): the baseline must serve, verdicts recorded
through the CLI must become the labels, and a malformed verdict file must be refused without
losing anything already recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from smepulse.cli import app
from smepulse.errors import StageError
from smepulse.ml import registry, uc10_detect, uc10_train
from smepulse.ml.uc10_feedback import load_labels
from smepulse.settings import Settings
from tests.unit.ml.synthetic import transactions

pytestmark = pytest.mark.integration
TZ = "Asia/Ho_Chi_Minh"
# The data ends today (the local day at collection).
TODAY = dt.datetime.now(ZoneInfo(TZ)).date()


def _filed_on() -> dt.date:
    """The local day a verdict recorded now is filed under. Not TODAY: a CI run collected
    these tests at 23:51 local time and recorded the verdicts at 00:13, the next day."""
    return dt.datetime.now(ZoneInfo(TZ)).date()


def _settings(home: Path, day: dt.date = TODAY) -> Settings:
    return Settings(home=home, logical_date=day)


def _load_silver(settings: Settings) -> pd.DataFrame:
    txns, _ = transactions(days=90, end=TODAY, per_day=30, seed=31)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.register("txns", txns)
        con.execute("create schema silver")
        con.execute(
            "create table silver.ml_training_uc10_transactions as select txn_id, bank_account_id, "
            "cast(txn_at as timestamp) txn_at, cast(amount_vnd as decimal(18,0)) amount_vnd, "
            "counterparty, category, description, reference_id from txns"
        )
    finally:
        con.close()
    return txns


def _alerts(settings: Settings) -> pd.DataFrame:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute("select * from gold.ml_anomaly_alerts order by anomaly_rank").fetchdf()
    finally:
        con.close()


def _cli(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, list(args), env={"SMEPULSE_HOME": str(home), "SMEPULSE_LOGICAL_DATE": str(TODAY)}
    )
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home whose first uc10-detect ran with nothing trained or promoted."""
    settings = _settings(tmp_path_factory.mktemp("uc10"))
    _load_silver(settings)
    uc10_detect.run(settings)
    return settings


def test_first_run_serves_the_registered_baseline(served: Settings) -> None:
    alerts = _alerts(served)
    assert len(alerts) > 0
    assert set(alerts["model_name"]) == {registry.UC10_BASELINE_MODEL}
    assert set(alerts["model_version"]) == {"1"} and set(alerts["model_kind"]) == {"robust_z"}
    with registry.tracking(served) as client:
        baseline = registry.latest(client, registry.UC10_BASELINE_MODEL)
        assert registry.champion(client, registry.UC10_MODEL) is None
    assert baseline is not None and baseline.tags["registered_by"] == "uc10-detect"
    # The baseline was fitted before the scored window: it never saw the alerts' week.
    window_start = TODAY - dt.timedelta(days=served.ml_anomaly_window_days - 1)
    assert baseline.tags["data_end"] < window_start.isoformat()
    # A second run reuses that version instead of registering another.
    uc10_detect.run(served)
    with registry.tracking(served) as client:
        assert registry.latest(client, registry.UC10_BASELINE_MODEL).version == "1"  # type: ignore[union-attr]


def test_verdicts_round_trip_into_the_labels(served: Settings) -> None:
    alerts = _alerts(served)
    hit, miss = alerts["txn_id"].iloc[0], alerts["txn_id"].iloc[1]
    assert load_labels(served, TODAY).source == "none"
    code, out = _cli(served.home, "alerts", "review", hit, "--confirmed", "--note", "fraud")
    assert code == 0, out
    code, out = _cli(served.home, "alerts", "review", miss, "--false-positive")
    assert code == 0, out
    day = _filed_on()
    labels = load_labels(served, day)
    assert labels.source == "verdicts"
    assert labels.positives == {hit} and labels.reviewed == {hit, miss}
    # A run for yesterday does not see today's verdicts (point in time).
    assert load_labels(served, day - dt.timedelta(days=1)).source == "none"
    # A later verdict on the same transaction replaces the earlier one.
    code, out = _cli(served.home, "alerts", "review", miss, "--confirmed")
    assert code == 0, out
    day = _filed_on()
    assert load_labels(served, day).positives == {hit, miss}
    # The listing shows the verdicts and the model that raised each alert.
    code, out = _cli(served.home, "alerts")
    assert code == 0, out
    assert "confirmed" in out and registry.UC10_BASELINE_MODEL in out
    # The next training reads them: its evaluation is labelled by the verdicts.
    uc10_train.run(_settings(served.home, day))
    with registry.tracking(served) as client:
        candidate = registry.latest(client, registry.UC10_MODEL)
    assert candidate is not None and candidate.tags["label_source"] == "verdicts"


def test_malformed_verdict_file_is_refused_and_nothing_is_lost(served: Settings) -> None:
    alerts = _alerts(served)
    code, out = _cli(served.home, "alerts", "review", alerts["txn_id"].iloc[2], "--confirmed")
    assert code == 0, out
    folder = Path(served.bronze_root) / "alert_feedback"
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.parquet")}
    bad_dir = folder / f"ingest_date={_filed_on()}"
    bad = bad_dir / "by-hand.parquet"
    row = {
        "feedback_id": "FB-HAND-1",
        "txn_id": alerts["txn_id"].iloc[3],
        "verdict": "maybe",  # not in the contract's accepted values
        "note": None,
        "model_name": None,
        "model_version": None,
        "alert_date": None,
        "reviewed_by": "a person",
        "updated_at": dt.datetime.now(dt.UTC),
    }
    from smepulse.bronze.contract import stamped_schema

    pq.write_table(pa.Table.from_pylist([row], schema=stamped_schema("alert_feedback")), bad)
    code, out = _cli(served.home, "alerts", "review", alerts["txn_id"].iloc[4], "--confirmed")
    assert code == 1
    assert str(bad) in out and "FB-HAND-1" in out and "bad_enum" in out
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.parquet")}
    assert {p: h for p, h in after.items() if p != bad} == before  # nothing lost or added
    bad.unlink()


def test_a_champion_trained_after_the_logical_date_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _load_silver(settings)
    uc10_train.run(settings)
    with registry.tracking(settings) as client:
        registry.promote(client, registry.UC10_MODEL, "1", "test: promoted by hand")
    earlier = _settings(tmp_path, TODAY - dt.timedelta(days=10))
    with pytest.raises(StageError, match=r"trained as of .* after the logical date"):
        uc10_detect.run(earlier)
    uc10_detect.run(settings)  # the same champion serves its own date
    assert set(_alerts(settings)["model_name"]) == {registry.UC10_MODEL}

"""The synthetic generator: determinism, contract, consistency, ingest dates, anomalies."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smepulse.bronze.contract import TABLES, contract
from smepulse.bronze.store import LocalStore, parquet_bytes
from smepulse.errors import ConfigError
from smepulse.settings import Settings
from smepulse.synth.generate import (
    LABELS_FILE,
    Dataset,
    GeneratorConfig,
    build_dataset,
    generate,
)
from smepulse.synth.util import TET_DATES

from .conftest import END, TINY

pytestmark = pytest.mark.unit


def newest(ds: Dataset, table: str) -> pd.DataFrame:
    """The de-duplicated snapshot silver builds: newest updated_at per key."""
    frame = pa.concat_tables(ds.tables[table]).to_pandas()
    key = list(contract(table).key)
    if "updated_at" in frame:
        frame = frame.sort_values("updated_at").drop_duplicates(key, keep="last")
    out: pd.DataFrame = frame.reset_index(drop=True)
    return out


def test_same_seed_gives_identical_files(tiny: Dataset) -> None:
    again = build_dataset(TINY)
    for table, parts in tiny.tables.items():
        for a, b in zip(parts, again.tables[table], strict=True):
            assert parquet_bytes(a) == parquet_bytes(b), table
    assert parquet_bytes(tiny.labels) == parquet_bytes(again.labels)


def test_different_seed_gives_different_data(tiny: Dataset) -> None:
    other = build_dataset(GeneratorConfig(end_date=END, seed=8, scale=0.05, years=0.5))
    for table in ("customers", "ar_invoices", "bank_transactions"):
        assert not pa.concat_tables(tiny.tables[table]).equals(
            pa.concat_tables(other.tables[table])
        ), table


def test_written_files_are_byte_identical_across_runs(tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        settings = Settings(home=tmp_path / run)
        generate(settings, TINY, show_progress=False)
        root = Path(settings.bronze_root)
        digests.append(
            {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}
        )
    assert digests[0] and digests[0] == digests[1]


def test_every_table_has_the_contract_schema(tiny: Dataset, clean_home: Path) -> None:
    for table, parts in tiny.tables.items():
        for part in parts:
            assert part.schema.equals(contract(table).schema, check_metadata=False), table
    store = LocalStore(clean_home / "bronze")
    for table in TABLES:
        files = store.list_files(table)
        assert files, table
        for f in files:
            assert store.read_file(f.uri).schema.equals(
                contract(table).schema, check_metadata=False
            )


def test_labels_are_beside_bronze_not_inside(clean_home: Path) -> None:
    labels = pq.read_table(clean_home / "labels" / LABELS_FILE)
    assert labels.schema.names == ["txn_id", "anomaly_type", "txn_date"]
    assert not any("anomal" in p.name for p in (clean_home / "bronze").rglob("*"))
    assert "bank_transaction_anomalies" not in LocalStore(clean_home / "bronze").tables()


def test_ingest_dates_are_incremental_exports(tiny: Dataset) -> None:
    assert tiny.ingest_dates[-1] == END and len(tiny.ingest_dates) == 3
    for table, parts in tiny.tables.items():
        key = list(contract(table).key)
        for part in parts:
            assert not part.to_pandas().duplicated(key).any(), (
                f"{table}: duplicate key within one ingest"
            )
    # Later exports repeat invoices whose status changed, with a newer updated_at.
    first, *later = (p.to_pandas() for p in tiny.tables["ar_invoices"])
    repeated = pd.concat(later).merge(first, on="invoice_id", suffixes=("", "_before"))
    assert len(repeated) > 0
    assert (repeated["updated_at"] > repeated["updated_at_before"]).all()
    assert (repeated["status"] != repeated["status_before"]).any()
    # Every row of an ingest was created or changed on or before that ingest date.
    for table in ("ar_invoices", "ar_payments", "bank_transactions"):
        for part, day in zip(tiny.tables[table], tiny.ingest_dates, strict=True):
            local = part.column("updated_at").to_pandas().dt.tz_convert("Asia/Ho_Chi_Minh").dt.date
            assert (local <= day).all(), table


def test_referential_integrity(tiny: Dataset) -> None:
    keys = {t: set(newest(tiny, t)[contract(t).key[0]]) for t in TABLES}
    for table, c in TABLES.items():
        frame = newest(tiny, table)
        for fk in c.foreign_keys:
            values = set(frame[fk.column].dropna())
            assert values <= keys[fk.parent], f"{table}.{fk.column} -> {fk.parent}"


def test_invoice_totals_statuses_and_payments_agree(tiny: Dataset) -> None:
    inv = newest(tiny, "ar_invoices").set_index("invoice_id")
    lines = newest(tiny, "ar_invoice_lines")
    pay = newest(tiny, "ar_payments")
    line_sum = lines.groupby("invoice_id")["line_amount_vnd"].sum()
    assert (line_sum.reindex(inv.index) + inv["vat_amount_vnd"] == inv["total_amount_vnd"]).all()
    paid = pay.groupby("invoice_id")["amount_vnd"].sum().reindex(inv.index).fillna(0)
    assert (paid <= inv["total_amount_vnd"]).all()
    expected = np.select(
        [paid == inv["total_amount_vnd"], paid > 0], ["paid", "partially_paid"], "open"
    )
    status = np.where(inv["status"] == "cancelled", "cancelled", expected)
    assert (inv["status"].to_numpy() == status).all()
    assert (paid[inv["status"] == "cancelled"] == 0).all()
    assert set(inv["status"]) == {"open", "paid", "partially_paid", "cancelled"}
    assert (inv["due_date"] >= inv["issue_date"]).all()
    merged = pay.merge(inv.reset_index()[["invoice_id", "issue_date"]], on="invoice_id")
    assert (merged["payment_date"] >= merged["issue_date"]).all()


def test_bills_statuses_and_payments_agree(tiny: Dataset) -> None:
    bills = newest(tiny, "ap_bills").set_index("bill_id")
    paid = newest(tiny, "ap_payments").groupby("bill_id")["amount_vnd"].sum()
    paid = paid.reindex(bills.index).fillna(0)
    assert (paid <= bills["total_amount_vnd"]).all()
    assert ((bills["status"] == "paid") == (paid == bills["total_amount_vnd"])).all()


def test_bank_feed_mirrors_non_cash_payments(tiny: Dataset) -> None:
    txns = newest(tiny, "bank_transactions")
    refs = set(txns["reference_id"].dropna())
    for table, sign in (("ar_payments", 1), ("ap_payments", -1)):
        pay = newest(tiny, table)
        banked = pay[pay["method"] != "cash"]
        assert set(banked["payment_id"]) <= refs, table
        assert not set(pay.loc[pay["method"] == "cash", "payment_id"]) & refs, table
        joined = banked.merge(txns, left_on="payment_id", right_on="reference_id")
        assert (joined["amount_vnd_y"] == sign * joined["amount_vnd_x"]).all()
    assert {"payroll", "rent", "tax", "utilities", "sales_receipt", "supplier_payment"} <= set(
        txns["category"]
    )


def test_nothing_after_the_end_date(tiny: Dataset) -> None:
    end_utc = pd.Timestamp("2025-07-01", tz="Asia/Ho_Chi_Minh")
    for table, c in TABLES.items():
        frame = newest(tiny, table)
        for name in c.date_columns:
            col = frame[name]
            if name.endswith("_at"):
                assert (col < end_utc).all(), f"{table}.{name}"
            else:
                assert (col <= END).all(), f"{table}.{name}"


def test_planted_anomaly_rate_is_3_to_5_percent_every_week(weekly: Dataset) -> None:
    txns = pa.concat_tables(weekly.tables["bank_transactions"]).to_pandas()
    labels = weekly.labels.to_pandas()
    assert set(labels["anomaly_type"]) == {
        "duplicate",
        "amount_outlier",
        "unusual_hour",
        "round_new_counterparty",
    }
    local = txns["txn_at"].dt.tz_convert("Asia/Ho_Chi_Minh").dt.tz_localize(None)
    week = local.dt.to_period("W-SUN")
    is_anomaly = txns["txn_id"].isin(labels["txn_id"])
    per_week = is_anomaly.groupby(week).agg(["mean", "size"])
    full = per_week[per_week["size"] >= 100]
    assert len(full) >= 20
    assert full["mean"].between(0.03, 0.05).all(), full[~full["mean"].between(0.03, 0.05)]


def test_planted_anomalies_are_unusual_for_their_counterparty(weekly: Dataset) -> None:
    txns = pa.concat_tables(weekly.tables["bank_transactions"]).to_pandas()
    labels = weekly.labels.to_pandas().set_index("txn_id")
    txns["type"] = txns["txn_id"].map(labels["anomaly_type"])
    normal = txns[txns["type"].isna()]
    hours = txns["txn_at"].dt.tz_convert("Asia/Ho_Chi_Minh").dt.hour
    assert hours[txns["type"] == "unusual_hour"].between(1, 4).all()
    assert not hours[txns["type"].isna()].between(1, 4).any()
    median = normal.groupby("counterparty")["amount_vnd"].apply(lambda s: s.abs().median())
    out = txns[txns["type"] == "amount_outlier"]
    ratio = out["amount_vnd"].abs().astype(float) / out["counterparty"].map(median).astype(float)
    assert (ratio >= 7).all()
    new = txns[txns["type"] == "round_new_counterparty"]
    assert (new["amount_vnd"].astype(float) % 10_000_000 == 0).all()
    assert not set(new["counterparty"]) & set(normal["counterparty"])
    # Normal data is not trivially separable: it has round amounts, evenings and new payees.
    assert (normal["amount_vnd"].astype(float) % 1_000_000 == 0).mean() > 0.01
    assert hours[txns["type"].isna()].between(18, 23).mean() > 0.02
    assert (normal.groupby("counterparty").size() == 1).sum() > 10


def test_seasonality_sunday_and_tet(weekly: Dataset) -> None:
    inv = newest(weekly, "ar_invoices")
    per_day = inv.groupby("issue_date").size()
    per_day.index = pd.to_datetime(per_day.index)
    assert (
        per_day[per_day.index.dayofweek == 6].mean()
        < 0.5 * per_day[per_day.index.dayofweek < 5].mean()
    )
    tet = pd.Timestamp(TET_DATES[2025])
    holiday = per_day[(per_day.index >= tet) & (per_day.index <= tet + pd.Timedelta(days=5))].sum()
    before = per_day[
        (per_day.index >= tet - pd.Timedelta(days=20))
        & (per_day.index < tet - pd.Timedelta(days=14))
    ].sum()
    assert holiday < 0.3 * before


def test_scale_multiplies_volume(tiny: Dataset) -> None:
    bigger = build_dataset(GeneratorConfig(end_date=END, seed=7, scale=0.1, years=0.5))
    ratio = newest(bigger, "ar_invoices").shape[0] / newest(tiny, "ar_invoices").shape[0]
    assert 1.7 < ratio < 2.3


def test_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scale"):
        GeneratorConfig(end_date=END, scale=0)
    with pytest.raises(ConfigError, match="ingest_dates"):
        GeneratorConfig(end_date=END, ingest_dates=0)


def test_ingest_dates_fit_short_histories() -> None:
    days = GeneratorConfig(end_date=END, years=0.1, ingest_dates=30).ingest_days()
    assert days[-1] == END and len(set(days)) == 30
    assert days[0] > END - dt.timedelta(days=37)

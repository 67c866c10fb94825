"""The second synthetic business (``--business highlands``): determinism, the real validator,
an internally consistent book, its calendar habits, and the planted anomalies.

Expectations are written from the business's rules (docs/second-business.md) and checked
on the generated tables, never by calling the generator's own helpers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from smepulse.bronze.contract import TABLE_NAMES, contract
from smepulse.bronze.store import LocalStore, parquet_bytes
from smepulse.bronze.validate import validate
from smepulse.cli import app
from smepulse.synth.generate import LABELS_FILE, Dataset, GeneratorConfig
from smepulse.synth.highlands.build import build_dataset
from smepulse.vn_calendar import TET

from .conftest import END, SMALL, local_dates, snapshot

pytestmark = pytest.mark.unit

KINDS = {
    "duplicate_supplier_payment",
    "split_below_approval_limit",
    "night_transfer_new_payee",
    "salary_paid_twice",
    "refund_without_invoice",
    "extra_zero_amount",
    "cash_deposit_structuring",
    "payment_during_tet_shutdown",
}


def bank(ds: Dataset) -> pd.DataFrame:
    """Bank lines with their local date, amount as int and the planted label (or None)."""
    b = pa.concat_tables(ds.tables["bank_transactions"]).to_pandas()
    b["date"] = local_dates(b["txn_at"])
    b["amount"] = b["amount_vnd"].astype("int64")
    labels = ds.labels.to_pandas().set_index("txn_id")["anomaly_type"]
    b["label"] = b["txn_id"].map(labels)
    return b


def tet_closed(day: dt.date) -> bool:
    """The shop's Tết closure: from two days before the first day of Tết to the fifth day."""
    tet = TET[day.year] if day.month <= 3 else TET.get(day.year + 1, TET[day.year])
    return -2 <= (day - tet).days <= 5


def closed(day: dt.date) -> bool:
    """Sunday, a fixed public holiday or the Tết closure."""
    holiday = (day.month, day.day) in {(1, 1), (4, 30), (5, 1), (9, 2)}
    return day.weekday() == 6 or holiday or tet_closed(day)


# -- determinism and the contract ---------------------------------------------------------


def test_same_seed_gives_identical_bytes(small: Dataset) -> None:
    again = build_dataset(SMALL)
    for table in TABLE_NAMES:
        for a, b in zip(small.tables[table], again.tables[table], strict=True):
            assert parquet_bytes(a) == parquet_bytes(b), table
    assert parquet_bytes(small.labels) == parquet_bytes(again.labels)


def test_another_seed_gives_another_business(small: Dataset) -> None:
    other = build_dataset(
        GeneratorConfig(end_date=END, seed=4, scale=0.15, years=1.2, business="highlands")
    )
    for table in ("customers", "ar_invoices", "bank_transactions"):
        assert not pa.concat_tables(small.tables[table]).equals(
            pa.concat_tables(other.tables[table])
        ), table


def test_the_validator_finds_nothing_on_any_ingest_date(small: Dataset, written: Path) -> None:
    store = LocalStore(written / "bronze")
    for day in small.ingest_dates:
        result = validate(store, day)
        assert result.problems.total == 0, result.problems.listed[:5]
        assert result.warnings.total == 0, result.warnings.listed[:5]
        assert set(result.rows) >= set(TABLE_NAMES)


def test_every_table_has_the_contract_schema_and_labels_sit_beside_bronze(
    small: Dataset, written: Path
) -> None:
    for table in TABLE_NAMES:
        for part in small.tables[table]:
            assert part.schema.equals(contract(table).schema, check_metadata=False), table
    labels = written / "labels" / LABELS_FILE
    assert labels.exists() and not (written / "bronze" / LABELS_FILE).exists()
    assert small.labels.schema.names == ["txn_id", "anomaly_type", "txn_date"]


def test_later_ingests_reissue_rows_with_newer_updated_at(small: Dataset) -> None:
    for table, key in (("ar_invoices", "invoice_id"), ("customers", "customer_id")):
        parts = small.tables[table]
        first = set(parts[0].column(key).to_pylist())
        later = pa.concat_tables(parts[1:]).to_pandas()
        again = later[later[key].isin(first)]
        assert len(again) > 0, table
        old = parts[0].to_pandas().set_index(key)["updated_at"]
        assert (again["updated_at"].to_numpy() > old.loc[again[key]].to_numpy()).all(), table
    statuses = snapshot(small, "ar_invoices")["status"]
    assert {"open", "paid", "partially_paid", "cancelled"} <= set(statuses)


def test_some_payments_are_entered_days_after_the_money_arrived(small: Dataset) -> None:
    pay = snapshot(small, "ar_payments")
    entered = local_dates(pay["updated_at"])
    lag = (pd.to_datetime(entered) - pd.to_datetime(pay["payment_date"])).dt.days
    assert (lag >= 2).mean() > 0.02
    assert (lag >= 0).all()


# -- the book -------------------------------------------------------------------------------


def test_invoice_totals_are_lines_plus_vat(small: Dataset) -> None:
    inv = snapshot(small, "ar_invoices").set_index("invoice_id")
    lines = snapshot(small, "ar_invoice_lines")
    gross = (lines["quantity"].astype(float) * lines["unit_price_vnd"].astype(float)).round()
    assert (
        lines["line_amount_vnd"].astype(float) == gross - lines["discount_vnd"].astype(float)
    ).all()
    net = lines.groupby("invoice_id")["line_amount_vnd"].sum()
    assert (
        net + inv.loc[net.index, "vat_amount_vnd"] == inv.loc[net.index, "total_amount_vnd"]
    ).all()


def test_due_dates_follow_the_customers_terms(small: Dataset) -> None:
    """Due = issue + the customer's terms; a customer put on credit hold (limit and terms
    cut to 0 after a default) keeps the terms its old invoices were issued under."""
    inv = snapshot(small, "ar_invoices")
    cust = snapshot(small, "customers").set_index("customer_id")
    days = (pd.to_datetime(inv["due_date"]) - pd.to_datetime(inv["issue_date"])).dt.days
    terms = inv["customer_id"].map(cust["payment_terms_days"])
    held = inv["customer_id"].map(cust["credit_limit_vnd"] == 0) & (terms == 0)
    assert (days[~held] == terms[~held]).all()
    assert set(days) <= {0, 30, 45, 60, 90, 120, 150, 180}
    assert (days[held].groupby(inv.loc[held, "customer_id"]).nunique() == 1).all()
    bills = snapshot(small, "ap_bills")
    sup = snapshot(small, "suppliers").set_index("supplier_id")["payment_terms_days"]
    days = (pd.to_datetime(bills["due_date"]) - pd.to_datetime(bills["issue_date"])).dt.days
    assert (days == bills["supplier_id"].map(sup)).all()


@pytest.mark.parametrize(
    ("docs", "key", "payments"),
    [("ar_invoices", "invoice_id", "ar_payments"), ("ap_bills", "bill_id", "ap_payments")],
)
def test_status_agrees_with_the_payments(
    small: Dataset, docs: str, key: str, payments: str
) -> None:
    d = snapshot(small, docs).set_index(key)
    paid = snapshot(small, payments).groupby(key)["amount_vnd"].sum()
    paid = paid.reindex(d.index, fill_value=0)
    total = d["total_amount_vnd"]
    assert (paid <= total).all()
    expected = pd.Series("partially_paid", index=d.index)
    expected[paid == 0] = "open"
    expected[paid == total] = "paid"
    live = d["status"] != "cancelled"
    assert (d.loc[live, "status"] == expected[live]).all()
    assert (paid[~live] == 0).all()


def test_every_non_cash_ar_payment_is_one_bank_receipt_of_the_same_amount(small: Dataset) -> None:
    b = bank(small)
    genuine = b[b["label"].isna()]
    pay = snapshot(small, "ar_payments")
    names = snapshot(small, "customers").set_index("customer_id")["customer_name"]
    non_cash = pay[pay["method"] != "cash"]
    lines = genuine.set_index("reference_id")
    assert genuine["reference_id"].dropna().is_unique
    matched = lines.loc[non_cash["payment_id"]]
    assert (matched["amount"].to_numpy() == non_cash["amount_vnd"].astype("int64").to_numpy()).all()
    assert (matched["category"] == "sales_receipt").all()
    assert (matched["date"].to_numpy() == non_cash["payment_date"].to_numpy()).all()
    assert (
        matched["counterparty"].to_numpy() == non_cash["customer_id"].map(names).to_numpy()
    ).all()
    assert (matched["bank_account_id"].to_numpy() == non_cash["bank_account_id"].to_numpy()).all()
    cash = pay.loc[pay["method"] == "cash", "payment_id"]
    assert len(cash) > 0 and not b["reference_id"].isin(cash).any()
    receipts = genuine[genuine["category"] == "sales_receipt"]
    assert set(receipts["reference_id"]) == set(non_cash["payment_id"])


def test_every_non_cash_ap_payment_is_one_bank_transfer_out(small: Dataset) -> None:
    b = bank(small)
    genuine = b[b["label"].isna()].dropna(subset=["reference_id"]).set_index("reference_id")
    pay = snapshot(small, "ap_payments")
    names = snapshot(small, "suppliers").set_index("supplier_id")["supplier_name"]
    non_cash = pay[pay["method"] != "cash"]
    matched = genuine.loc[non_cash["payment_id"]]
    assert len(matched) == len(non_cash)
    assert (
        matched["amount"].to_numpy() == -non_cash["amount_vnd"].astype("int64").to_numpy()
    ).all()
    assert (matched["category"] == "supplier_payment").all()
    assert (
        matched["counterparty"].to_numpy() == non_cash["supplier_id"].map(names).to_numpy()
    ).all()


def test_suppliers_are_paid_on_the_10th_or_25th_payment_runs(small: Dataset) -> None:
    """Runs are on the 10th and 25th, or on the last working day before when those are closed."""
    for day in pd.to_datetime(snapshot(small, "ap_payments")["payment_date"]).dt.date:
        assert not closed(day), day
        target = day.replace(day=10 if day.day <= 10 else 25)
        skipped = [day + dt.timedelta(days=k) for k in range(1, (target - day).days + 1)]
        assert all(closed(d) for d in skipped), day


# -- calendar habits ------------------------------------------------------------------------


def test_salaries_are_paid_on_the_5th_one_transfer_per_employee(small: Dataset) -> None:
    b = bank(small)
    salary = b[b["description"].str.startswith("TRA LUONG") & b["label"].isna()]
    assert len(salary) > 0 and (salary["category"] == "payroll").all()
    assert (salary["amount"] < 0).all()
    for day, group in salary.groupby("date"):
        fifth = day.replace(day=5)
        assert day.day <= 5, day
        skipped = [fifth - dt.timedelta(days=k) for k in range(0, 5 - day.day)]
        assert all(closed(d) for d in skipped), day
        assert group["counterparty"].is_unique
    per_month = salary.groupby("date")["counterparty"].nunique()
    assert per_month.nunique() == 1  # the same staff every month


def test_13th_month_salary_is_paid_before_tet(small: Dataset) -> None:
    b = bank(small)
    bonus = b[b["description"].str.startswith("THUONG TET")]
    assert bonus["date"].nunique() >= 1 and (bonus["category"] == "payroll").all()
    for day in bonus["date"]:
        tet = TET[day.year] if day < TET[day.year] else TET[day.year + 1]
        assert 10 <= (tet - day).days <= 16, day


def test_vat_is_paid_by_the_20th_of_the_next_month(small: Dataset) -> None:
    b = bank(small)
    vat = b[b["description"].str.startswith("NOP THUE GTGT THANG")]
    assert len(vat) >= 6 and (vat["category"] == "tax").all()
    for desc, day in zip(vat["description"], vat["date"], strict=True):
        month, year = (int(x) for x in desc.split()[4].split("/"))
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        assert (day.year, day.month) == (following.year, following.month), desc
        assert 14 <= day.day <= 20, desc


def test_nothing_is_sold_or_paid_to_suppliers_while_closed_for_tet(small: Dataset) -> None:
    issued = pd.to_datetime(snapshot(small, "ar_invoices")["issue_date"]).dt.date
    assert not any(tet_closed(d) for d in issued)
    paid = pd.to_datetime(snapshot(small, "ap_payments")["payment_date"]).dt.date
    assert not any(tet_closed(d) for d in paid)


def test_sales_follow_the_rains_not_the_harvest(small: Dataset) -> None:
    inv = snapshot(small, "ar_invoices")
    inv = inv[inv["status"] != "cancelled"]
    month = pd.to_datetime(inv["issue_date"]).dt.to_period("M")
    net = (inv["total_amount_vnd"] - inv["vat_amount_vnd"]).astype(float).groupby(month).sum()
    rains = net[[pd.Period("2025-05"), pd.Period("2025-06")]].sum()
    harvest = net[[pd.Period("2025-11"), pd.Period("2025-12")]].sum()
    assert rains > 3 * harvest


def test_crop_credit_farmers_pay_from_the_harvest(small: Dataset) -> None:
    """Farmers on 150-180 day terms pay when their coffee is sold: December to March."""
    first = pa.concat_tables(small.tables["customers"]).to_pandas()
    first = first.sort_values("updated_at").drop_duplicates("customer_id", keep="first")
    credit = first[(first["segment"] == "retail") & (first["payment_terms_days"] >= 150)]
    pay = snapshot(small, "ar_payments")
    months = pd.to_datetime(pay[pay["customer_id"].isin(credit["customer_id"])]["payment_date"])
    assert len(months) > 50
    assert months.dt.month.isin([11, 12, 1, 2, 3]).mean() > 0.95


def test_cash_is_deposited_on_mondays_and_receipts_swept_on_fridays(small: Dataset) -> None:
    b = bank(small)
    deposits = b[b["description"].str.endswith("NOP TIEN MAT VAO TAI KHOAN")]
    sweeps = b[b["description"].str.startswith("CHUYEN TIEN NOI BO SANG TK") & (b["amount"] > 0)]
    assert len(deposits) > 20 and len(sweeps) > 20
    for day in deposits["date"]:  # Monday, or the next working day when Monday is closed
        monday = day - dt.timedelta(days=day.weekday())
        assert all(closed(monday + dt.timedelta(days=k)) for k in range(day.weekday())), day
    for day in sweeps["date"]:  # Friday, or the last working day before it
        friday = day + dt.timedelta(days=(4 - day.weekday()) % 7)
        skipped = [day + dt.timedelta(days=k) for k in range(1, (friday - day).days + 1)]
        assert all(closed(d) for d in skipped), day


def test_the_history_opens_with_last_seasons_crop_credit(small: Dataset) -> None:
    """Invoices issued before the first day are there only when still wholly unpaid on it,
    and the first harvest of the history brings their payments."""
    inv = snapshot(small, "ar_invoices")
    start = small.config.start_date
    opening = inv[pd.to_datetime(inv["issue_date"]).dt.date < start]
    assert len(opening) > 50
    pay = snapshot(small, "ar_payments")
    assert (pd.to_datetime(pay["payment_date"]).dt.date >= start).all()
    settled = pay[pay["invoice_id"].isin(opening["invoice_id"])]
    assert settled["amount_vnd"].sum() > 0
    month = pd.to_datetime(settled["payment_date"]).dt.month
    assert month.isin([11, 12, 1, 2, 3]).mean() > 0.5  # mostly from the harvest
    txn_at = pa.concat_tables(small.tables["bank_transactions"]).to_pandas()["txn_at"]
    assert (local_dates(txn_at) >= start).all()


# -- planted anomalies ----------------------------------------------------------------------


def test_anomalies_are_rare_labelled_and_point_at_real_lines(medium: Dataset) -> None:
    b = bank(medium)
    labels = medium.labels.to_pandas()
    assert len(b) > 3000 and labels["txn_id"].is_unique
    assert 0.004 <= len(labels) / len(b) <= 0.012
    assert set(labels["anomaly_type"]) <= KINDS and len(set(labels["anomaly_type"])) >= 6
    lines = b.set_index("txn_id").loc[labels["txn_id"]]
    assert (lines["date"].to_numpy() == labels["txn_date"].to_numpy()).all()


def test_each_kind_looks_like_what_it_is(medium: Dataset) -> None:
    b = bank(medium)
    genuine = b[b["label"].isna()]
    kind = {k: b[b["label"] == k] for k in KINDS}
    split = kind["split_below_approval_limit"]["amount"]
    assert ((-split >= 190_000_000) & (-split < 200_000_000) & (split % 500_000 == 0)).all()
    cash = kind["cash_deposit_structuring"]["amount"]
    assert ((cash >= 370_000_000) & (cash < 400_000_000)).all()
    night = kind["night_transfer_new_payee"]
    hours = (night["txn_at"] + pd.Timedelta(hours=7)).dt.hour
    assert hours.isin([22, 23, 0, 1, 2, 3, 4]).all() and (night["amount"] < 0).all()
    assert not night["counterparty"].isin(genuine["counterparty"]).any()
    refunds = kind["refund_without_invoice"]
    names = {n.upper() for n in snapshot(medium, "customers")["customer_name"]}
    assert not refunds["counterparty"].isin(names).any() and (refunds["amount"] < 0).all()
    for k in ("duplicate_supplier_payment", "salary_paid_twice"):
        for _, row in kind[k].iterrows():
            earlier = genuine[
                (genuine["counterparty"] == row["counterparty"])
                & (genuine["amount"] == row["amount"])
                & (genuine["txn_at"] < row["txn_at"])
                & (genuine["txn_at"] > row["txn_at"] - pd.Timedelta(days=5))
            ]
            assert len(earlier) >= 1, (k, row["txn_id"])
    dup = kind["duplicate_supplier_payment"]
    assert dup["reference_id"].isin(genuine["reference_id"]).all()
    tet = kind["payment_during_tet_shutdown"]
    assert len(tet) >= 1 and all(tet_closed(d) for d in tet["date"])
    for _, row in kind["extra_zero_amount"].iterrows():
        same = genuine[(genuine["counterparty"] == row["counterparty"])]
        assert abs(row["amount"]) > 5 * same["amount"].abs().median(), row["txn_id"]


def test_bronze_carries_no_trace_of_the_labels(medium: Dataset) -> None:
    b = pa.concat_tables(medium.tables["bank_transactions"])
    assert b.schema.names == list(contract("bank_transactions").column_names)
    text = " ".join(b.column("description").to_pylist()).lower()
    assert not any(k in text for k in KINDS)


def test_a_history_without_tet_has_no_tet_anomaly() -> None:
    ds = build_dataset(
        GeneratorConfig(end_date=dt.date(2025, 7, 3), scale=0.3, years=0.3, business="highlands")
    )
    kinds = set(ds.labels.column("anomaly_type").to_pylist())
    assert kinds and "payment_during_tet_shutdown" not in kinds


# -- the CLI --------------------------------------------------------------------------------


def test_cli_generates_the_second_business_and_rejects_an_unknown_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMEPULSE_HOME", str(tmp_path))
    runner = CliRunner()
    args = ["generate-data", "--end-date", "2025-06-30", "--scale", "0.05", "--years", "0.5"]
    result = runner.invoke(app, [*args, "--business", "highlands"])
    assert result.exit_code == 0, result.output
    names = (
        pa.concat_tables(
            [
                LocalStore(tmp_path / "bronze").read_file(f.uri)
                for f in LocalStore(tmp_path / "bronze").list_files("customers")
            ]
        )
        .column("customer_name")
        .to_pylist()
    )
    assert any("Đại lý" in n or "Cà phê" in n for n in names)
    assert (tmp_path / "labels" / LABELS_FILE).exists()
    bad = runner.invoke(app, [*args, "--business", "bakery"])
    assert bad.exit_code == 2
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "bakery" in lines[0] and "highlands" in lines[0]

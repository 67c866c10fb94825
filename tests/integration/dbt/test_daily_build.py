"""dbt build of every daily-etl stage on DuckDB: all tests pass and gold holds what the seed
lists, with the UC05 score covering every open receivable exactly once."""

from __future__ import annotations

import json

import pytest

from tests.integration.dbt.bronze_fixture import build_rows
from tests.integration.dbt.conftest import DAILY_DBT_STAGES, END_DATE, Built

pytestmark = pytest.mark.integration


def test_every_daily_stage_passes_all_its_tests(built: Built) -> None:
    for stage in DAILY_DBT_STAGES:
        result = built.results[stage]
        failed = [o.describe() for o in result.outcomes if o.failed]
        assert result.success and not failed, (stage, failed, result.error)
        document = json.loads((built.settings.home / "dbt" / f"{stage}.json").read_text())
        assert document["success"] and document["n_failed"] == 0
        assert document["n_models"] >= 1 and document["n_tests"] >= 5
    scores = built.results["dbt-ml-scores"]
    assert sum(1 for o in scores.outcomes if o.resource_type == "unit_test") == 4


def test_gold_holds_nine_dims_six_facts_five_kpis_one_score(built: Built) -> None:
    tables = {
        r[0]
        for r in built.query(
            "select table_name from information_schema.tables where table_schema = 'gold'"
        )
    }
    assert len({t for t in tables if t.startswith("dim_")}) == 9
    assert {t for t in tables if t.startswith("fct_")} >= {
        "fct_sales_lines",
        "fct_ar_invoices",
        "fct_ar_payments",
        "fct_ap_bills",
        "fct_ap_payments",
        "fct_bank_transactions",
    }
    assert {t for t in tables if t.startswith("kpi_")} == {
        "kpi_ar_ageing",
        "kpi_daily_cash_flow",
        "kpi_daily_revenue",
        "kpi_working_capital",
        "kpi_alert_precision",  # UC10 verdicts; empty until someone reviews an alert
    }
    assert {t for t in tables if t.startswith("ml_")} == {"ml_ar_priority_scores"}
    assert {"lnk_invoice_payments", "lnk_invoice_review_sample"} <= tables


def test_progress_counted_the_rows_of_every_table(built: Built) -> None:
    facts = {o.name: o for o in built.results["dbt-gold-facts"].outcomes}
    (n_invoices,) = built.query("select count(*) from gold.fct_ar_invoices")[0]
    assert facts["fct_ar_invoices"].rows == n_invoices > 100


def test_every_open_receivable_is_scored_exactly_once(built: Built) -> None:
    (n_open,) = built.query("select count(*) from gold.fct_ar_invoices where outstanding_vnd > 0")[
        0
    ]
    n_scored, n_distinct, low, high, ranks = built.query(
        "select count(*), count(distinct invoice_id), min(priority_score), max(priority_score),"
        " max(priority_rank) from gold.ml_ar_priority_scores"
    )[0]
    assert n_open > 10
    assert n_scored == n_distinct == n_open == ranks
    assert 0 <= low <= high <= 100
    mismatched = built.query(
        "select count(*) from gold.ml_ar_priority_scores"
        " where priority_score <> overdue_score + amount_score + risk_score"
    )
    assert mismatched == [(0,)]


def test_training_sets_have_the_contracts_columns_and_types(built: Built) -> None:
    def columns(table: str) -> dict[str, str]:
        return dict(
            built.query(
                "select column_name, data_type from information_schema.columns"
                f" where table_schema = 'silver' and table_name = '{table}'"
            )
        )

    assert columns("ml_training_uc09_daily_cashflow") == {
        "cash_date": "DATE",
        "inflow_vnd": "DECIMAL(18,0)",
        "outflow_vnd": "DECIMAL(18,0)",
        "net_vnd": "DECIMAL(18,0)",
        "n_transactions": "INTEGER",
        "as_of_date": "DATE",
    }
    uc10 = columns("ml_training_uc10_transactions")
    assert uc10["txn_at"] == "TIMESTAMP" and uc10["amount_vnd"] == "DECIMAL(18,0)"
    assert set(uc10) == {
        "txn_id",
        "bank_account_id",
        "txn_at",
        "amount_vnd",
        "counterparty",
        "category",
        "description",
        "reference_id",
        "as_of_date",
    }
    assert uc10["as_of_date"] == "DATE"
    (gaps,) = built.query(
        "select max(cash_date) - min(cash_date) + 1 - count(*)"
        " from silver.ml_training_uc09_daily_cashflow"
    )[0]
    assert gaps == 0


def test_silver_keeps_the_newest_version_of_a_redelivered_row(built: Built) -> None:
    # The fixture delivers some invoices first with an older updated_at and status 'open',
    # then again a day later with their real status: the second delivery must win.
    _, second = build_rows(END_DATE)
    redelivered = {r["invoice_id"]: r["status"] for r in second["ar_invoices"]}
    assert any(status != "open" for status in redelivered.values())
    rows = built.query(
        "select invoice_id, status, ingest_date, count(*) over (partition by invoice_id)"
        " from silver.stg_bronze__ar_invoices"
    )
    seen = {r[0]: r for r in rows if r[0] in redelivered}
    assert set(seen) == set(redelivered)
    for invoice_id, status, ingest_date, copies in seen.values():
        assert (status, str(ingest_date), copies) == (redelivered[invoice_id], "2026-06-30", 1)


def test_review_sample_is_md5_bucket_zero(built: Built) -> None:
    # Hand-checked with coreutils over the fixture's ids INV00000..INV00159:
    #   printf INV00070 | md5sum -> 09066dec... ; 0x09066dec = 151416300, % 100 = 0
    #   printf INV00096 | md5sum -> e01424b4... ; 0xe01424b4 = 3759416500, % 100 = 0
    # and no other id of the 160 has a first-8-hex-digits value divisible by 100.
    invoices = {r[0] for r in built.query("select invoice_id from gold.fct_ar_invoices")}
    assert {"INV00070", "INV00096"} <= invoices
    rows = built.query(
        "select invoice_id, sample_bucket from gold.lnk_invoice_review_sample order by 1"
    )
    assert rows == [("INV00070", 0), ("INV00096", 0)]


def test_built_columns_are_the_documented_columns(built: Built) -> None:
    manifest = json.loads((built.settings.home / "dbt" / "target" / "manifest.json").read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or "/external/" in node["original_file_path"]:
            continue
        live = node["schema"].removesuffix("_staging")
        built_columns = {
            r[0]
            for r in built.query(
                "select column_name from information_schema.columns"
                f" where table_schema = '{live}' and table_name = '{node['name']}'"
            )
        }
        assert built_columns == set(node["columns"]), node["name"]

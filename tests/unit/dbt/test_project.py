"""The dbt project's structure and conventions, checked on its parsed manifest (no database).

Layout rules from the house style: staging models are the only ones calling source(), every
model has a yml with a grain and described columns, keys are tested unique + not_null, gold
folders carry their stage tag and name prefix, and the UC05 rules are pinned by unit tests.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.unit.dbt.conftest import model_folder, own_models

pytestmark = pytest.mark.unit

# folder -> (name prefix, tag, materialization)
FOLDERS = {
    "models/silver/bronze": ("stg_bronze__", "silver", "view"),
    "models/silver/features": ("feat_", "silver", "table"),
    "models/silver/ml_training": ("ml_training_", "silver", "table"),
    "models/gold/dims": ("dim_", "gold_dims", "table"),
    "models/gold/facts": ("fct_", "gold_facts", "table"),
    "models/gold/links": ("lnk_", "gold_links", "table"),
    "models/gold/kpis": ("kpi_", "gold_kpis", "table"),
    "models/gold/ml_scores": ("ml_", "ml_scores", "table"),
}
BRONZE_TABLES = {
    "customers",
    "suppliers",
    "products",
    "ar_invoices",
    "ar_invoice_lines",
    "ar_payments",
    "ap_bills",
    "ap_payments",
    "bank_accounts",
    "bank_transactions",
    "alert_feedback",  # optional: users' verdicts on UC10 alerts
}


def _tests_by_model(manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            by_model[node["attached_node"]].append(node)
    return by_model


def test_every_model_sits_in_a_known_folder_with_its_prefix_tag_and_materialization(
    manifest: dict[str, Any],
) -> None:
    models = own_models(manifest)
    assert len(models) >= 30
    for node in models:
        folder = str(model_folder(node))
        assert folder in FOLDERS, f"{node['name']} is in an unexpected folder {folder}"
        prefix, tag, materialized = FOLDERS[folder]
        assert node["name"].startswith(prefix), f"{node['name']} should start with {prefix}"
        assert tag in node["tags"], f"{node['name']} lacks tag {tag}"
        assert node["config"]["materialized"] == materialized, node["name"]


def test_gold_holds_the_seeds_counts(manifest: dict[str, Any]) -> None:
    names = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    dims = {n for n in names if n.startswith("dim_")}
    # dim_province is external-sync's (models/gold/external); the other eight are ours.
    assert dims >= {
        "dim_date",
        "dim_customer",
        "dim_supplier",
        "dim_product",
        "dim_bank_account",
        "dim_payment_method",
        "dim_channel",
        "dim_expense_category",
    }
    assert len({n for n in names if n.startswith("fct_") and "macro" not in n}) == 6
    assert len({n for n in names if n.startswith("kpi_")}) == 5
    assert {n for n in names if n.startswith("lnk_")} == {
        "lnk_invoice_payments",
        "lnk_invoice_review_sample",
    }
    assert {
        "ml_ar_priority_scores",
        "ml_training_uc09_daily_cashflow",
        "ml_training_uc10_transactions",
        "fct_bank_transactions",
    } <= names


PARENT_SOURCES = {"stg_bronze__ar_invoice_lines": {"ar_invoices"}}


def test_one_staging_view_per_bronze_table_and_only_staging_reads_sources(
    manifest: dict[str, Any],
) -> None:
    staged = set()
    for node in own_models(manifest):
        sources = [d for d in node["depends_on"]["nodes"] if d.startswith("source.")]
        if node["name"].startswith("stg_"):
            own = node["name"].split("__", 1)[1]
            tables = {s.rsplit(".", 1)[-1] for s in sources}
            # Invoice lines carry no audit stamp: they become visible with their invoice, so
            # their staging view also reads the invoices' versions (point in time).
            assert tables == {own} | PARENT_SOURCES.get(node["name"], set()), node["name"]
            staged.add(own)
        else:
            assert not sources, f"{node['name']} reads a source directly: {sources}"
    assert staged == BRONZE_TABLES


def test_bronze_sources_match_the_contract_and_declare_freshness(manifest: dict[str, Any]) -> None:
    sources = {s["name"]: s for s in manifest["sources"].values() if s["source_name"] == "bronze"}
    assert set(sources) == BRONZE_TABLES
    for name, source in sources.items():
        assert source["columns"], name
        assert all(c["data_type"] for c in source["columns"].values()), name
        if name != "ar_invoice_lines":  # immutable lines carry no updated_at
            assert source["loaded_at_field"] == "updated_at", name
            assert source["freshness"]["error_after"]["count"], name


def test_every_model_documents_its_grain_and_columns(manifest: dict[str, Any]) -> None:
    for node in own_models(manifest):
        assert "Grain:" in node["description"], f"{node['name']}: description must state the grain"
        assert node["patch_path"], f"{node['name']} has no yml"
        assert node["columns"], f"{node['name']} documents no columns"
        undocumented = [c for c, v in node["columns"].items() if not v["description"]]
        assert not undocumented, f"{node['name']}: undocumented columns {undocumented}"


def test_every_model_has_a_tested_key(manifest: dict[str, Any]) -> None:
    tests = _tests_by_model(manifest)
    for node in own_models(manifest):
        kinds = defaultdict(set)
        for test in tests[node["unique_id"]]:
            meta = test["test_metadata"]
            kinds[meta["name"]].add(meta["kwargs"].get("column_name"))
        if node["name"] in {"kpi_daily_cash_flow", "kpi_alert_precision"} or node[
            "name"
        ].startswith("stg_bronze__ar_invoice_lines"):
            assert "unique_combination_of_columns" in kinds, node["name"]
            continue
        keys = kinds["unique"] & kinds["not_null"]
        assert keys, f"{node['name']} has no column tested both unique and not_null"


def test_foreign_keys_accepted_values_and_invariants_are_tested(manifest: dict[str, Any]) -> None:
    kinds: dict[str, int] = defaultdict(int)
    for test in manifest["nodes"].values():
        if test["resource_type"] == "test" and "/external/" not in test["original_file_path"]:
            kinds[test["test_metadata"]["name"]] += 1
    assert kinds["relationships"] >= 25
    assert kinds["accepted_values"] >= 15
    assert kinds["expression_is_true"] >= 10
    assert kinds["accepted_range"] >= 20


def test_uc05_rules_are_pinned_by_unit_tests(manifest: dict[str, Any]) -> None:
    unit_tests = {u["name"]: u for u in manifest["unit_tests"].values()}
    for name in (
        "uc05_overdue_score_boundaries",
        "uc05_amount_score_boundaries",
        "uc05_risk_score_boundaries",
        "uc05_total_rank_band_and_reason",
    ):
        assert name in unit_tests
        assert unit_tests[name]["model"] == "ml_ar_priority_scores"
    days = {
        row["days_overdue"]
        for row in unit_tests["uc05_overdue_score_boundaries"]["given"][0]["rows"]
    }
    assert {0, 1, 30, 31, 60, 61, 90, 91} <= days


def test_schemas_are_exactly_silver_and_gold_with_tables_in_the_work_schema(
    manifest: dict[str, Any],
) -> None:
    for node in own_models(manifest):
        layer = "silver" if "/silver/" in node["original_file_path"] else "gold"
        expected = layer if node["config"]["materialized"] == "view" else f"{layer}_staging"
        assert node["schema"] == expected, node["name"]
    assert any(h for h in manifest["macros"] if h.endswith("publish_staged"))

"""How a dbt build's outcome reads: progress lines, the failure message, the results JSON."""

from __future__ import annotations

import pytest

from smepulse.catalog import load_catalog
from smepulse.dbt_results import NodeOutcome, failure_lines, summarise
from smepulse.dbt_selection import dbt_stages, selection

pytestmark = pytest.mark.unit


def _node(name: str, kind: str = "model", status: str = "success", **extra: object) -> NodeOutcome:
    return NodeOutcome(f"{kind}.smepulse.{name}", name, kind, status, 1.234, **extra)  # type: ignore[arg-type,unused-ignore]


def test_progress_line_of_a_model_shows_rows_and_time() -> None:
    line = _node("fct_ar_invoices", rows=30112).describe()
    assert line == "model fct_ar_invoices ok (30,112 rows, 1.2s)"


def test_progress_line_of_a_failed_test_names_the_model_and_failing_rows() -> None:
    line = _node(
        "unique_dim_customer_customer_id",
        "test",
        "fail",
        failures=3,
        model="dim_customer",
        message="Got 3 results",
    ).describe()
    assert "test unique_dim_customer_customer_id on dim_customer FAIL" in line
    assert "3 failing rows" in line


def test_failure_lines_list_tests_first_with_their_model() -> None:
    outcomes = [
        _node("fct_ar_invoices"),
        _node("kpi_x", status="error", message="Runtime Error in model kpi_x\n  bad column"),
        _node(
            "not_null_fct_ar_invoices_customer_id",
            "test",
            "fail",
            failures=2,
            model="fct_ar_invoices",
        ),
        _node("downstream", status="skipped"),
    ]
    lines = failure_lines(outcomes)
    assert (
        lines[0]
        == "test not_null_fct_ar_invoices_customer_id on model fct_ar_invoices: 2 failing rows"
    )
    assert lines[1] == "model kpi_x: bad column"  # dbt's header line dropped, the cause kept
    assert len(lines) == 2  # skipped nodes are a consequence, not a cause


def test_summary_counts_by_type_and_status() -> None:
    summary = summarise(
        [
            _node("a"),
            _node("b", rows=5),
            _node("t1", "test", "pass"),
            _node("t2", "test", "fail", failures=1, model="a"),
            _node("u", "unit_test", "pass"),
        ]
    )
    assert summary["counts"] == {
        "model": {"success": 2},
        "test": {"pass": 1, "fail": 1},
        "unit_test": {"pass": 1},
    }
    assert (summary["n_models"], summary["n_tests"], summary["n_failed"]) == (2, 3, 1)
    assert summary["failed"][0]["model"] == "a"


def test_each_daily_stage_excludes_only_the_later_stages() -> None:
    # The packaged catalog's daily chain, written out by hand: each stage builds its tag and
    # excludes exactly the tags built after it (derived from the DAG, not listed anywhere).
    daily = load_catalog().pipeline("daily-etl")
    tags = ["silver", "gold_dims", "gold_facts", "gold_links", "gold_kpis", "ml_scores"]
    stages = [s.name for s in dbt_stages(daily)]
    assert stages == [
        "dbt-silver",
        "dbt-gold-dims",
        "dbt-gold-facts",
        "dbt-gold-links",
        "dbt-gold-kpis",
        "dbt-ml-scores",
    ]
    for i, (stage, tag) in enumerate(zip(stages, tags, strict=True)):
        chosen = selection(stage)
        assert chosen.select == (f"tag:{tag}",)
        extra = ("tag:external",) if stage == "dbt-silver" else ()
        assert chosen.exclude == (*(f"tag:{t}" for t in tags[i + 1 :]), *extra)
        assert chosen.indirect_selection == "eager"
    assert selection("dbt-external-gold").indirect_selection == "cautious"

"""How a dbt build's outcome reads: progress lines, the failure message, the results JSON."""

from __future__ import annotations

import pytest

from smepulse.dbt_results import NodeOutcome, failure_lines, summarise
from smepulse.dbt_selection import DAILY_TAGS, SELECTIONS

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
    stages = [stage for stage, _ in DAILY_TAGS]
    assert stages == [
        "dbt-silver",
        "dbt-gold-dims",
        "dbt-gold-facts",
        "dbt-gold-links",
        "dbt-gold-kpis",
        "dbt-ml-scores",
    ]
    for i, (stage, tag) in enumerate(DAILY_TAGS):
        selection = SELECTIONS[stage]
        assert selection.select == (f"tag:{tag}",)
        later = {f"tag:{t}" for _, t in DAILY_TAGS[i + 1 :]}
        assert later <= set(selection.exclude)
        assert not {f"tag:{t}" for _, t in DAILY_TAGS[: i + 1]} & set(selection.exclude)
    assert "tag:external" in SELECTIONS["dbt-silver"].exclude
    assert SELECTIONS["dbt-external-gold"].indirect_selection == "cautious"

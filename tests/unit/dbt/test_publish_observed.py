"""The publish step is observed, not assumed: every table a build staged must have a live twin
with the same rows (hand-made outcomes and row counts)."""

from __future__ import annotations

import pytest

from smepulse.dbt_results import NodeOutcome, observe_publish

pytestmark = pytest.mark.unit

STAGED = '"warehouse"."gold_staging"."fct_ar_invoices"'
LIVE = '"warehouse"."gold"."fct_ar_invoices"'


def model(relation: str, status: str = "success") -> NodeOutcome:
    return NodeOutcome(
        "model.smepulse.x", relation.split(".")[-1].strip('"'), "model", status, 0.1,
        relation=relation,
    )  # fmt: skip


def test_published_when_every_staged_table_has_its_live_twin() -> None:
    counts = {STAGED: 120, LIVE: 120}
    assert observe_publish([model(STAGED)], counts.get) == (True, None)


def test_a_missing_live_table_is_not_published() -> None:
    published, why = observe_publish([model(STAGED)], {STAGED: 120}.get)
    assert not published
    assert why == f"fct_ar_invoices: {LIVE} is missing after the publish step"


def test_a_live_table_left_from_before_is_not_published() -> None:
    published, why = observe_publish([model(STAGED)], {STAGED: 120, LIVE: 117}.get)
    assert not published
    assert why == f"fct_ar_invoices: {LIVE} holds 117 rows, the tested {STAGED} 120"


def test_views_and_unstaged_builds_have_nothing_to_publish() -> None:
    view = model('"warehouse"."silver"."stg_bronze__customers"')
    test = NodeOutcome("test.smepulse.t", "t", "test", "pass", 0.1)
    assert observe_publish([view, test], {}.get) == (True, None)

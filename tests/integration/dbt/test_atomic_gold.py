"""Write-audit-publish: a dbt build whose tests fail leaves the live tables unchanged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smepulse.dbt_runner import run_build, run_stage
from smepulse.errors import StageError
from tests.integration.dbt.bronze_fixture import SCHEMAS
from tests.integration.dbt.conftest import Built

pytestmark = pytest.mark.integration

# fct_ar_payments keeps the payments up to the logical date: its last payment date tells
# which logical date built the table.
FINGERPRINT = "select count(*), max(payment_date), sum(amount_vnd) from {schema}.fct_ar_payments"


def test_failing_gold_test_keeps_the_previous_gold_table(
    warehouse_copy: Callable[[dt.date], Built],
) -> None:
    before = warehouse_copy(dt.date(2026, 6, 30))
    live_before = before.query(FINGERPRINT.format(schema="gold"))
    earlier = warehouse_copy(dt.date(2026, 5, 31))
    # A negative tolerance makes "payments never exceed the invoice total" fail on every row.
    result = run_build(
        earlier.settings, "dbt-gold-facts", extra_vars={"payment_tolerance_vnd": -(10**15)}
    )
    assert not result.success
    failed = {(o.name, o.model) for o in result.outcomes if o.failed}
    assert any(
        name.startswith("expression_is_true_fct_ar_invoices") and model == "fct_ar_invoices"
        for name, model in failed
    ), failed
    # The new tables were built (work schema, as of 31 May) but never published.
    assert str(earlier.query(FINGERPRINT.format(schema="gold_staging"))[0][1]) <= "2026-05-31"
    assert str(live_before[0][1]) > "2026-05-31"
    assert earlier.query(FINGERPRINT.format(schema="gold")) == live_before

    passing = run_build(earlier.settings, "dbt-gold-facts")
    assert passing.success
    assert str(earlier.query(FINGERPRINT.format(schema="gold"))[0][1]) <= "2026-05-31"


def test_failed_stage_names_the_test_and_model_and_keeps_silver(
    warehouse_copy: Callable[[dt.date], Built],
) -> None:
    # The next day's run (a run for 30 June no longer reads ingests dated after it).
    built = warehouse_copy(dt.date(2026, 7, 1))
    silver_before = built.query(
        "select count(*), sum(outstanding_vnd) from silver.feat_ar_invoice_balances"
    )
    # That day's delivery holds an invoice of a customer nobody knows: an orphan foreign key.
    folder = Path(built.settings.bronze_root) / "ar_invoices" / "ingest_date=2026-07-01"
    folder.mkdir(parents=True)
    row = {
        "invoice_id": "INV-ORPHAN",
        "customer_id": "C-NOBODY",
        "issue_date": dt.date(2026, 6, 1),
        "due_date": dt.date(2026, 7, 1),
        "channel": "store",
        "total_amount_vnd": 1000,
        "vat_amount_vnd": 0,
        "status": "open",
        "updated_at": dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
    }
    pq.write_table(
        pa.Table.from_pylist([row], schema=SCHEMAS["ar_invoices"]), folder / "part-0.parquet"
    )
    with pytest.raises(StageError) as caught:
        run_stage(built.settings, "dbt-silver")
    message = str(caught.value)
    assert "relationships_stg_bronze__ar_invoices_customer_id" in message
    assert "on model stg_bronze__ar_invoices" in message
    assert "left unchanged" in message
    assert (
        built.query("select count(*), sum(outstanding_vnd) from silver.feat_ar_invoice_balances")
        == silver_before
    )

"""A catalog rule as data: dbt-gold-dims's ``excludeWhenMissing`` builds the other dimensions
while external-sync's silver (which dim_province is built from) does not exist yet."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable

import duckdb
import pytest

from smepulse.dbt_runner import run_build
from tests.integration.dbt.conftest import END_DATE, Built

pytestmark = pytest.mark.integration


def test_gold_dims_without_external_silver_builds_the_other_dimensions(
    warehouse_copy: Callable[[dt.date], Built], caplog: pytest.LogCaptureFixture
) -> None:
    copy = warehouse_copy(END_DATE)
    # A warehouse external-sync never ran on: no external silver views, no dim_province.
    con = duckdb.connect(str(copy.settings.warehouse_path))
    try:
        for (view,) in con.execute(
            "select table_name from information_schema.tables"
            " where table_schema = 'silver' and table_name like 'stg_external__%'"
        ).fetchall():
            con.execute(f"drop view silver.{view}")
        con.execute("drop table gold.dim_province")
        con.execute("drop table gold_staging.dim_province")
    finally:
        con.close()

    with caplog.at_level(logging.WARNING, logger="smepulse.dbt_runner"):
        result = run_build(copy.settings, "dbt-gold-dims")

    assert result.success, [o.describe() for o in result.outcomes if o.failed]
    models = {o.name for o in result.outcomes if o.resource_type == "model"}
    assert "dim_province" not in models
    assert {"dim_customer", "dim_supplier", "dim_date"} <= models
    assert "silver.stg_external__provinces is missing: building without tag:external" in (
        caplog.text
    )
    assert "run the external-sync pipeline to add dim_province" in caplog.text
    document = json.loads(result.results_path.read_text())
    assert document["exclude"][-1] == "tag:external"
    assert copy.query(
        "select count(*) from information_schema.tables where table_name = 'dim_province'"
    ) == [(0,)]

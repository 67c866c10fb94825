"""The report stage on a real DuckDB gold schema: complete data, and data still missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smepulse.settings import Settings

from .gold_fixture import DAY, build_forecast_components, build_gold, write_report

pytestmark = pytest.mark.integration


def test_full_report_is_self_contained_with_every_section(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, logical_date=DAY, pipeline="daily-etl", run_id="daily-etl-20250630"
    )
    build_gold(settings)
    path = write_report(settings)
    html = path.read_text()
    for section in ("kpis", "forecast", "receivables", "anomalies", "tables", "dbt"):
        assert f'id="{section}"' in html
    assert html.count("<svg") == 2  # forecast chart and priority bands chart
    assert "not available yet" not in html.lower()
    assert "INV-000001" in html and "TXN-20" in html
    assert "gold.ml_cashflow_forecast" in html and ">30<" in html  # row count of the forecast table
    assert "Made by smepulse-uc09-baseline version 3 (seasonal_naive)" in html
    assert "11 pass" in html and "accepted_range_dso (warn)" in html
    assert "dbt-silver" in html and "1 success" in html
    # Self-contained: no external stylesheet, script, image or font.
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "<script" not in html
    md = path.with_suffix(".md").read_text()
    assert (
        "# SME Pulse daily-etl — 2025-06-30" in md
        and "30 days from 2025-07-01" in md
        and "20 alert(s)" in md
    )


def test_a_book_forecast_shows_its_components_items_and_accuracy(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, logical_date=DAY, pipeline="ml-predict")
    build_gold(settings)
    build_forecast_components(settings)
    html = write_report(settings).read_text()
    assert html.count("<svg") == 4  # forecast, components, accuracy, priority bands
    assert 'id="forecast-components"' in html and 'id="forecast-accuracy"' in html
    # the legend names the drawn components (those worth >= 0.5 M VND on some day)
    for label in ("collections book", "payments book", "recurring payroll", "other in"):
        assert label in html
    # the largest item of the first week leads the table: day 3, 180 M, with its explanation
    first_row = html.split("<th>what</th></tr>", 1)[1].split("</tr>", 1)[0]
    assert "2025-07-03" in first_row and "180.0" in first_row
    assert "3 open invoices of Công ty TNHH Thịnh Hoàng" in first_row
    assert "21 days" in html  # accuracy rows up to the logical date


def test_missing_tables_are_shown_as_not_available(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, logical_date=DAY)
    build_gold(settings, with_ml=False)
    html = write_report(settings).read_text()
    assert "Forecast not available yet" in html
    assert "gold.ml_anomaly_alerts is written by ml-predict" in html
    assert "INV-000001" in html  # what exists is still shown


def test_no_warehouse_at_all(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "empty", logical_date=DAY)
    html = write_report(settings).read_text()
    assert "does not exist yet" in html and "No gold tables yet" in html

"""The report stage on a real DuckDB gold schema: complete data, and data still missing."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from smepulse.errors import StageError
from smepulse.settings import Settings
from tests.services.procs import S3Endpoint

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


def test_reports_go_to_s3_when_reports_uri_says_so_and_notify_names_the_object(
    tmp_path: Path, s3_endpoint: S3Endpoint
) -> None:
    """The cluster default (a stage Pod's own folder vanishes with it): both files become
    objects under SMEPULSE_REPORTS_URI on a real MinIO; nothing is written locally; notify's
    message names the object. A bucket that does not exist is one clear error naming it."""
    s3 = s3_endpoint.client()
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    creds = {
        "s3_endpoint_url": s3_endpoint.url,
        "s3_access_key_id": s3_endpoint.access_key,
        "s3_secret_access_key": s3_endpoint.secret_key,
    }
    settings = Settings(
        home=tmp_path, logical_date=DAY, pipeline="ml-predict",
        reports_uri=f"s3://{bucket}/team/reports", **creds,
    )  # fmt: skip
    build_gold(settings)
    from smepulse.stages import notify, report

    report.run(settings)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"team/reports/ml-predict-{DAY}.html", f"team/reports/ml-predict-{DAY}.md"]
    html = s3.get_object(Bucket=bucket, Key=keys[0])
    assert html["ContentType"].startswith("text/html")
    assert 'id="forecast"' in html["Body"].read().decode()
    assert not (tmp_path / "reports").exists()

    message = notify.build_message(settings.model_copy(update={"run_outcome": "Succeeded"}))
    assert f"Report: s3://{bucket}/team/reports/ml-predict-{DAY}.html" in message.text

    missing = settings.model_copy(update={"reports_uri": "s3://no-such-bucket-here/r"})
    with pytest.raises(StageError, match=r"s3://no-such-bucket-here/r/ml-predict-.*NoSuchBucket"):
        report.run(missing)

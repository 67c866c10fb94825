"""The report rendered by a real browser (headless Chromium): charts and tables are on the page.

Uses a small gold schema in DuckDB (the demo e2e test screenshots the real report). To look
at a report yourself: ``python scripts/screenshot_report.py <report.html> out.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.screenshot_report import find_browser, screenshot
from smepulse.settings import Settings
from tests.integration.stages.gold_fixture import (
    DAY,
    build_forecast_components,
    build_gold,
    write_report,
)
from tests.needs import missing

pytestmark = pytest.mark.e2e


def colour_share(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> float:
    diff = np.abs(pixels[:, :, :3].astype(int) - np.array(rgb)).sum(axis=2)
    return float((diff < tol).mean())


def test_report_renders_with_charts_and_tables(tmp_path: Path) -> None:
    if find_browser() is None:
        missing("chromium (apt-get install -y chromium)")
    settings = Settings(
        home=tmp_path / "home", logical_date=DAY, pipeline="daily-etl", run_id="daily-etl-20250630"
    )
    build_gold(settings)
    png = screenshot(write_report(settings), tmp_path / "report.png")
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[0] >= 2000 and image.shape[1] >= 1200
    assert image.std() > 20, "the screenshot is (nearly) blank"
    assert colour_share(image, (0x0F, 0x17, 0x2A)) > 0.02  # the dark header band
    assert colour_share(image, (0x25, 0x63, 0xEB), tol=30) > 0.0001  # the forecast line (blue)
    assert colour_share(image, (0xDC, 0x26, 0x26), tol=30) > 0.0002  # "high" priority badges/bar


def test_forecast_components_chart_renders(tmp_path: Path) -> None:
    if find_browser() is None:
        missing("chromium (apt-get install -y chromium)")
    settings = Settings(home=tmp_path / "home", logical_date=DAY, pipeline="ml-predict")
    build_gold(settings)
    build_forecast_components(settings)
    png = screenshot(write_report(settings), tmp_path / "report.png")
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.std() > 20, "the screenshot is (nearly) blank"
    # the stacked bars: collections (green, 30 bars), payroll (purple, one day), the net line
    assert colour_share(image, (0x16, 0xA3, 0x4A), tol=30) > 0.002
    assert colour_share(image, (0x7C, 0x3A, 0xED), tol=30) > 0.00005
    assert colour_share(image, (0x25, 0x63, 0xEB), tol=30) > 0.0002

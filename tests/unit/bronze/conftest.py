"""Fixtures: small generated data sets, built once per session (the generator is pure)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from smepulse.settings import Settings
from smepulse.synth.generate import Dataset, GeneratorConfig, build_dataset, generate

END = dt.date(2025, 6, 30)
TINY = GeneratorConfig(end_date=END, seed=7, scale=0.05, years=0.5, ingest_dates=3)


@pytest.fixture(scope="session")
def tiny() -> Dataset:
    """About 375 invoices over half a year, three ingest dates."""
    return build_dataset(TINY)


@pytest.fixture(scope="session")
def weekly() -> Dataset:
    """Enough bank transactions per week (100-250) to measure the planted-anomaly rate."""
    return build_dataset(GeneratorConfig(end_date=END, seed=11, scale=0.8, years=0.5))


@pytest.fixture(scope="session")
def clean_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with the tiny data set written to its local bronze root."""
    home = tmp_path_factory.mktemp("clean")
    generate(Settings(home=home), TINY, show_progress=False)
    return home


@pytest.fixture
def bronze_copy(clean_home: Path, tmp_path: Path) -> Settings:
    """Settings whose bronze is a private copy of the clean data set (safe to break)."""
    shutil.copytree(clean_home / "bronze", tmp_path / "bronze")
    return Settings(home=tmp_path, logical_date=END)

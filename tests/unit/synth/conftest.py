"""Fixtures: small highlands data sets, built once per session (the builder is pure)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from smepulse.bronze.contract import contract
from smepulse.settings import Settings
from smepulse.synth.generate import Dataset, GeneratorConfig, generate
from smepulse.synth.highlands.build import build_dataset

#: Fourteen months ending after Tết 2026: a whole growing season, a harvest and a Tết.
END = dt.date(2026, 3, 31)
SMALL = GeneratorConfig(
    end_date=END, seed=3, scale=0.15, years=1.2, ingest_dates=3, business="highlands"
)


@pytest.fixture(scope="session")
def small() -> Dataset:
    return build_dataset(SMALL)


@pytest.fixture(scope="session")
def medium() -> Dataset:
    """Enough bank lines (about 4,000) to measure the planted-anomaly share."""
    return build_dataset(
        GeneratorConfig(end_date=END, seed=5, scale=0.6, years=1.0, business="highlands")
    )


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with the small data set written through ``generate``."""
    home = tmp_path_factory.mktemp("highlands")
    generate(Settings(home=home), SMALL, show_progress=False)
    return home


def snapshot(ds: Dataset, table: str) -> pd.DataFrame:
    """What silver keeps: the newest ``updated_at`` per key, over all ingest dates."""
    frame = pa.concat_tables(ds.tables[table]).to_pandas()
    key = list(contract(table).key)
    if "updated_at" in frame:
        frame = frame.sort_values("updated_at", kind="stable").drop_duplicates(key, keep="last")
    out: pd.DataFrame = frame.reset_index(drop=True)
    return out


def local_dates(ts: pd.Series) -> pd.Series:
    """Local (Asia/Ho_Chi_Minh, UTC+7) calendar dates of UTC timestamps."""
    out: pd.Series = (ts + pd.Timedelta(hours=7)).dt.date
    return out

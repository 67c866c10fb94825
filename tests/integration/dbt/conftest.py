"""A warehouse built by the real dbt stages over a small bronze data set (tests/integration/
dbt/bronze_fixture.py), once per session, on DuckDB. External-sync's ingest stages provide
the provinces (from the vietnam-provinces package) and the World Bank snapshot (the API is
pointed at a closed local port, so the bundled offline snapshot is used)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from smepulse.catalog import load_catalog
from smepulse.dbt_runner import BuildResult, run_build
from smepulse.dbt_selection import dbt_stages
from smepulse.settings import Settings
from smepulse.stages import resolve
from tests.integration.dbt.bronze_fixture import write_bronze

END_DATE = dt.date(2026, 6, 30)

#: daily-etl's dbt stages in build order, from the catalog.
DAILY_DBT_STAGES = [s.name for s in dbt_stages(load_catalog().pipeline("daily-etl"))]


def make_settings(home: Path, logical_date: dt.date = END_DATE) -> Settings:
    return Settings(
        home=home,
        logical_date=logical_date,
        worldbank_base_url="http://127.0.0.1:9",  # nothing listens: offline snapshot
        http_retries=0,
        duckdb_lock_timeout_seconds=120,
    )


@dataclass(frozen=True)
class Built:
    settings: Settings
    results: dict[str, BuildResult]

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


def build_daily(settings: Settings) -> dict[str, BuildResult]:
    return {stage: run_build(settings, stage) for stage in DAILY_DBT_STAGES}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """External-sync, then all daily-etl dbt stages, on the small bronze data set."""
    home = tmp_path_factory.mktemp("dbt-int")
    settings = make_settings(home)
    write_bronze(Path(settings.bronze_root), END_DATE)
    resolve("ingest-provinces")(settings)
    resolve("ingest-worldbank")(settings)
    external = run_build(settings, "dbt-external-silver")
    assert external.success, external.outcomes
    return Built(settings, build_daily(settings))


@pytest.fixture
def warehouse_copy(built: Built, tmp_path: Path) -> Iterator[Callable[[dt.date], Built]]:
    """A private copy of the built home (bronze + warehouse), for tests that break things."""
    home = tmp_path / "home"
    shutil.copytree(built.settings.home, home, ignore=shutil.ignore_patterns("target*", "logs"))
    yield lambda day: Built(make_settings(home, day), {})

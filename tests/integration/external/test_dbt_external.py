"""The external dbt models on DuckDB, fed by the real ingest stages, joined to generated data.

Generates a small synthetic SME (the generator writes customers.province_code as
vietnam-provinces codes), runs ``smepulse stage`` ingest-provinces and ingest-worldbank (API
unreachable: the bundled snapshot seeds bronze), dbt-external-silver, dbt-external-gold and
dbt-silver, each in its own process as the runner does, then checks that customers' and suppliers' province codes resolve through
gold.dim_province (>= 99 %) and that the yearly macro table is built.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import duckdb
import pytest

from smepulse.bronze.contract import PROVINCE_CODES
from smepulse.settings import Settings
from smepulse.synth.generate import GeneratorConfig, generate
from smepulse.warehouse import duckdb_lock

pytestmark = pytest.mark.integration

DAY = dt.date(2025, 8, 1)


def _stage(env: dict[str, str], stage: str) -> None:
    # Each stage in its own process, as the runner and the operator run them (dbt-duckdb also
    # keeps its database instance open in the process that ran dbt).
    cmd = [sys.executable, "-c", "from smepulse.cli import main; main()", "stage", stage]
    done = subprocess.run(
        [*cmd, "--logical-date", DAY.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"stage {stage} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("external_dbt") / "home"
    # Nothing listens on port 9 of localhost: the API is unreachable, as on this machine.
    overrides = {
        "SMEPULSE_HOME": str(home),
        "SMEPULSE_WORLDBANK_BASE_URL": "http://127.0.0.1:9/v2",
        "SMEPULSE_HTTP_RETRIES": "0",
        "SMEPULSE_LOG_FORMAT": "text",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMEPULSE_")} | overrides
    settings = Settings(home=home, logical_date=DAY)
    generate(
        settings,
        GeneratorConfig(end_date=DAY, scale=0.05, years=0.5, ingest_dates=2),
        show_progress=False,
    )
    for stage in (
        "ingest-provinces",
        "ingest-worldbank",
        "dbt-external-silver",
        "dbt-external-gold",
        "dbt-silver",
    ):
        _stage(env, stage)
    return settings


def _query(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    with duckdb_lock(settings.warehouse_path, exclusive=False, timeout=300):
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


@pytest.mark.parametrize("entity", ["customers", "suppliers"])
def test_province_codes_of_generated_data_resolve_through_dim_province(
    built: Settings, entity: str
) -> None:
    [(total, resolved)] = _query(
        built,
        f"""
        select count(*), count(province.province_code)
        from silver.stg_bronze__{entity} as entity
        left join gold.dim_province as province
            on entity.province_code = province.province_code
        """,
    )
    assert isinstance(total, int) and isinstance(resolved, int)
    assert total > 0
    assert resolved / total >= 0.99, (
        f"{total - resolved} of {total} {entity} have an unknown province_code"
    )


def test_every_code_the_generator_can_write_is_in_dim_province(built: Settings) -> None:
    # Scale-independent: the default data set draws province codes from this same list.
    codes = {code for (code,) in _query(built, "select province_code from gold.dim_province")}
    assert set(PROVINCE_CODES) <= codes


def test_dim_province_is_the_2025_map_with_wards_and_former_provinces(built: Settings) -> None:
    rows = _query(
        built,
        "select count(*), sum(n_wards_total), sum(n_former_provinces), "
        "count(distinct province_type) from gold.dim_province",
    )
    assert rows == [(34, 3321, 63, 2)]
    [(name, formers)] = _query(
        built,
        "select province_short_name, former_province_names from gold.dim_province where province_code = '79'",
    )
    assert name == "Hồ Chí Minh"
    assert (
        isinstance(formers, str)
        and "Tỉnh Bình Dương" in formers
        and "Tỉnh Bà Rịa - Vũng Tàu" in formers
    )


def test_former_codes_resolve_to_current_provinces(built: Settings) -> None:
    sql = "select source_province_code, province_code from silver.int_province_codes_resolved"
    rows = {code: current for code, current in _query(built, sql)}
    assert rows["74"] == "79" and rows["2"] == "8" and rows["79"] == "79"
    # Every current code was also a former code (the GSO reused one member's code per merger),
    # so the 63 former codes are all the codes a record can carry.
    assert len(rows) == 63


def test_macro_table_is_built_from_the_snapshot_when_offline(built: Settings) -> None:
    rows = _query(
        built,
        "select count(distinct indicator_id), bool_and(is_snapshot), count(*) filter (where is_latest_year) "
        "from gold.fct_macro_indicators_yearly",
    )
    assert rows == [(len(built.worldbank_indicators), True, len(built.worldbank_indicators))]
    [(growth,)] = _query(
        built,
        "select change_vs_prior_year from gold.fct_macro_indicators_yearly "
        "where indicator_id = 'FP.CPI.TOTL.ZG' and year = 2023",
    )
    assert growth == pytest.approx(3.25 - 3.16)

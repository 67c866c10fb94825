"""The embedded warehouse (DuckDB) builds silver from bronze in S3 (a real MinIO) with the
httpfs extension from its wheel: nothing is downloaded (DuckDB's autoinstall is off and this
machine has no route to DuckDB's extension server, so a download attempt would fail the stage),
and silver is the same as from the same bronze in a local folder."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest

from tests.services.procs import S3Endpoint

pytestmark = pytest.mark.integration

DATE = "2025-03-31"
SMEPULSE = str(Path(sys.executable).parent / "smepulse")


def _smepulse(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([SMEPULSE, *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"smepulse {' '.join(args)}:\n{proc.stderr[-3000:]}"


def _silver_counts(home: Path) -> dict[str, int]:
    """Rows of silver's tables (its views read bronze at query time: not opened here)."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'silver'"
                " and table_type = 'BASE TABLE' order by 1"
            ).fetchall()
        ]
        return {t: con.execute(f'select count(*) from silver."{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()


def test_dbt_silver_on_duckdb_reads_s3_bronze_like_local_bronze(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3_endpoint.client().create_bucket(Bucket=bucket)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SMEPULSE_")}
    s3_env = {
        **base,
        "SMEPULSE_HOME": str(tmp_path / "s3-home"),
        "SMEPULSE_BRONZE_URI": f"s3://{bucket}/bronze",
        "SMEPULSE_S3_ENDPOINT_URL": s3_endpoint.url,
        "SMEPULSE_S3_ACCESS_KEY_ID": s3_endpoint.access_key,
        "SMEPULSE_S3_SECRET_ACCESS_KEY": s3_endpoint.secret_key,
    }
    local_env = {**base, "SMEPULSE_HOME": str(tmp_path / "local-home")}
    for env in (s3_env, local_env):
        _smepulse(env, "generate-data", "--end-date", DATE, "--years", "0.5", "--seed", "7")
        for stage in ("validate-bronze", "dbt-silver"):
            _smepulse(env, "stage", stage, "-d", DATE)
    from_s3 = _silver_counts(tmp_path / "s3-home")
    from_local = _silver_counts(tmp_path / "local-home")
    assert from_s3 == from_local
    assert len(from_s3) >= 5 and all(n > 0 for n in from_s3.values()), from_s3

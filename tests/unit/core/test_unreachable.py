"""A stage whose service is down or mis-addressed fails with one line naming the service,
its address and the reason, not a traceback. The errors come from the real clients pointed at
a loopback port nothing listens on; the expected lines are written out by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import psycopg2
import pytest
import redis
import requests
import trino
from botocore.config import Config

from smepulse.unreachable import describe
from tests.services.procs import free_port

pytestmark = pytest.mark.unit


def _raised(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("no error raised")


def test_each_client_s_connection_error_names_its_service() -> None:
    port = free_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )
    assert describe(_raised(lambda: s3.list_objects_v2(Bucket="lake"))) == (
        f"cannot reach the object store (S3) at http://127.0.0.1:{port}/lake: Connection refused"
    )
    cur = trino.dbapi.connect(host="127.0.0.1", port=port, user="u", max_attempts=1).cursor()
    assert describe(_raised(lambda: cur.execute("select 1"))) == (
        f"cannot reach Trino at 127.0.0.1:{port}/v1/statement: Connection refused"
    )
    mlflow_url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search"
    assert describe(_raised(lambda: requests.get(mlflow_url, timeout=5))) == (
        f"cannot reach MLflow at 127.0.0.1:{port}/api/2.0/mlflow/experiments/search: "
        "Connection refused"
    )
    cache = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    assert describe(_raised(cache.ping)) == (
        f"cannot reach Redis at 127.0.0.1:{port}: Connection refused"
    )
    pg = f"postgresql://u:p@127.0.0.1:{port}/db"
    assert describe(_raised(lambda: psycopg2.connect(pg))) == (
        f"cannot reach PostgreSQL at 127.0.0.1:{port}: Connection refused"
    )


def test_other_errors_are_not_dressed_up_as_connection_errors() -> None:
    assert describe(_raised(lambda: 1 / 0)) is None
    assert describe(_raised(lambda: {}["missing"])) is None
    bad_sql = psycopg2.OperationalError("division by zero")
    assert describe(bad_sql) is None


def test_a_stage_with_an_unreachable_object_store_fails_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SMEPULSE_HOME": str(tmp_path),
        "SMEPULSE_BRONZE_URI": "s3://lake/bronze",
        "SMEPULSE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "SMEPULSE_S3_ACCESS_KEY_ID": "x",
        "SMEPULSE_S3_SECRET_ACCESS_KEY": "y",
        "AWS_MAX_ATTEMPTS": "1",
    }
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "smepulse"),
            "stage",
            "validate-bronze",
            "-d",
            "2025-01-01",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: cannot reach the object store (S3) at http://127.0.0.1:{port}/lake: "
        "Connection refused; check the address in the settings (`smepulse settings`) and that "
        "it is up"
    ]

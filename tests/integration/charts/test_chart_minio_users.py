"""MinIO's ``users`` container script against a real MinIO: each workload's key does what its
policy allows and is refused elsewhere; a second pass (a restart, a `helm upgrade` with a new
key) converges; the root key is never handed out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.services import procs

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[3] / "charts/smepulse/files/scripts/minio_users.py"
BUCKET = "lake"
KEYS = {
    "stages": ("smepulse-stages", "stages-secret-0123456789"),
    "trino": ("smepulse-trino", "trino-secret-0123456789"),
    "mlflow": ("smepulse-mlflow", "mlflow-secret-0123456789"),
}


def _run(
    s3: procs.S3Endpoint,
    keys: dict[str, tuple[str, str]],
    root: tuple[str, str] | None = None,
    first_pass_timeout: int = 30,
) -> subprocess.CompletedProcess[str]:
    user, password = root or (s3.access_key, s3.secret_key)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MINIO_URL": s3.url,
        "MINIO_ROOT_USER": user,
        "MINIO_ROOT_PASSWORD": password,
        "MINIO_REGION": "us-east-1",
        "S3_BUCKET": BUCKET,
        "BRONZE_PREFIX": "bronze",
        "REPORTS_PREFIX": "reports",
        "WAREHOUSE_PREFIX": "warehouse",
        "BRONZE_METASTORE_PREFIX": "_bronze_metastore",
        "MLFLOW_PREFIX": "mlflow",
        "INTERVAL_SECONDS": "0",
        "FIRST_PASS_TIMEOUT_SECONDS": str(first_pass_timeout),
    }
    for workload, (access, secret) in keys.items():
        env[f"{workload.upper()}_ACCESS_KEY"] = access
        env[f"{workload.upper()}_SECRET_KEY"] = secret
    # As the chart runs it: the file's text as `python -c`.
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.read_text()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _client(s3: procs.S3Endpoint, access: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.url,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
    )


def _refused(call: Any, **kwargs: Any) -> bool:
    try:
        call(**kwargs)
    except ClientError as exc:
        return exc.response["Error"]["Code"] in {
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        }
    return False


def test_each_workload_key_reaches_its_prefixes_only(s3_endpoint: procs.S3Endpoint) -> None:
    root = _client(s3_endpoint, s3_endpoint.access_key, s3_endpoint.secret_key)
    root.create_bucket(Bucket=BUCKET)
    root.put_object(Bucket=BUCKET, Key="bronze/sales/day=1/a.parquet", Body=b"bronze")
    root.put_object(Bucket=BUCKET, Key="mlflow/1/model.pkl", Body=b"model")
    root.put_object(Bucket=BUCKET, Key="warehouse/gold/t.parquet", Body=b"gold")

    first = _run(s3_endpoint, KEYS)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "user smepulse-stages: policy smepulse-stages",
        "user smepulse-trino: policy smepulse-trino",
        "user smepulse-mlflow: policy smepulse-mlflow",
    ]
    stages = _client(s3_endpoint, *KEYS["stages"])
    trino = _client(s3_endpoint, *KEYS["trino"])
    mlflow = _client(s3_endpoint, *KEYS["mlflow"])

    # Stages: read/write bronze and reports, list the bucket; nothing else.
    stages.put_object(Bucket=BUCKET, Key="bronze/sales/day=2/b.parquet", Body=b"new")
    stages.put_object(Bucket=BUCKET, Key="reports/daily-etl-2026-01-01.html", Body=b"<p>")
    assert (
        stages.get_object(Bucket=BUCKET, Key="bronze/sales/day=1/a.parquet")["Body"].read()
        == b"bronze"
    )
    listed = stages.list_objects_v2(Bucket=BUCKET, Prefix="bronze/")
    assert {o["Key"] for o in listed["Contents"]} == {
        "bronze/sales/day=1/a.parquet",
        "bronze/sales/day=2/b.parquet",
    }
    assert _refused(stages.get_object, Bucket=BUCKET, Key="mlflow/1/model.pkl")
    assert _refused(stages.put_object, Bucket=BUCKET, Key="warehouse/x", Body=b"x")
    assert _refused(stages.create_bucket, Bucket="other")

    # Trino: reads bronze, writes the warehouse and the bronze metastore; cannot write bronze.
    assert (
        trino.get_object(Bucket=BUCKET, Key="bronze/sales/day=2/b.parquet")["Body"].read() == b"new"
    )
    trino.put_object(Bucket=BUCKET, Key="warehouse/gold/u.parquet", Body=b"u")
    trino.delete_object(Bucket=BUCKET, Key="warehouse/gold/u.parquet")
    trino.put_object(Bucket=BUCKET, Key="_bronze_metastore/bronze/schema.json", Body=b"{}")
    assert _refused(trino.put_object, Bucket=BUCKET, Key="bronze/sales/x", Body=b"x")
    assert _refused(trino.delete_object, Bucket=BUCKET, Key="bronze/sales/day=1/a.parquet")
    assert _refused(trino.get_object, Bucket=BUCKET, Key="mlflow/1/model.pkl")
    assert _refused(trino.get_object, Bucket=BUCKET, Key="reports/daily-etl-2026-01-01.html")

    # MLflow: its artefacts only; bronze, the warehouse and the reports are refused.
    mlflow.put_object(Bucket=BUCKET, Key="mlflow/2/artifacts/m.json", Body=b"{}")
    assert mlflow.get_object(Bucket=BUCKET, Key="mlflow/1/model.pkl")["Body"].read() == b"model"
    assert _refused(mlflow.get_object, Bucket=BUCKET, Key="bronze/sales/day=1/a.parquet")
    assert _refused(mlflow.get_object, Bucket=BUCKET, Key="warehouse/gold/t.parquet")
    assert _refused(mlflow.put_object, Bucket=BUCKET, Key="bronze/x", Body=b"x")

    # No workload may administer MinIO: its key is refused by the admin API.
    evil = {**KEYS, "stages": ("evil", "evil-secret-0123456789")}
    denied = _run(s3_endpoint, evil, root=KEYS["stages"], first_pass_timeout=0)
    assert denied.returncode == 1
    assert "403" in denied.stderr, denied.stderr

    # A second pass with MLflow's key rotated (helm upgrade): the old key stops working.
    rotated = {**KEYS, "mlflow": ("smepulse-mlflow", "mlflow-rotated-9876543210")}
    second = _run(s3_endpoint, rotated)
    assert second.returncode == 0, second.stderr
    assert _refused(mlflow.get_object, Bucket=BUCKET, Key="mlflow/1/model.pkl")
    renewed = _client(s3_endpoint, *rotated["mlflow"])
    assert renewed.get_object(Bucket=BUCKET, Key="mlflow/1/model.pkl")["Body"].read() == b"model"
    assert (
        stages.get_object(Bucket=BUCKET, Key="bronze/sales/day=1/a.parquet")["Body"].read()
        == b"bronze"
    )

"""The chart's bucket-creation hook script, run against a real MinIO: it creates the
buckets, and a second run (helm upgrade) finds them and changes nothing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from tests.services.procs import S3Endpoint

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[3] / "charts/smepulse/files/scripts/create_buckets.py"


def _run(s3: S3Endpoint, buckets: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "S3_ENDPOINT_URL": s3.url,
        "S3_REGION": "us-east-1",
        "S3_BUCKETS": ",".join(buckets),
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )


def test_bucket_hook_creates_then_finds(s3_endpoint: S3Endpoint) -> None:
    buckets = [f"lake-{uuid.uuid4().hex[:8]}", f"mlflow-{uuid.uuid4().hex[:8]}"]
    first = _run(s3_endpoint, buckets)
    assert first.returncode == 0, first.stderr
    assert [f"bucket {b}: created" for b in buckets] == first.stdout.split("\n")[:2]
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint.url,
        region_name="us-east-1",
        aws_access_key_id=s3_endpoint.access_key,
        aws_secret_access_key=s3_endpoint.secret_key,
    )
    client.put_object(Bucket=buckets[0], Key="bronze/keep.txt", Body=b"data")
    second = _run(s3_endpoint, buckets)
    assert second.returncode == 0, second.stderr
    assert [f"bucket {b}: exists" for b in buckets] == second.stdout.split("\n")[:2]
    assert client.get_object(Bucket=buckets[0], Key="bronze/keep.txt")["Body"].read() == b"data"


def test_bucket_hook_fails_clearly_on_bad_credentials(s3_endpoint: S3Endpoint) -> None:
    bad = S3Endpoint(s3_endpoint.url, s3_endpoint.access_key, "wrong-secret")
    result = _run(bad, ["nope"])
    assert result.returncode == 1
    assert "bucket nope:" in result.stderr and "refused the credentials" in result.stderr

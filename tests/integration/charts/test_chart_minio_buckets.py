"""MinIO's ``buckets`` init container script, then a real MinIO on the same drive: the folders
it makes are served as buckets, a second run (an upgrade adding a bucket) keeps what is there,
and a bad name fails naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services import procs

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[3] / "charts/smepulse/files/scripts/bucket_dirs.py"


def _init(drive: Path, buckets: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "MINIO_DRIVE": str(drive), "S3_BUCKETS": buckets}
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


def _client(s3: procs.S3Endpoint) -> Any:
    return s3.client()


def test_the_init_container_makes_buckets_minio_serves_and_keeps(tmp_path: Path) -> None:
    drive = tmp_path / "data"
    drive.mkdir()
    first = _init(drive, "smepulse,smepulse-exports")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "bucket smepulse: created",
        "bucket smepulse-exports: created",
    ]
    with procs.minio(tmp_path) as s3:
        client = _client(s3)
        assert sorted(b["Name"] for b in client.list_buckets()["Buckets"]) == [
            "smepulse",
            "smepulse-exports",
        ]
        client.put_object(Bucket="smepulse", Key="bronze/keep.txt", Body=b"data")
    # helm upgrade with one more bucket: the Pod restarts, the init container runs again.
    second = _init(drive, "smepulse,smepulse-exports,smepulse-archive")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        "bucket smepulse: exists",
        "bucket smepulse-exports: exists",
        "bucket smepulse-archive: created",
    ]
    with procs.minio(tmp_path) as s3:
        client = _client(s3)
        names = sorted(b["Name"] for b in client.list_buckets()["Buckets"])
        assert names == ["smepulse", "smepulse-archive", "smepulse-exports"]
        body = client.get_object(Bucket="smepulse", Key="bronze/keep.txt")["Body"].read()
        assert body == b"data"


def test_a_bad_bucket_name_fails_naming_it_and_creates_nothing_for_it(tmp_path: Path) -> None:
    result = _init(tmp_path, "Smepulse_Lake,ok-bucket")
    assert result.returncode == 1
    assert "bucket Smepulse_Lake: not a valid S3 bucket name" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok-bucket"]

"""The S3 bronze store against a real S3 endpoint (MinIO or AWS).

The ``s3_endpoint`` fixture (tests/services) starts a real MinIO server built from the Go
module proxy by ``scripts/minio-tools.sh``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from smepulse.bronze.store import open_store
from smepulse.bronze.validate import validate
from smepulse.settings import Settings
from smepulse.synth.generate import GeneratorConfig, generate
from tests.services.procs import S3Endpoint

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_settings(tmp_path: Path, s3_endpoint: S3Endpoint) -> Settings:

    bucket = f"smepulse-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        home=tmp_path,
        bronze_uri=f"s3://{bucket}/bronze",
        s3_endpoint_url=s3_endpoint.url,
        s3_access_key_id=s3_endpoint.access_key,
        s3_secret_access_key=s3_endpoint.secret_key,
    )
    client = s3_endpoint.client(settings.s3_region)
    client.create_bucket(Bucket=bucket)
    return settings


def test_generate_validate_and_delete_on_s3(s3_settings: Settings) -> None:
    end = dt.date(2025, 6, 30)
    generate(
        s3_settings,
        GeneratorConfig(end_date=end, seed=3, scale=0.05, years=0.5),
        show_progress=False,
    )
    store = open_store(s3_settings)
    assert "ar_invoices" in store.tables()
    files = store.list_files("ar_invoices")
    assert files and all(f.uri.startswith(s3_settings.bronze_root) for f in files)
    assert store.read_file(files[0].uri).num_rows > 0
    assert validate(store, end).ok
    uri = store.write_table("scratch", end, pa.table({"a": [1]}))
    assert store.read_file(uri).num_rows == 1
    assert store.delete_table("scratch") == 1
    assert store.list_files("scratch") == []

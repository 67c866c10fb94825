"""The S3 bronze store against a real S3 endpoint (MinIO or AWS).

Runs only when ``SMEPULSE_TEST_S3_ENDPOINT`` names one (with ``SMEPULSE_TEST_S3_ACCESS_KEY``
and ``SMEPULSE_TEST_S3_SECRET_KEY``); no S3 server can be installed on the build machine, so
it is skipped there unless CI provides one.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pyarrow as pa
import pytest

from smepulse.jobs.bronze.generate import GeneratorConfig, generate
from smepulse.jobs.bronze.store import open_store
from smepulse.jobs.bronze.validate import validate
from smepulse.jobs.settings import Settings

pytestmark = pytest.mark.integration

ENDPOINT = os.environ.get("SMEPULSE_TEST_S3_ENDPOINT")


@pytest.fixture
def s3_settings(tmp_path: object) -> Settings:
    if not ENDPOINT:
        if os.environ.get("SMEPULSE_REQUIRE_SERVICES") == "1":
            pytest.fail("SMEPULSE_TEST_S3_ENDPOINT is not set", pytrace=False)
        pytest.skip("no S3 endpoint (set SMEPULSE_TEST_S3_ENDPOINT)")
    import boto3

    bucket = f"smepulse-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        home=tmp_path,
        bronze_uri=f"s3://{bucket}/bronze",
        s3_endpoint_url=ENDPOINT,
        s3_access_key_id=os.environ.get("SMEPULSE_TEST_S3_ACCESS_KEY", "minioadmin"),
        s3_secret_access_key=os.environ.get("SMEPULSE_TEST_S3_SECRET_KEY", "minioadmin"),
    )
    client = boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id.get_secret_value()
        if settings.s3_access_key_id
        else None,
        aws_secret_access_key=(
            settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key
            else None
        ),
    )
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

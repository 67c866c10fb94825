"""MinIO's ``users`` container script against a real MinIO: each workload's key does what its
policy allows and is refused elsewhere; a second pass (a restart, a `helm upgrade` with a new
key) converges; the root key is never handed out."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
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
    bucket: str = BUCKET,
) -> subprocess.CompletedProcess[str]:
    user, password = root or (s3.access_key, s3.secret_key)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MINIO_URL": s3.url,
        "MINIO_ROOT_USER": user,
        "MINIO_ROOT_PASSWORD": password,
        "MINIO_REGION": "us-east-1",
        "S3_BUCKET": bucket,
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

    # Stages: read/write bronze and reports, list them; nothing else.
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


def _outcome(call: Any, **kwargs: Any) -> str:
    """ "ok", or the S3 error code (HEAD requests have no body: "403", "404")."""
    try:
        call(**kwargs)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


#: Each workload's prefixes (read-write and read-only) as the chart's policies give them.
LISTABLE = {
    "stages": ["bronze", "reports"],
    "trino": ["warehouse", "_bronze_metastore", "bronze"],
    "mlflow": ["mlflow"],
}
ALL_PREFIXES = ["bronze", "reports", "warehouse", "_bronze_metastore", "mlflow"]
#: Its own bucket: independent of the test above (which makes and rotates the same users).
SCOPED = "scoped"


def test_listing_is_scoped_to_each_workloads_prefixes(
    s3_endpoint: procs.S3Endpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each key lists only its own prefixes (in the forms clients send: "p", "p/", "p/sub/"),
    never the bucket's root nor another workload's prefix; and each real client of the product
    still works with its key: the stages' bronze store, DuckDB's httpfs (the embedded dbt
    profile's bronze glob) and verify-infra, MLflow's S3 artifact store (what `mlflow server
    --artifacts-destination` runs), and the calls of Trino's native S3 file system
    (ListObjectsV2 of "<location>/", HeadObject of a missing file; Trino itself runs against
    this policy in test_chart_trino.py)."""
    root = _client(s3_endpoint, s3_endpoint.access_key, s3_endpoint.secret_key)
    root.create_bucket(Bucket=SCOPED)
    parquet = io.BytesIO()
    pq.write_table(pa.table({"amount": pa.array([3, 4], pa.int64())}), parquet)
    root.put_object(
        Bucket=SCOPED,
        Key="bronze/sales/ingest_date=2026-01-01/part-00000.parquet",
        Body=parquet.getvalue(),
    )
    for key in (
        "reports/daily.html",
        "warehouse/gold/t/data/0.parquet",
        "_bronze_metastore/bronze/schema.json",
        "mlflow/1/run/artifacts/model.pkl",
    ):
        root.put_object(Bucket=SCOPED, Key=key, Body=b"x")
    ran = _run(s3_endpoint, KEYS, bucket=SCOPED)
    assert ran.returncode == 0, ran.stderr
    clients = {w: _client(s3_endpoint, *KEYS[w]) for w in KEYS}

    for workload, s3 in clients.items():
        for p in ALL_PREFIXES:
            expected = "ok" if p in LISTABLE[workload] else "AccessDenied"
            for form in (p, f"{p}/", f"{p}/sub/"):
                got = _outcome(s3.list_objects_v2, Bucket=SCOPED, Prefix=form, Delimiter="/")
                assert got == expected, f"{workload} listing {form!r}: {got}"
            # Not granted at all (MinIO takes no prefix condition on it; no client needs it).
            got = _outcome(s3.list_multipart_uploads, Bucket=SCOPED, Prefix=f"{p}/")
            assert got == "AccessDenied", f"{workload} listing uploads under {p}/: {got}"
        # Not the whole bucket, nor a look-alike prefix ("bronze2/" is not "bronze/").
        assert _outcome(s3.list_objects_v2, Bucket=SCOPED) == "AccessDenied", workload
        assert _outcome(s3.list_objects_v2, Bucket=SCOPED, Prefix="") == "AccessDenied"
        other = f"{LISTABLE[workload][0]}2/"
        assert _outcome(s3.list_objects_v2, Bucket=SCOPED, Prefix=other) == "AccessDenied"
        assert _outcome(s3.list_objects, Bucket=SCOPED, Prefix="") == "AccessDenied"
        # HeadBucket is authorised as s3:ListBucket without a prefix (AWS and MinIO alike).
        assert _outcome(s3.head_bucket, Bucket=SCOPED) == "403", workload
        # GetBucketLocation stays allowed (an SDK without a region asks it).
        assert _outcome(s3.get_bucket_location, Bucket=SCOPED) == "ok", workload
        # A missing object under its own prefix is 404, not 403: Trino's exists() and boto3's
        # downloads tell "absent" from "refused" by it.
        own = LISTABLE[workload][0]
        got = _outcome(s3.head_object, Bucket=SCOPED, Key=f"{own}/absent/file")
        assert got == "404", f"{workload} HEAD of a missing {own}/ object: {got}"
    # MLflow's key cannot read bronze's object names (the review's example).
    listed = _outcome(clients["mlflow"].list_objects_v2, Bucket=SCOPED, Prefix="bronze/")
    assert listed == "AccessDenied"

    # The stages' own code with the stages key: bronze's store and verify-infra.
    from smepulse.bronze.store import S3Store, s3_client
    from smepulse.settings import Settings, duckdb_httpfs_extension
    from smepulse.stages import verify

    settings = Settings(
        home=tmp_path,
        bronze_uri=f"s3://{SCOPED}/bronze",
        s3_endpoint_url=s3_endpoint.url,
        s3_access_key_id=KEYS["stages"][0],
        s3_secret_access_key=KEYS["stages"][1],
    )
    store = S3Store(settings.bronze_root, s3_client(settings))
    assert store.tables() == ["sales"]
    assert [f.uri for f in store.list_files("sales")] == [
        f"s3://{SCOPED}/bronze/sales/ingest_date=2026-01-01/part-00000.parquet"
    ]
    # DuckDB's httpfs as dbt's embedded profile configures it (dbt/profiles.yml): the glob
    # lists under bronze/sales/.
    con = duckdb.connect()
    try:
        con.execute("set autoinstall_known_extensions = false")
        con.execute(f"load '{duckdb_httpfs_extension()}'")
        key_id, secret = KEYS["stages"]
        endpoint = s3_endpoint.url.split("://")[-1]
        con.execute(
            f"create secret (type s3, key_id '{key_id}', secret '{secret}', region 'us-east-1', "
            f"endpoint '{endpoint}', use_ssl false, url_style 'path')"
        )
        glob = f"s3://{SCOPED}/bronze/sales/ingest_date=*/*.parquet"
        rows = con.execute(
            f"select ingest_date, sum(amount) from read_parquet('{glob}', "
            "hive_partitioning = true) group by 1"
        ).fetchall()
        assert [(str(d), n) for d, n in rows] == [("2026-01-01", 7)]
    finally:
        con.close()
    assert (
        verify.check_object_store(settings) == f"bucket {SCOPED} reachable (prefix bronze/ listed)"
    )

    # MLflow's S3 artifact store with MLflow's key, rooted where the chart's server points it.
    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    repo = S3ArtifactRepository(
        f"s3://{SCOPED}/mlflow",
        access_key_id=KEYS["mlflow"][0],
        secret_access_key=KEYS["mlflow"][1],
    )
    model = tmp_path / "model.json"
    model.write_text("{}")
    repo.log_artifact(str(model), "2/run/artifacts")
    assert [i.path for i in repo.list_artifacts()] == ["1", "2"]
    assert [i.path for i in repo.list_artifacts("2/run/artifacts")] == [
        "2/run/artifacts/model.json"
    ]
    (tmp_path / "dl").mkdir()
    fetched = Path(repo.download_artifacts("2/run/artifacts/model.json", str(tmp_path / "dl")))
    assert fetched.read_text() == "{}"
    repo.delete_artifacts("2")
    assert [i.path for i in repo.list_artifacts()] == ["1"]

"""The chart's data-stack configuration, run by the real programs: the PostgreSQL init script
through psql against a real PostgreSQL, and Trino 476 started from the chart's rendered
node/config/jvm properties and catalogs (only the cluster addresses, ports and heap size are
swapped for local ones). Trino refuses to start on an unknown or malformed property, so this
checks every line the chart writes; the Iceberg JDBC catalog then works on the tables the init
script created, and both catalogs work on a real MinIO with Trino's own key, under the policy
MinIO's `users` container gives it (listing scoped to Trino's prefixes)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.needs import KUBE, missing
from tests.services import procs
from tests.unit.charts.helmlib import CHART, Helm, HelmUnavailable, Manifest, find, find_helm

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    try:
        helm = Helm(find_helm(), tmp_path_factory.mktemp("helm"))
    except HelmUnavailable as exc:
        missing(f"Helm ({exc})", setting=KUBE)
    return helm.template([CHART / "ci" / "full-values.yaml"])


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL of our own: the init script creates databases with fixed names."""
    try:
        with procs.postgres(tmp_path_factory.mktemp("pg")) as dsn:
            yield dsn
    except (procs.ServiceUnavailable, OSError) as exc:
        missing(f"PostgreSQL ({exc})")


def _psql(dsn: str, sql: str) -> str:
    proc = subprocess.run(
        ["psql", "-v", "ON_ERROR_STOP=1", "-X", "-q", "-At", dsn],
        input=sql, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def initialised(
    rendered: list[Manifest], postgres: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Run the init script as the postgres image does (psql, stop on the first error), then the
    workloads' roles as the Pod's `roles` container does (Trino logs in as `iceberg`)."""
    data = find(rendered, "ConfigMap", "smepulse-postgresql-init")["data"]
    _psql(postgres, data["01-smepulse.sql"])
    folder = tmp_path_factory.mktemp("roles-sql")
    for key in ("workload-roles.sql", "workload-role.sql"):
        (folder / key).write_text(data[key])
    env = {"PATH": os.environ["PATH"]}
    env |= {f"{r}_DB_PASSWORD": f"{r.lower()}-password" for r in ("MLFLOW", "ICEBERG", "METABASE")}
    proc = subprocess.run(
        ["psql", "-X", "-q", "-d", postgres, "-f", str(folder / "workload-roles.sql")],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return postgres


def test_postgres_init_script_creates_the_databases_and_catalog_tables(initialised: str) -> None:
    databases = set(_psql(initialised, "select datname from pg_database").split())
    assert {"mlflow", "iceberg", "metabase"} <= databases
    iceberg = initialised.rpartition("/")[0] + "/iceberg"
    tables = set(
        _psql(iceberg, "select tablename from pg_tables where schemaname='public'").split()
    )
    assert tables == {"iceberg_tables", "iceberg_namespace_properties"}


def _properties(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def _write(path: Path, props: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")


def _keys(s3: procs.S3Endpoint, bucket: str) -> list[str]:
    """Every key of ``bucket``, listed with the root key."""
    client = s3.client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _trino_answers(port: int, sql: str) -> list[list[object]]:
    import trino

    connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host="127.0.0.1", port=port, user="smepulse"
    )
    cur = connection.cursor()
    cur.execute(sql)
    return [list(row) for row in cur.fetchall()]


def _workload_users(rendered: list[Manifest], s3: procs.S3Endpoint) -> dict[str, str]:
    """Make the chart's bucket and its workloads' MinIO users on ``s3`` as MinIO's `users`
    container does (its script, its rendered environment, the rendered Secret's keys); return
    the minio-users Secret's values."""
    import base64

    pod = find(rendered, "StatefulSet", "smepulse-minio")["spec"]["template"]["spec"]
    users = next(c for c in pod["containers"] if c["name"] == "users")
    secret = find(rendered, "Secret", "smepulse-minio-users")["data"]
    keys = {k: base64.b64decode(v).decode() for k, v in secret.items()}
    env = {"PATH": os.environ["PATH"]}
    for item in users["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef", {})
        if "value" in item:
            env[item["name"]] = item["value"]
        elif ref.get("name") == "smepulse-minio-users":
            env[item["name"]] = keys[ref["key"]]
    # One pass, no readiness file, this MinIO and its root key.
    env |= {"INTERVAL_SECONDS": "0", "READY_FILE": "", "FIRST_PASS_TIMEOUT_SECONDS": "30"}
    env |= {"MINIO_URL": s3.url, "MINIO_ROOT_USER": s3.access_key}
    env["MINIO_ROOT_PASSWORD"] = s3.secret_key
    root = s3.client(env["MINIO_REGION"])
    root.create_bucket(Bucket=env["S3_BUCKET"])
    proc = subprocess.run(
        [sys.executable, "-c", users["args"][-1]],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return keys


def _bronze_file(s3: procs.S3Endpoint, bucket: str, key: str) -> None:
    """One bronze Parquet file (amounts 3 and 4), written with the root key."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    body = io.BytesIO()
    pq.write_table(pa.table({"amount": pa.array([3, 4], pa.int64())}), body)
    s3.client().put_object(Bucket=bucket, Key=key, Body=body.getvalue())


def test_trino_starts_on_the_chart_configuration(
    rendered: list[Manifest], initialised: str, tmp_path: Path, s3_endpoint: procs.S3Endpoint
) -> None:
    """Trino on the chart's configuration, against a real MinIO with the chart's policies and
    Trino's own key (listing scoped to its prefixes): the Iceberg catalog writes, reads and
    drops a table under the warehouse prefix, the bronze Hive catalog registers and reads a
    bronze Parquet file with its metastore under its own prefix."""
    try:
        home, java_bin = procs.trino_home()
    except procs.ServiceUnavailable as exc:
        missing(f"Trino ({exc})")
    keys = _workload_users(rendered, s3_endpoint)
    _bronze_file(s3_endpoint, "smepulse", "bronze/sales/ingest_date=2026-01-01/part-00000.parquet")
    data = find(rendered, "ConfigMap", "smepulse-trino")["data"]
    etc, var = tmp_path / "etc", tmp_path / "data"
    (etc / "catalog").mkdir(parents=True)
    port = procs.free_port()
    node = _properties(data["node.properties"]) | {
        "node.id": str(uuid.uuid4()),
        "node.data-dir": str(var),
    }
    _write(etc / "node.properties", node)
    config = _properties(data["coordinator.config.properties"])
    config |= {
        "http-server.http.port": str(port),
        "discovery.uri": f"http://127.0.0.1:{port}",
        # This test runs no workers.
        "node-scheduler.include-coordinator": "true",
        "query.max-memory": "512MB",
        "query.max-memory-per-node": "256MB",
    }
    _write(etc / "config.properties", config)
    # The container's heap follows its memory limit; here there is none, so cap it.
    jvm = [line for line in data["jvm.config"].splitlines() if "RAMPercentage" not in line]
    (etc / "jvm.config").write_text("\n".join([*jvm, "-Xmx1G", "-Xms256M"]) + "\n")
    (etc / "log.properties").write_text(data["log.properties"])
    for name in ("lakehouse", "bronze", "memory"):
        props = _properties(data[f"{name}.properties"])
        if name == "lakehouse":
            base = initialised.removeprefix("postgresql://").rpartition("/")[0].partition("@")[2]
            props["iceberg.jdbc-catalog.connection-url"] = f"jdbc:postgresql://{base}/iceberg"
        if "s3.endpoint" in props:
            props["s3.endpoint"] = s3_endpoint.url
        _write(etc / "catalog" / f"{name}.properties", props)
    env = {
        **os.environ,
        "PATH": f"{java_bin}:{os.environ.get('PATH', '')}",
        # What the chart's Pod gets from its Secrets (trust auth: the password is not checked).
        "POSTGRES_PASSWORD": "unused",
        # Trino's own MinIO user, as the Deployment's env and the minio-users Secret give it.
        "S3_ACCESS_KEY": "smepulse-trino",
        "S3_SECRET_KEY": keys["trino-secret-key"],
    }
    log = tmp_path / "trino.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(home / "bin/launcher"), "run", f"--etc-dir={etc}", f"--data-dir={var}"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (
                f"Trino refused the chart's config:\n{log.read_text()[-4000:]}"
            )
            url = f"http://127.0.0.1:{port}/v1/info"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if b'"starting":false' in r.read():
                    break
            assert time.monotonic() < deadline, f"Trino did not start:\n{log.read_text()[-4000:]}"
            time.sleep(2)
        catalogs = {row[0] for row in _trino_answers(port, "show catalogs")}
        assert {"lakehouse", "bronze", "memory"} <= catalogs
        # The Iceberg JDBC catalog works on the init script's tables (a namespace is a row),
        # as the chart's own `iceberg` role (lakehouse.properties' connection-user).
        _trino_answers(port, "create schema lakehouse.probe")
        schemas = {row[0] for row in _trino_answers(port, "show schemas from lakehouse")}
        assert "probe" in schemas
        # Through MinIO with Trino's key: Iceberg data and metadata under warehouse/ ...
        _trino_answers(port, "create table lakehouse.probe.t as select 1 as x")
        _trino_answers(port, "insert into lakehouse.probe.t values 2")
        assert _trino_answers(port, "select sum(x) from lakehouse.probe.t") == [[3]]
        # ... bronze read through an external Hive table, its metastore in _bronze_metastore/.
        for sql in (
            "create schema bronze.bronze with (location = 's3://smepulse/bronze')",
            "create table bronze.bronze.sales (amount bigint, ingest_date varchar) with ("
            "external_location = 's3://smepulse/bronze/sales', format = 'PARQUET', "
            "partitioned_by = ARRAY['ingest_date'])",
            "call bronze.system.sync_partition_metadata('bronze', 'sales', 'FULL')",
        ):
            _trino_answers(port, sql)
        assert _trino_answers(
            port, "select ingest_date, sum(amount) from bronze.bronze.sales group by 1"
        ) == [["2026-01-01", 7]]
        written = _keys(s3_endpoint, "smepulse")
        assert {k.split("/")[0] for k in written} == {"bronze", "warehouse", "_bronze_metastore"}
        assert [k for k in written if k.startswith("warehouse/probe/t")], written
        _trino_answers(port, "drop table lakehouse.probe.t")
        assert not [k for k in _keys(s3_endpoint, "smepulse") if k.startswith("warehouse/probe/t")]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

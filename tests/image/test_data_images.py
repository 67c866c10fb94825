"""The data-stack test images (tests/images/) run as the chart runs them.

Each service starts from the Pod the chart renders with its *default* values (the install a
later test does on the real node): its command and args, env and Secrets, user, read-only root
file system, dropped capabilities, memory limit and volumes (tests/images/dockerpod.py). Only
the network differs: ``--network host`` with the listening address moved to 127.0.0.1 and a
free port, so every probe and client talks to loopback. Each service then answers the chart's
own probes and one real client action; Trino and MLflow work on the PostgreSQL and MinIO
containers started here (the Iceberg JDBC catalog, S3 writes, MLflow's backend and artefacts).
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.image.conftest import BuiltImages, Docker
from tests.images import dockerpod
from tests.images.build import NAMES, DataImage, build_data_images, chart_set_args
from tests.needs import KUBE, missing
from tests.unit.charts.helmlib import CHART, Helm, HelmUnavailable, find_helm

pytestmark = [pytest.mark.image, pytest.mark.timeout(600)]

#: The uid each image must declare, from the chart's default podSecurityContext.
CHART_UIDS = {"minio": 1000, "postgres": 70, "redis": 999, "trino": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def to_loopback(text: str, postgres: Postgres, minio: Minio) -> str:
    """The chart's Service addresses (short or cluster names) -> the containers started here."""
    text = re.sub(r"http://smepulse-minio(\.[a-z0-9.-]+)?:9000", minio.url, text)
    return re.sub(r"smepulse-postgresql(\.[a-z0-9.-]+)?:5432", f"127.0.0.1:{postgres.port}", text)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The chart with its default values: MinIO, PostgreSQL, Trino, MLflow and Redis on."""
    try:
        helm = Helm(find_helm(), tmp_path_factory.mktemp("helm"))
    except HelmUnavailable as exc:
        missing(f"Helm ({exc})", setting=KUBE)
    return helm.template()


@dataclass(frozen=True)
class Minio:
    url: str
    access_key: str
    secret_key: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
        )  # fmt: skip


@pytest.fixture(scope="module")
def minio(
    docker: Docker, data_images: dict[str, DataImage], rendered: list[dict[str, Any]],
    images: BuiltImages, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Minio]:  # fmt: skip
    spec = dockerpod.PodContainer.of(
        rendered, "StatefulSet", "smepulse-minio", "minio", tmp_path_factory.mktemp("minio")
    )
    s3, console = free_port(), free_port()
    args = spec.container["args"]
    assert args == ["server", "/data", "--address", ":9000", "--console-address", ":9001"], args
    spec.container = {
        **spec.container,
        "args": [*args[:2], "--address", f"127.0.0.1:{s3}", "--console-address", f"127.0.0.1:{console}"],
    }  # fmt: skip
    with dockerpod.started(docker.run, spec, data_images["minio"].ref) as running:
        ports = {"http-s3": s3}
        running.wait_for(lambda: dockerpod.probe(running, spec.container, "readiness", ports), 60,
                         "MinIO readiness (/minio/health/ready)")  # fmt: skip
        assert dockerpod.probe(running, spec.container, "liveness", ports)
        env = spec.env()
        endpoint = Minio(
            f"http://127.0.0.1:{s3}", env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"]
        )
        # What the chart's `buckets` init container (operator image) creates before MinIO starts.
        endpoint.client().create_bucket(Bucket="smepulse")
        # And its `users` container (stages image): each workload's own user and policy, which
        # Trino and MLflow log in with.
        users = dockerpod.PodContainer.of(
            rendered, "StatefulSet", "smepulse-minio", "users",
            tmp_path_factory.mktemp("minio-users"),
        )  # fmt: skip
        users.extra_env["MINIO_URL"] = endpoint.url
        with dockerpod.started(docker.run, users, images.tags["stages"]) as sidecar:
            sidecar.wait_for(lambda: dockerpod.probe(sidecar, users.container, "readiness", {}),
                             120, "the users container's readiness")  # fmt: skip
            yield endpoint


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str
    password: str

    def connect(self, database: str, password: str | None = None) -> Any:
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname=database,
            password=self.password if password is None else password, connect_timeout=5,
        )  # fmt: skip


@pytest.fixture(scope="module")
def postgres(
    docker: Docker, data_images: dict[str, DataImage], rendered: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Postgres]:  # fmt: skip
    spec = dockerpod.PodContainer.of(
        rendered, "StatefulSet", "smepulse-postgresql", "postgresql",
        tmp_path_factory.mktemp("postgres"),
    )  # fmt: skip
    assert "command" not in spec.container and "args" not in spec.container
    port = free_port()
    # PGPORT moves both the server and the probe's pg_isready; the image's CMD is `postgres`.
    spec.extra_env["PGPORT"] = str(port)
    spec.extra_args = ["postgres", "-c", "listen_addresses=127.0.0.1"]
    # The Pod's `roles` container too: each workload's own role (Trino's catalog logs in as
    # `iceberg`), made by the chart's script as the superuser over loopback.
    roles = dockerpod.PodContainer.of(
        rendered, "StatefulSet", "smepulse-postgresql", "roles",
        tmp_path_factory.mktemp("postgres-roles"),
    )  # fmt: skip
    roles.extra_env["PGPORT"] = str(port)
    with dockerpod.started(docker.run, spec, data_images["postgres"].ref) as running:
        running.wait_for(lambda: dockerpod.probe(running, spec.container, "readiness", {}), 90,
                         "PostgreSQL readiness (pg_isready)")  # fmt: skip
        with dockerpod.started(docker.run, roles, data_images["postgres"].ref) as sidecar:
            sidecar.wait_for(lambda: dockerpod.probe(sidecar, roles.container, "readiness", {}),
                             90, "the roles container's readiness")  # fmt: skip
            env = spec.env()
            yield Postgres(port, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])


def test_data_images_declare_the_chart_uids_and_rebuild_as_no_op(
    docker: Docker, data_images: dict[str, DataImage], rendered: list[dict[str, Any]]
) -> None:
    chart = {
        "minio": dockerpod.pod_spec(rendered, "StatefulSet", "smepulse-minio"),
        "postgres": dockerpod.pod_spec(rendered, "StatefulSet", "smepulse-postgresql"),
        "redis": dockerpod.pod_spec(rendered, "Deployment", "smepulse-redis"),
        "trino": dockerpod.pod_spec(rendered, "Deployment", "smepulse-trino-coordinator"),
    }
    for name, image in data_images.items():
        config = json.loads(docker.run("image", "inspect", image.ref).stdout)[0]["Config"]
        uid = CHART_UIDS[name]
        assert config["User"] == f"{uid}:{uid}", (name, config["User"])
        assert chart[name]["securityContext"]["runAsUser"] == uid, name
        for c in chart[name]["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
    # The content hash did not change: the second build is a no-op, with the same refs.
    again = build_data_images(docker.bin, docker.env)
    assert {n: i.ref for n, i in again.items()} == {n: i.ref for n, i in data_images.items()}
    assert all(i.reused for i in again.values()), again
    assert sum(i.seconds for i in again.values()) < 10, again
    assert set(again) == set(NAMES)


def test_chart_set_args_select_the_test_images(
    data_images: dict[str, DataImage], tmp_path: Path
) -> None:
    """What a real-node install passes to helm: every data-service container runs these refs."""
    helm = Helm(find_helm(), tmp_path)
    out = helm.run(
        "template", "smepulse", str(CHART), "--namespace", "smepulse", *chart_set_args(data_images)
    ).stdout
    manifests = [doc for doc in yaml.safe_load_all(out) if doc]
    workloads = {
        "minio": ("StatefulSet", "smepulse-minio"),
        "postgres": ("StatefulSet", "smepulse-postgresql"),
        "redis": ("Deployment", "smepulse-redis"),
        "trino": ("Deployment", "smepulse-trino-coordinator"),
    }
    for name, (kind, workload) in workloads.items():
        containers = dockerpod.pod_spec(manifests, kind, workload)["containers"]
        # The service's own container first; PostgreSQL's `roles` runs the same image, MinIO's
        # `users` the stages image (Python for the admin API), not a data image.
        assert containers[0]["image"] == data_images[name].ref, (name, containers[0]["image"])
        for extra in containers[1:]:
            want = data_images[name].ref if extra["name"] == "roles" else None
            if want:
                assert extra["image"] == want, (name, extra["name"], extra["image"])
    (worker,) = dockerpod.pod_spec(manifests, "Deployment", "smepulse-trino-worker")["containers"]
    assert worker["image"] == data_images["trino"].ref


def test_minio_puts_and_gets_an_object(minio: Minio) -> None:
    s3 = minio.client()
    body = uuid.uuid4().bytes * 1000
    s3.put_object(Bucket="smepulse", Key="bronze/probe.bin", Body=body)
    assert s3.get_object(Bucket="smepulse", Key="bronze/probe.bin")["Body"].read() == body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="smepulse", Prefix="bronze/")["Contents"]]
    assert keys == ["bronze/probe.bin"]


def test_postgres_runs_the_chart_init_script_and_sets_the_password(postgres: Postgres) -> None:
    with postgres.connect("postgres") as con, con.cursor() as cur:
        cur.execute("select datname from pg_database")
        databases = {row[0] for row in cur.fetchall()}
        cur.execute("select rolsuper from pg_roles where rolname = %s", (postgres.user,))
        assert cur.fetchone() == (True,)
    # POSTGRES_DB (the user's name) and the chart's init ConfigMap's three databases.
    assert {"smepulse", "mlflow", "iceberg", "metabase"} <= databases, databases
    with postgres.connect("iceberg") as con, con.cursor() as cur:
        cur.execute("select tablename from pg_tables where schemaname = 'public'")
        assert {r[0] for r in cur.fetchall()} == {"iceberg_tables", "iceberg_namespace_properties"}
        # POSTGRES_PASSWORD became the user's (hashed) password: the Pods that connect over
        # the network need it (pg_hba: `host all all all scram-sha-256`). Loopback inside the
        # container is trusted, as in the official image (initdb's defaults), so the wrong
        # password is not refused here.
        cur.execute("select rolpassword from pg_authid where rolname = %s", (postgres.user,))
        (hashed,) = cur.fetchone()
    assert hashed.startswith("SCRAM-SHA-256$"), hashed
    with postgres.connect("postgres", password="wrong") as con, con.cursor() as cur:
        cur.execute("select pg_read_file('pg_hba.conf')")
        text = cur.fetchone()[0]
    rules = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert rules[-1] == ["host", "all", "all", "all", "scram-sha-256"], rules[-3:]


def test_redis_requires_its_password_and_caches(
    docker: Docker, data_images: dict[str, DataImage], rendered: list[dict[str, Any]],
    tmp_path: Path,
) -> None:  # fmt: skip
    import redis

    spec = dockerpod.PodContainer.of(rendered, "Deployment", "smepulse-redis", "redis", tmp_path)
    port = free_port()
    spec.extra_args = ["--port", str(port), "--bind", "127.0.0.1"]
    password = spec.env()["REDIS_PASSWORD"]
    with dockerpod.started(docker.run, spec, data_images["redis"].ref) as running:
        ports = {"tcp-redis": port}
        running.wait_for(lambda: dockerpod.probe(running, spec.container, "readiness", ports), 30,
                         "Redis readiness (tcp)")  # fmt: skip
        # Without the password: refused (a raw PING; redis-py would retry with back-off).
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"PING\r\n")
            assert raw.recv(64).startswith(b"-NOAUTH"), "Redis answered without a password"
        client = redis.Redis(host="127.0.0.1", port=port, password=password)
        assert client.ping() is True
        client.set("smepulse:probe", "42")
        assert client.get("smepulse:probe") == b"42"
        assert client.config_get("maxmemory") == {"maxmemory": str(256 * 2**20)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        # The password is in no process's arguments (the chart writes it to a file).
        cmdlines = running.exec("sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
        assert "redis-server" in cmdlines and password not in cmdlines


def test_trino_serves_the_chart_catalogs_on_postgres_and_minio(
    docker: Docker, data_images: dict[str, DataImage], rendered: list[dict[str, Any]],
    postgres: Postgres, minio: Minio, tmp_path: Path,
) -> None:  # fmt: skip
    import trino

    spec = dockerpod.PodContainer.of(
        rendered, "Deployment", "smepulse-trino-coordinator", "trino", tmp_path
    )
    port = free_port()

    def config(text: str) -> str:
        text = text.replace("http-server.http.port=8080", f"http-server.http.port={port}")
        text = text.replace("http://smepulse-trino:8080", f"http://127.0.0.1:{port}")
        # No worker here: the coordinator runs the tasks.
        return text.replace("node-scheduler.include-coordinator=false",
                            "node-scheduler.include-coordinator=true")  # fmt: skip

    def local(text: str) -> str:
        return to_loopback(text, postgres, minio)

    spec.file_patches = {
        ("config", "config.properties"): config,
        # Loopback only: Trino would otherwise announce the first non-loopback address.
        ("config", "node.properties"): lambda t: t + "node.internal-address=127.0.0.1\n",
        ("catalog", "lakehouse.properties"): local,
        ("catalog", "bronze.properties"): local,
    }
    with dockerpod.started(docker.run, spec, data_images["trino"].ref) as running:
        ports = {"http": port}

        def ready() -> bool:
            if not dockerpod.probe(running, spec.container, "readiness", ports):
                return False
            info = json.loads(dockerpod.urlopen_text(f"http://127.0.0.1:{port}/v1/info"))
            return info["starting"] is False

        seconds = running.wait_for(ready, 300, "Trino /v1/info starting=false")
        print(f"\nTrino ready in {seconds:.0f} s")
        assert dockerpod.probe(running, spec.container, "liveness", ports)
        info = json.loads(dockerpod.urlopen_text(f"http://127.0.0.1:{port}/v1/info"))
        assert info["nodeVersion"]["version"] == "476"
        connection = trino.dbapi.connect(host="127.0.0.1", port=port, user="smepulse")  # type: ignore[no-untyped-call]
        cur = connection.cursor()

        def sql(query: str) -> list[list[Any]]:
            cur.execute(query)
            return [list(r) for r in cur.fetchall()]

        # The node id the chart's command sets: the Pod's name, not the host's.
        assert sql("select node_id from system.runtime.nodes") == [[spec.pod_name]]
        sql("create schema lakehouse.probe")
        sql("create table lakehouse.probe.t as select 7 as x")
        assert sql("select x from lakehouse.probe.t") == [[7]]
    # The table's files are in MinIO, under the chart's warehouse prefix.
    listed = minio.client().list_objects_v2(Bucket="smepulse", Prefix="warehouse/probe/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith(".parquet") for k in keys), keys
    assert any(k.endswith(".metadata.json") for k in keys), keys


def test_mlflow_from_the_stages_image_on_postgres_and_minio(
    docker: Docker, images: BuiltImages, rendered: list[dict[str, Any]],
    postgres: Postgres, minio: Minio, tmp_path: Path,
) -> None:  # fmt: skip
    """The chart runs MLflow from the stages image (tests/images/mlflow/CONTRACT.md)."""
    from mlflow.tracking import MlflowClient

    spec = dockerpod.PodContainer.of(rendered, "Deployment", "smepulse-mlflow", "mlflow", tmp_path)
    port = free_port()
    replace = {
        "--host=0.0.0.0": "--host=127.0.0.1",
        "--port=5000": f"--port={port}",
        "--workers=2": "--workers=1",
    }
    args = [replace.get(a, a) for a in spec.container["args"]]
    args = [to_loopback(a, postgres, minio) for a in args]
    spec.container = {**spec.container, "args": args}
    spec.extra_env["MLFLOW_S3_ENDPOINT_URL"] = minio.url
    with dockerpod.started(docker.run, spec, images.tags["stages"]) as running:
        ports = {"http": port}
        seconds = running.wait_for(
            lambda: dockerpod.probe(running, spec.container, "startup", ports), 300,
            "MLflow /health",
        )  # fmt: skip
        print(f"\nMLflow ready in {seconds:.0f} s")
        assert dockerpod.probe(running, spec.container, "readiness", ports)
        client = MlflowClient(f"http://127.0.0.1:{port}")
        experiment = client.create_experiment("image-probe")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "mase", 0.8)
        artefact = tmp_path / "model.txt"
        artefact.write_text("probe")
        client.log_artifact(run.info.run_id, str(artefact))
        assert client.get_run(run.info.run_id).data.metrics == {"mase": 0.8}
    # The backend rows are in PostgreSQL's mlflow database, the artefact in MinIO.
    with postgres.connect("mlflow") as con, con.cursor() as cur:
        cur.execute("select name from experiments where name = 'image-probe'")
        assert cur.fetchall() == [("image-probe",)]
    listed = minio.client().list_objects_v2(Bucket="smepulse", Prefix="mlflow/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith(f"{run.info.run_id}/artifacts/model.txt") for k in keys), keys

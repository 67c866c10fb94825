"""No password in a process's arguments, checked on the real programs: Redis, MinIO's `users`
container (against a real MinIO) and PostgreSQL's `roles` container (against a real
PostgreSQL) are started from the chart's rendered container (command, args and env; only paths,
ports and host names swapped for local ones) with the password the chart's Secret would give,
then each must enforce/use that password while no process of theirs carries it in
/proc/<pid>/cmdline, which every local user can read."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import redis
from botocore.exceptions import ClientError

from tests.needs import KUBE, missing
from tests.services.procs import free_port
from tests.unit.charts.helmlib import CHART, Helm, HelmUnavailable, Manifest, find, find_helm

pytestmark = pytest.mark.integration

#: Characters Redis's config parser and a URI would trip on, and a shell would expand.
PASSWORD = 'p@ss w"o\\rd$HOME`x`:/%'


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    try:
        helm = Helm(find_helm(), tmp_path_factory.mktemp("helm"))
    except HelmUnavailable as exc:
        missing(f"Helm ({exc})", setting=KUBE)
    return helm.template([CHART / "ci" / "full-values.yaml"])


def _container(manifests: list[Manifest], deployment: str) -> dict[str, Any]:
    pod = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    return dict(pod["containers"][0])


def _cmdlines_of_tree(root: int) -> list[str]:
    """The command lines of ``root`` and all its descendants (from /proc, as `ps` shows)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        with suppress(OSError):
            out.append(
                (Path("/proc") / str(pid) / "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        todo += children.get(pid, [])
    return out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


def test_redis_requires_the_password_it_was_not_given_on_its_command_line(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    if not shutil.which("redis-server"):
        missing("redis-server")
    container = _container(rendered, "smepulse-redis")
    argv = [*container["command"], *container["args"]]
    assert not [a for a in argv if "PASSWORD" in a and a.startswith("$(")]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    local = tmp_path / "auth"
    local.mkdir()
    # The script writes to the auth volume's mount path: the same path, here in tmp_path.
    argv = [a.replace(mounts["auth"], str(local)) for a in argv]
    port = free_port()
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": PASSWORD}
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            assert proc.poll() is None, f"redis-server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "redis-server did not listen within 20 s"
            time.sleep(0.2)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong").ping()
        with pytest.raises(redis.AuthenticationError):  # no password: "Authentication required"
            redis.Redis(port=port).set("k", "v")
        assert redis.Redis(port=port, password=PASSWORD).ping() is True
        # exec: redis-server replaced the shell (it is PID 1 in the Pod, and gets SIGTERM).
        assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == "redis-server"
        cmdlines = _cmdlines_of_tree(proc.pid)
        assert cmdlines and not [c for c in cmdlines if PASSWORD in c], cmdlines
        assert oct((local / "auth.conf").stat().st_mode & 0o777) == "0o600"
    finally:
        _stop(proc)


def _pod_container(manifests: list[Manifest], statefulset: str, name: str) -> dict[str, Any]:
    pod = find(manifests, "StatefulSet", statefulset)["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == name)


def _literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, f"exited with {proc.returncode}: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"no {path.name} in {seconds} s: {log.read_text()}"
        time.sleep(0.2)


def test_minio_users_container_gets_no_key_on_its_command_line(
    rendered: list[Manifest], s3_endpoint: Any, tmp_path: Path
) -> None:
    """The rendered `users` container (its args as they are; only the URL and the marker path
    moved) against a real MinIO: the root and the workloads' keys only in its environment."""
    container = _pod_container(rendered, "smepulse-minio", "users")
    argv = [sys.executable if a == "python" else a for a in container["args"]]
    env = {
        **_literal_env(container),
        "PATH": os.environ["PATH"],
        "MINIO_URL": s3_endpoint.url,
        "READY_FILE": str(tmp_path / "users-ready"),
        "MINIO_ROOT_USER": s3_endpoint.access_key,
        "MINIO_ROOT_PASSWORD": s3_endpoint.secret_key,
    }
    secrets = {s3_endpoint.secret_key}
    for workload in ("STAGES", "TRINO", "MLFLOW"):
        env[f"{workload}_SECRET_KEY"] = f"{PASSWORD}-{workload}"
        secrets.add(env[f"{workload}_SECRET_KEY"])
    log = tmp_path / "users.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=sink, stderr=sink)
    try:
        _wait_for(tmp_path / "users-ready", proc, log, 60)
        cmdlines = _cmdlines_of_tree(proc.pid)
        assert cmdlines and not [c for c in cmdlines for s in secrets if s in c]
        # The keys work: the stages' user lists its own prefix (its only listing right since
        # the policies scope s3:ListBucket by prefix; the bucket itself does not exist here).
        client = boto3.client(
            "s3",
            endpoint_url=s3_endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="smepulse-stages",
            aws_secret_access_key=env["STAGES_SECRET_KEY"],
        )
        with pytest.raises(ClientError, match="NoSuchBucket"):
            client.list_objects_v2(
                Bucket=env["S3_BUCKET"], Prefix=env["BRONZE_PREFIX"].strip("/") + "/"
            )
    finally:
        _stop(proc)


def test_postgres_roles_container_gets_no_password_on_its_command_line(
    rendered: list[Manifest], postgres_dsn: str, tmp_path: Path
) -> None:
    """The rendered `roles` container's script (paths moved to tmp_path) against the real
    PostgreSQL: passwords only in its environment, and each role gets its own."""
    if not shutil.which("psql"):
        missing("psql (PostgreSQL client)")
    container = _pod_container(rendered, "smepulse-postgresql", "roles")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    sql = find(rendered, "ConfigMap", "smepulse-postgresql-init")["data"]
    (tmp_path / "sql").mkdir()
    # Databases of this test's own (the server may be shared with other tests).
    dbs = {db: f"t{os.getpid()}_{db}" for db in ("mlflow", "iceberg", "metabase")}
    roles_sql = sql["workload-roles.sql"]
    for db, own in dbs.items():
        assert f"\\set db {db}\n" in roles_sql
        roles_sql = roles_sql.replace(f"\\set db {db}\n", f"\\set db {own}\n")
    (tmp_path / "sql" / "workload-roles.sql").write_text(roles_sql)
    (tmp_path / "sql" / "workload-role.sql").write_text(sql["workload-role.sql"])
    script = container["command"][2]
    script = script.replace(f"{mounts['roles-tmp']}/roles-ready", str(tmp_path / "roles-ready"))
    script = script.replace(mounts["roles-sql"], str(tmp_path / "sql"))
    user, _, rest = postgres_dsn.removeprefix("postgresql://").partition("@")
    port = rest.partition("/")[0].rpartition(":")[2]
    env = {
        "PATH": os.environ["PATH"],
        "PGUSER": user,
        "PGPORT": port,
        "PGPASSWORD": f"{PASSWORD}-super",
    }
    roles = ("MLFLOW", "ICEBERG", "METABASE")
    for role in roles:
        env[f"{role}_DB_PASSWORD"] = f"{PASSWORD}-{role}"
    log = tmp_path / "roles.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*container["command"][:2], script],
            env=env,
            start_new_session=True,
            stdout=sink,
            stderr=sink,
        )
    try:
        _wait_for(tmp_path / "roles-ready", proc, log, 60)
        cmdlines = _cmdlines_of_tree(proc.pid)
        assert cmdlines and not [c for c in cmdlines if PASSWORD in c], cmdlines
        with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT rolname FROM pg_authid WHERE rolname = ANY(%s) AND rolpassword LIKE "
                "'SCRAM-SHA-256$%%'",
                ([r.lower() for r in roles],),
            )
            assert sorted(r for (r,) in cur.fetchall()) == ["iceberg", "metabase", "mlflow"]
        conn.close()
    finally:
        _stop(proc)
        conn = psycopg2.connect(postgres_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in dbs.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            for role in roles:
                cur.execute(f'DROP ROLE IF EXISTS "{role.lower()}"')
        conn.close()

"""PostgreSQL's per-workload roles, on a real server: the chart's rendered init SQL (as the
image's init runs it) and then its role scripts (as the Pod's `roles` container runs them, with
the passwords in the environment), twice; each role owns its database and its tables, cannot
connect to another workload's database, and has the password its Secret gives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.needs import KUBE, missing
from tests.unit.charts.helmlib import Helm, HelmUnavailable, find, find_helm

pytestmark = pytest.mark.integration
PASSWORDS = {
    "mlflow": "mlflow-Pa55 'quoted\" $HOME",
    "iceberg": "iceberg-pw-0123456789",
    "metabase": "metabase-pw-0123456789",
}


def _scram_matches(verifier: str, password: str) -> bool:
    """RFC 5802/7677: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>."""
    method, params, keys = verifier.split("$")
    iterations, salt = params.split(":")
    stored = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return (
        method == "SCRAM-SHA-256"
        and base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored
    )


@pytest.fixture()
def databases(postgres_dsn: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    psql = shutil.which("psql")
    if psql is None:
        missing("psql (PostgreSQL client)")
    try:
        helm = Helm(find_helm(), tmp_path / "helm")
    except HelmUnavailable as exc:
        missing(f"Helm ({exc})", setting=KUBE)
    tag = uuid.uuid4().hex[:8]
    names = {role: f"t{tag}_{role}" for role in PASSWORDS}
    manifests = helm.template(sets={f"postgresql.databases.{r}": n for r, n in names.items()})
    sql = find(manifests, "ConfigMap", "smepulse-postgresql-init")["data"]
    for name, text in sql.items():
        (tmp_path / name).write_text(text)
    try:
        yield {"dir": str(tmp_path), **names}
    finally:
        conn = psycopg2.connect(postgres_dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in names.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in PASSWORDS:
                cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.close()


def _psql(dsn: str, script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(script)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _as(dsn: str, role: str, database: str) -> psycopg2.extensions.connection:
    base = dsn.removeprefix("postgresql://").partition("@")[2].rpartition("/")[0]
    return psycopg2.connect(f"postgresql://{role}@{base}/{database}")


def test_each_workload_role_owns_its_database_only(
    postgres_dsn: str, databases: dict[str, str]
) -> None:
    folder = Path(databases["dir"])
    init = _psql(postgres_dsn, folder / "01-smepulse.sql", {})
    assert init.returncode == 0, init.stderr
    env = {f"{role.upper()}_DB_PASSWORD": pw for role, pw in PASSWORDS.items()}
    for _ in range(2):  # a restart, or a `helm upgrade`: the same result
        roles = _psql(postgres_dsn, folder / "workload-roles.sql", env)
        assert roles.returncode == 0, roles.stderr

    with psycopg2.connect(postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT d.datname, pg_get_userbyid(d.datdba) FROM pg_database d "
            "WHERE d.datname = ANY(%s) ORDER BY 1",
            ([databases[r] for r in PASSWORDS],),
        )
        owners = dict(cur.fetchall())
        cur.execute(
            "SELECT rolname, rolpassword, rolsuper, rolcreatedb FROM pg_authid "
            "WHERE rolname = ANY(%s)",
            (list(PASSWORDS),),
        )
        authid = {row[0]: row[1:] for row in cur.fetchall()}
    conn.close()
    assert owners == {databases[r]: r for r in PASSWORDS}
    for role, password in PASSWORDS.items():
        verifier, superuser, createdb = authid[role]
        assert (superuser, createdb) == (False, False), role
        assert _scram_matches(verifier, password), role

    # The Iceberg catalog's tables (made by the superuser in the init) pass to its role.
    iceberg = _as(postgres_dsn, "iceberg", databases["iceberg"])
    with iceberg, iceberg.cursor() as cur:
        cur.execute(
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name) "
            "VALUES ('lakehouse', 'gold', 't')"
        )
        cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'iceberg_tables'")
        assert cur.fetchone() == ("iceberg",)
    iceberg.close()

    mlflow = _as(postgres_dsn, "mlflow", databases["mlflow"])
    with mlflow, mlflow.cursor() as cur:
        cur.execute("CREATE TABLE experiments (id int)")  # MLflow's migrations create tables
    mlflow.close()

    for role, other in (("mlflow", "iceberg"), ("metabase", "mlflow"), ("iceberg", "metabase")):
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            _as(postgres_dsn, role, databases[other])


def test_a_missing_password_stops_the_roles_script(
    postgres_dsn: str, databases: dict[str, str]
) -> None:
    folder = Path(databases["dir"])
    env = {"MLFLOW_DB_PASSWORD": "x" * 20, "ICEBERG_DB_PASSWORD": "y" * 20}
    roles = _psql(postgres_dsn, folder / "workload-roles.sql", env)
    # Metabase's is missing: the script stops naming the role (no role is left without one,
    # nor given the previous role's password).
    assert roles.returncode != 0
    assert "no password (8 characters or more) in the environment for role metabase" in (
        roles.stdout + roles.stderr
    ), roles.stdout + roles.stderr

"""Each workload its own credentials (issue 13 point 6): the stages, Trino and MLflow get their
own MinIO users, never the root pair, which only MinIO's Pod reads; MLflow, Trino's Iceberg
catalog and Metabase get their own PostgreSQL roles, not the superuser; no rendered command line
carries a password."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.unit.charts.helmlib import CHART, Helm, Manifest, find, kinds, pod_specs

pytestmark = pytest.mark.unit
FULL = CHART / "ci" / "full-values.yaml"
#: Given (not generated) so the test knows them independently of the render.
ROOT_PASSWORD = "minio-root-Pa55word-given"
PG_PASSWORD = "postgres-super-Pa55word-given"


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> list[Manifest]:
    return helm.template(
        [FULL],
        sets={"minio.auth.rootPassword": ROOT_PASSWORD, "postgresql.auth.password": PG_PASSWORD},
    )


def _secret(manifests: list[Manifest], name: str) -> dict[str, str]:
    data = find(manifests, "Secret", name)["data"]
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _containers(manifests: list[Manifest], ref: str) -> dict[str, dict[str, Any]]:
    pods = dict(pod_specs(manifests))
    pod = pods[ref]
    return {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    """name -> literal value, or (secret, key) for a secretKeyRef."""
    out: dict[str, Any] = {}
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        out[item["name"]] = (ref["name"], ref["key"]) if ref else item.get("value")
    return out


def test_stages_trino_and_mlflow_get_their_own_minio_users(rendered: list[Manifest]) -> None:
    users = _secret(rendered, "smepulse-minio-users")
    assert sorted(users) == ["mlflow-secret-key", "stages-secret-key", "trino-secret-key"]
    assert len(set(users.values())) == 3
    assert ROOT_PASSWORD not in users.values()

    stages = _secret(rendered, "smepulse-secrets")
    assert stages["SMEPULSE_S3_ACCESS_KEY_ID"] == "smepulse-stages"
    assert stages["SMEPULSE_S3_SECRET_ACCESS_KEY"] == users["stages-secret-key"]

    for ref in ("Deployment/smepulse-trino-coordinator", "Deployment/smepulse-trino-worker"):
        env = _env(_containers(rendered, ref)["trino"])
        assert env["S3_ACCESS_KEY"] == "smepulse-trino", ref
        assert env["S3_SECRET_KEY"] == ("smepulse-minio-users", "trino-secret-key"), ref
    env = _env(_containers(rendered, "Deployment/smepulse-mlflow")["mlflow"])
    assert env["AWS_ACCESS_KEY_ID"] == "smepulse-mlflow"
    assert env["AWS_SECRET_ACCESS_KEY"] == ("smepulse-minio-users", "mlflow-secret-key")


def test_minio_root_credentials_stay_in_minio_pod(rendered: list[Manifest]) -> None:
    readers = set()
    for ref, pod in pod_specs(rendered):
        for container in pod.get("initContainers", []) + pod["containers"]:
            for value in _env(container).values():
                if value in {("smepulse-minio", "root-password"), ("smepulse-minio", "root-user")}:
                    readers.add(f"{ref}/{container['name']}")
    assert readers == {"StatefulSet/smepulse-minio/minio", "StatefulSet/smepulse-minio/users"}


def test_minio_users_container_is_restricted_and_gates_readiness(
    rendered: list[Manifest],
) -> None:
    users = _containers(rendered, "StatefulSet/smepulse-minio")["users"]
    sc = users["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert users["readinessProbe"]["exec"]["command"] == ["cat", "/tmp/users-ready"]
    env = _env(users)
    assert env["MINIO_URL"] == "http://127.0.0.1:9000"
    assert env["READY_FILE"] == "/tmp/users-ready"
    assert {env[f"{w}_ACCESS_KEY"] for w in ("STAGES", "TRINO", "MLFLOW")} == {
        "smepulse-stages",
        "smepulse-trino",
        "smepulse-mlflow",
    }
    # Prefixes from values.objectStore (the policies' resources).
    assert (env["S3_BUCKET"], env["BRONZE_PREFIX"], env["MLFLOW_PREFIX"]) == (
        "smepulse",
        "bronze",
        "mlflow",
    )


def test_each_database_client_uses_its_own_role(rendered: list[Manifest]) -> None:
    roles = _secret(rendered, "smepulse-postgresql-roles")
    assert sorted(roles) == ["iceberg-password", "metabase-password", "mlflow-password"]
    assert len(set(roles.values())) == 3
    assert PG_PASSWORD not in roles.values()

    mlflow = _containers(rendered, "Deployment/smepulse-mlflow")["mlflow"]
    uri = next(a for a in mlflow["args"] if a.startswith("--backend-store-uri="))
    assert uri == (
        "--backend-store-uri=postgresql+psycopg2://mlflow@smepulse-postgresql:5432/mlflow"
    )
    assert _env(mlflow)["PGPASSWORD"] == ("smepulse-postgresql-roles", "mlflow-password")

    trino = _env(_containers(rendered, "Deployment/smepulse-trino-coordinator")["trino"])
    assert trino["POSTGRES_PASSWORD"] == ("smepulse-postgresql-roles", "iceberg-password")
    catalog = find(rendered, "ConfigMap", "smepulse-trino")["data"]["lakehouse.properties"]
    assert "iceberg.jdbc-catalog.connection-user=iceberg\n" in catalog

    metabase = _env(_containers(rendered, "Deployment/smepulse-metabase")["metabase"])
    assert metabase["MB_DB_USER"] == "metabase"
    assert metabase["MB_DB_PASS"] == ("smepulse-postgresql-roles", "metabase-password")

    # The superuser's password: only PostgreSQL's own Pod reads it.
    readers = {
        f"{ref}/{c['name']}"
        for ref, pod in pod_specs(rendered)
        for c in pod["containers"]
        if ("smepulse-postgresql", "password") in _env(c).values()
    }
    assert readers == {
        "StatefulSet/smepulse-postgresql/postgresql",
        "StatefulSet/smepulse-postgresql/roles",
    }


def test_postgres_init_runs_only_the_databases_script(rendered: list[Manifest]) -> None:
    """The role scripts need the `roles` container's environment: the image's init (which runs
    every *.sql of /docker-entrypoint-initdb.d) must not see them."""
    pod = dict(pod_specs(rendered))["StatefulSet/smepulse-postgresql"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["init"]["configMap"]["items"] == [
        {"key": "01-smepulse.sql", "path": "01-smepulse.sql"}
    ]
    data = find(rendered, "ConfigMap", "smepulse-postgresql-init")["data"]
    assert "\\getenv password MLFLOW_DB_PASSWORD" in data["workload-roles.sql"]
    env = _env(_containers(rendered, "StatefulSet/smepulse-postgresql")["roles"])
    assert env["MLFLOW_DB_PASSWORD"] == ("smepulse-postgresql-roles", "mlflow-password")


def test_no_rendered_command_line_holds_a_secret(rendered: list[Manifest]) -> None:
    secrets = {
        value
        for secret in kinds(rendered, "Secret")
        for value in (base64.b64decode(v).decode() for v in (secret.get("data") or {}).values())
        if len(value) >= 16
    }
    assert {ROOT_PASSWORD, PG_PASSWORD} <= secrets
    leaks = []
    for ref, pod in pod_specs(rendered):
        for container in pod.get("initContainers", []) + pod["containers"]:
            line = "\n".join(container.get("command", []) + container.get("args", []))
            leaks += [f"{ref}/{container['name']}" for value in secrets if value in line]
    assert leaks == []


def test_external_object_store_keeps_the_users_keys(helm: Helm) -> None:
    manifests = helm.template(
        [FULL],
        sets={
            "minio.enabled": "false",
            "minio.external.endpointUrl": "https://s3.example.test",
            "minio.external.accessKeyId": "AKIAEXAMPLE",
            "minio.external.secretAccessKey": "their-secret",
        },
    )
    assert not [s for s in kinds(manifests, "Secret") if "minio" in s["metadata"]["name"]]
    stages = _secret(manifests, "smepulse-secrets")
    assert stages["SMEPULSE_S3_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    env = _env(_containers(manifests, "Deployment/smepulse-trino-coordinator")["trino"])
    assert env["S3_ACCESS_KEY"] == ("smepulse-secrets", "SMEPULSE_S3_ACCESS_KEY_ID")


#: Every credential given, so two renders differ only in the one a test changes.
GIVEN = {
    "minio.auth.rootPassword": ROOT_PASSWORD,
    "postgresql.auth.password": PG_PASSWORD,
    "minio.auth.userSecretKeys.stages": "stages-key-given-0123456789",
    "minio.auth.userSecretKeys.trino": "trino-key-given-0123456789",
    "minio.auth.userSecretKeys.mlflow": "mlflow-key-given-0123456789",
    "postgresql.auth.rolePasswords.mlflow": "mlflow-pw-given-0123456789",
    "postgresql.auth.rolePasswords.iceberg": "iceberg-pw-given-0123456789",
    "postgresql.auth.rolePasswords.metabase": "metabase-pw-given-0123456789",
}
TRINO = {"Deployment/smepulse-trino-coordinator", "Deployment/smepulse-trino-worker"}
MINIO, POSTGRES = "StatefulSet/smepulse-minio", "StatefulSet/smepulse-postgresql"


def _annotations(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    """kind/name -> the annotations of its Pod template."""
    out = {}
    for m in manifests:
        spec = m.get("spec", {})
        if m["kind"] in ("Deployment", "StatefulSet", "Job"):
            template = spec["template"]
        elif m["kind"] == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        else:
            continue
        out[f"{m['kind']}/{m['metadata']['name']}"] = template["metadata"].get("annotations") or {}
    return out


@pytest.fixture(scope="module")
def given(helm: Helm) -> dict[str, dict[str, str]]:
    return _annotations(helm.template([FULL], sets=GIVEN))


@pytest.mark.parametrize(
    ("value", "rolled"),
    [
        ("minio.auth.userSecretKeys.trino", TRINO | {MINIO}),
        ("minio.auth.userSecretKeys.mlflow", {"Deployment/smepulse-mlflow", MINIO}),
        # The stages' Jobs read their Secret at start: nothing long-running holds the key.
        ("minio.auth.userSecretKeys.stages", {MINIO}),
        ("postgresql.auth.rolePasswords.iceberg", TRINO | {POSTGRES}),
        ("postgresql.auth.rolePasswords.mlflow", {"Deployment/smepulse-mlflow", POSTGRES}),
        ("postgresql.auth.rolePasswords.metabase", {"Deployment/smepulse-metabase", POSTGRES}),
    ],
)
def test_a_rotated_credential_rolls_exactly_its_consumers(
    helm: Helm, given: dict[str, dict[str, str]], value: str, rolled: set[str]
) -> None:
    """A `helm upgrade` with one credential changed changes the Pod template of exactly the
    workloads that read it (and of MinIO's / PostgreSQL's Pod, which applies it)."""
    rotated = "rotated-" + GIVEN[value]
    after = _annotations(helm.template([FULL], sets={**GIVEN, value: rotated}))
    assert set(after) == set(given)
    changed = {ref for ref in given if after[ref] != given[ref]}
    assert changed == rolled, value
    for ref in rolled - {MINIO, POSTGRES}:
        # Only its checksum changed, and it is a short hash, not the credential.
        assert set(after[ref]) == set(given[ref]) and after[ref].keys() >= {"checksum/credentials"}
        assert {k for k in after[ref] if after[ref][k] != given[ref][k]} == {
            "checksum/credentials"
        }, ref
        digest = after[ref]["checksum/credentials"]
        assert len(digest) == 16 and set(digest) <= set("0123456789abcdef"), digest
        assert rotated not in digest and GIVEN[value] not in given[ref]["checksum/credentials"]


def test_credentials_checksum_is_absent_when_the_chart_cannot_know_them(helm: Helm) -> None:
    """With existingSecrets (GitOps: Argo CD renders without `lookup`) the chart does not know
    the values: no checksum/credentials, so that every sync does not roll the workloads."""
    values = [FULL, CHART / "ci" / "existing-secrets-values.yaml"]
    first = _annotations(helm.template(values))
    second = _annotations(helm.template(values))
    assert first == second
    assert not [ref for ref, notes in first.items() if "checksum/credentials" in notes]

"""The smepulse chart, rendered by the real Helm: lint, offline schema validation, and what the
rendered objects promise (schedules, RBAC scope, hardening, names, credentials)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from smepulse.settings import Settings
from tests.unit.charts.helmlib import (
    CHART,
    KUBE_VERSION,
    REPO_ROOT,
    SCENARIOS,
    Helm,
    find,
    kinds,
    pod_specs,
)

pytestmark = pytest.mark.unit

MINIMAL = CHART / "ci" / "minimal-values.yaml"
FULL = CHART / "ci" / "full-values.yaml"
EXISTING = CHART / "ci" / "existing-secrets-values.yaml"
IDS = [p.name.removesuffix("-values.yaml") for p in SCENARIOS]


def test_scenarios_exist() -> None:
    assert {"minimal", "full"} <= set(IDS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_lint_strict(helm: Helm, scenario: Path) -> None:
    proc = helm.run("lint", "--strict", str(CHART), "-f", str(scenario), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_rendered_manifests_pass_offline_schema_validation(helm: Helm, scenario: Path) -> None:
    manifests = helm.template([scenario])
    assert len(manifests) > 10
    for manifest in manifests:
        # strict: unknown fields are errors too, not only wrong types.
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)


def test_offline_validator_catches_a_broken_manifest(helm: Helm) -> None:
    deployment = find(helm.template([MINIMAL]), "Deployment", "smepulse-operator")
    typo = copy.deepcopy(deployment)
    typo["spec"]["replicaz"] = 1
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(typo, KUBE_VERSION, strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(wrong_type, KUBE_VERSION, strict=True)


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("operator.enabeld", "true", "enabeld"),
        ("cronJobs.concurrencyPolicy", "Sometimes", "concurrencyPolicy"),
        ("trino.worker.replicas", "-1", "replicas"),
        ("cronJobs.dailyEtl.schedule", "daily", "schedule"),
        ("image.pullPolicy", "Sometimes", "pullPolicy"),
    ],
)
def test_values_schema_rejects_bad_values(helm: Helm, key: str, value: str, complaint: str) -> None:
    proc = helm.template_text(sets={key: value}, check=False)
    assert proc.returncode != 0
    assert complaint in proc.stderr


def _catalog_schedules() -> dict[str, str | None]:
    catalog = yaml.safe_load(
        (REPO_ROOT / "jobs" / "src" / "smepulse" / "catalog.yaml").read_text(encoding="utf-8")
    )
    return {name: p.get("schedule") for name, p in catalog["pipelines"].items()}


def test_cronjobs_carry_the_seed_schedules(helm: Helm) -> None:
    cronjobs = {
        c["metadata"]["labels"]["smepulse.io/pipeline"]: c
        for c in kinds(helm.template(), "CronJob")
    }
    assert {k: c["spec"]["schedule"] for k, c in cronjobs.items()} == {
        "daily-etl": "0 2 * * *",
        "ml-training": "0 1 * * 0",
        "external-sync": "0 0 1 * *",
    }
    # The catalog is the product's source of truth for schedules: the chart agrees with it.
    for pipeline, cron in cronjobs.items():
        assert _catalog_schedules()[pipeline] == cron["spec"]["schedule"]
    for pipeline, cron in cronjobs.items():
        spec = cron["spec"]
        assert spec["timeZone"] == "Asia/Ho_Chi_Minh"
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] > 0
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        # args, not command: the image's tini entrypoint stays PID 1.
        assert "command" not in container
        catch_up = ["--catch-up", "--max-catch-up", "7"] if pipeline == "daily-etl" else []
        assert container["args"] == ["smepulse", "submit", pipeline, *catch_up]
        assert pod["serviceAccountName"] == "smepulse-submit"


def test_ml_predict_cronjob_is_opt_in_and_params_are_passed(helm: Helm) -> None:
    cronjobs = {c["metadata"]["name"]: c for c in kinds(helm.template([FULL]), "CronJob")}
    assert "smepulse-ml-predict" in cronjobs
    daily = cronjobs["smepulse-daily-etl"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert daily["containers"][0]["args"] == [
        "smepulse",
        "submit",
        "daily-etl",
        "--catch-up",  # on by default (cronJobs.dailyEtl.catchUp), like Airflow's catchup
        "--max-catch-up",
        "7",
        "--param",
        "source=cronjob",
    ]
    training = cronjobs["smepulse-ml-training"]["spec"]["jobTemplate"]["spec"]["template"]
    assert "--catch-up" not in training["spec"]["containers"][0]["args"]  # weekly: no catch-up


def test_daily_catch_up_can_be_turned_off(helm: Helm) -> None:
    docs = helm.template(sets={"cronJobs.dailyEtl.catchUp.enabled": "false"})
    cron = find(docs, "CronJob", "smepulse-daily-etl")
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["smepulse", "submit", "daily-etl"]


def test_submit_role_only_creates_and_reads_runs(helm: Helm) -> None:
    role = find(helm.template(), "Role", "smepulse-submit")
    assert role["rules"] == [
        {
            "apiGroups": ["smepulse.io"],
            "resources": ["pipelineruns"],
            "verbs": ["get", "list", "create"],  # list: catch-up finds the last success
        }
    ]


def test_operator_rbac_is_namespaced_by_default(helm: Helm) -> None:
    manifests = helm.template([MINIMAL], namespace="team-a")
    role = find(manifests, "Role", "smepulse-operator")
    assert role["metadata"]["namespace"] == "team-a"
    binding = find(manifests, "RoleBinding", "smepulse-operator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "smepulse-operator", "namespace": "team-a"}
    ]
    assert not [c for c in kinds(manifests, "ClusterRole") if "operator" in c["metadata"]["name"]]
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "secrets" not in resources and "deployments" not in resources
    deployment = find(manifests, "Deployment", "smepulse-operator")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "smepulse",
        "operator",
        "--namespace",
        "team-a",
    ]


def test_operator_rbac_cluster_wide_on_request(helm: Helm) -> None:
    manifests = helm.template([MINIMAL], sets={"operator.clusterWide": "true"})
    cluster_role = find(manifests, "ClusterRole", "smepulse-operator")
    assert "namespace" not in cluster_role["metadata"]
    find(manifests, "ClusterRoleBinding", "smepulse-operator")
    assert not [r for r in kinds(manifests, "Role") if r["metadata"]["name"] == "smepulse-operator"]
    deployment = find(manifests, "Deployment", "smepulse-operator")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "smepulse",
        "operator",
    ]


def test_operator_deployment(helm: Helm) -> None:
    manifests = helm.template([MINIMAL], release="pulse")
    deployment = find(manifests, "Deployment", "pulse-smepulse-operator")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/smepulse/smepulse-operator:0.1.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e.get("value") for e in container["env"]}
    # Under any release name the operator is told the names of what the Jobs read.
    assert env["SMEPULSE_JOB_CONFIG_MAP"] == "pulse-smepulse-config"
    assert env["SMEPULSE_JOB_SECRET"] == "pulse-smepulse-secrets"
    assert env["SMEPULSE_JOB_SERVICE_ACCOUNT"] == "pulse-smepulse-jobs"
    assert env["SMEPULSE_JOB_IMAGE"] == "ghcr.io/smepulse/smepulse-stages:0.1.0"
    find(manifests, "ConfigMap", "pulse-smepulse-config")
    find(manifests, "Secret", "pulse-smepulse-secrets")
    jobs_sa = find(manifests, "ServiceAccount", "pulse-smepulse-jobs")
    assert jobs_sa["automountServiceAccountToken"] is False


def test_default_release_name_matches_the_settings_defaults(helm: Helm) -> None:
    manifests = helm.template([MINIMAL])
    defaults = Settings(home=Path("/tmp/x"))
    find(manifests, "ConfigMap", defaults.job_config_map)
    find(manifests, "Secret", defaults.job_secret)


#: Which of the two SME Pulse images each workload runs (checked by hand against what each one
#: imports: kubernetes only -> operator image; boto3, dbt, MLflow -> stages image).
IMAGE_OF = {
    "Deployment/smepulse-operator": "registry.local/op:abc",
    "CronJob/smepulse-daily-etl": "registry.local/op:abc",
    "CronJob/smepulse-ml-training": "registry.local/op:abc",
    "CronJob/smepulse-external-sync": "registry.local/op:abc",
    "CronJob/smepulse-ml-predict": "registry.local/op:abc",
    "Pod/smepulse-test-crd-established": "registry.local/op:abc",
    "Pod/smepulse-test-operator-ready": "registry.local/op:abc",
    "Deployment/smepulse-mlflow": "registry.local/st:abc",
    # The `users` container beside MinIO (botocore signs, `cryptography` encrypts).
    "StatefulSet/smepulse-minio": "registry.local/st:abc",
}


def test_each_workload_runs_its_image(helm: Helm) -> None:
    manifests = helm.template(
        [FULL],
        sets={
            "image.operator.repository": "registry.local/op",
            "image.stages.repository": "registry.local/st",
            "image.tag": "abc",
        },
    )
    ours = {
        ref: container["image"]
        for ref, pod in pod_specs(manifests)
        for container in pod["containers"]
        if container["image"].startswith("registry.local/")
    }
    assert ours == IMAGE_OF
    # Every SME Pulse container keeps the image's entrypoint (tini): args only.
    for ref, pod in pod_specs(manifests):
        for container in pod["containers"]:
            if container["image"].startswith("registry.local/"):
                assert "command" not in container, ref
    deployment = find(manifests, "Deployment", "smepulse-operator")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SMEPULSE_JOB_IMAGE"] == "registry.local/st:abc"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_every_pod_is_hardened(helm: Helm, scenario: Path) -> None:
    for ref, pod in pod_specs(helm.template([scenario])):
        assert pod["securityContext"]["runAsNonRoot"] is True, ref
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, ref
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, ref
            assert sc["capabilities"] == {"drop": ["ALL"]}, ref
            assert "limits" in container["resources"], ref
            assert ":latest" not in container["image"], ref
            if "metabase" not in ref:
                assert sc["readOnlyRootFilesystem"] is True, ref


def test_crd_is_rendered_with_keep_policy(helm: Helm) -> None:
    crd = find(helm.template([MINIMAL]), "CustomResourceDefinition", "pipelineruns.smepulse.io")
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "smepulse"
    source = yaml.safe_load(
        (CHART / "files" / "crds" / "pipelineruns.smepulse.io.yaml").read_text()
    )
    assert crd["spec"] == source["spec"]


def test_crd_keep_and_install_switches(helm: Helm) -> None:
    crd = find(helm.template([MINIMAL], sets={"crds.keep": "false"}), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})
    assert not kinds(
        helm.template([MINIMAL], sets={"crds.install": "false"}), "CustomResourceDefinition"
    )


def _settings_env_names() -> set[str]:
    names: set[str] = set()
    for field_name, info in Settings.model_fields.items():
        names.add(f"SMEPULSE_{field_name.upper()}")
        alias = info.validation_alias
        for choice in getattr(alias, "choices", []) or []:
            names.add(str(choice).upper())
    return names


def test_stage_config_keys_are_settings_fields(helm: Helm) -> None:
    import base64

    manifests = helm.template([FULL])
    config = find(manifests, "ConfigMap", "smepulse-config")["data"]
    secret = find(manifests, "Secret", "smepulse-secrets")["data"]
    # MLflow's own client limits are the one deliberate exception: MLflow reads them itself.
    mlflow_client = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"}
    assert mlflow_client <= set(config)
    unknown = (set(config) | set(secret)) - _settings_env_names() - mlflow_client
    assert unknown == set()
    # And they parse: the stages' Settings accept the rendered values.
    env = {**config, **{k: base64.b64decode(v).decode() for k, v in secret.items()}}
    env = {k: v for k, v in env.items() if k not in mlflow_client}
    settings = Settings(**{k.removeprefix("SMEPULSE_").lower(): v for k, v in env.items()})
    assert settings.warehouse == "trino"
    assert settings.bronze_root == "s3://smepulse/bronze"
    assert settings.trino_host == "smepulse-trino.smepulse.svc"
    assert settings.tracking_uri == "http://smepulse-mlflow.smepulse.svc:5000"
    assert settings.reports_uri == "s3://smepulse/reports"


def test_mlflow_server_starts_no_job_runner(helm: Helm) -> None:
    """MLflow 3's job runner (eight huey consumers, ~250 MiB each) got the server OOMKilled at
    its 1536Mi limit on the real node: the chart turns it off."""
    manifests = helm.template([])
    server = find(manifests, "Deployment", "smepulse-mlflow")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in server["containers"][0]["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def _b64(secret: dict[str, Any], key: str) -> str:
    import base64

    return base64.b64decode(secret["data"][key]).decode()


def test_generated_credentials_agree_within_a_render(helm: Helm) -> None:
    manifests = helm.template([FULL])
    stages = find(manifests, "Secret", "smepulse-secrets")
    minio = find(manifests, "Secret", "smepulse-minio")
    redis = find(manifests, "Secret", "smepulse-redis")
    users = find(manifests, "Secret", "smepulse-minio-users")
    assert len(_b64(minio, "root-password")) == 32
    # The stages get their own MinIO user, never the root pair.
    assert _b64(stages, "SMEPULSE_S3_SECRET_ACCESS_KEY") == _b64(users, "stages-secret-key")
    assert _b64(stages, "SMEPULSE_S3_ACCESS_KEY_ID") == "smepulse-stages"
    assert f":{_b64(redis, 'password')}@" in _b64(stages, "SMEPULSE_REDIS_URL")
    # Without a cluster to look up, every render generates anew: why GitOps needs existingSecret.
    again = find(helm.template([FULL]), "Secret", "smepulse-minio")
    assert _b64(again, "root-password") != _b64(minio, "root-password")


def test_component_existing_secret_needs_the_stage_secret(helm: Helm) -> None:
    proc = helm.template_text(sets={"minio.auth.existingSecret": "mine"}, check=False)
    assert proc.returncode != 0
    assert "config.existingSecret" in proc.stderr


def test_existing_secrets_scenario_generates_nothing(helm: Helm) -> None:
    manifests = helm.template([EXISTING])
    assert kinds(manifests, "Secret") == []
    refs = set()
    for _, pod in pod_specs(manifests):
        for container in pod["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add(ref["name"])
    # Trino and MLflow read their own MinIO users' keys from smepulse-minio-credentials; only
    # the stage Jobs (made by the operator, not rendered) read smepulse-stage-credentials.
    assert refs == {
        "smepulse-minio-credentials",
        "smepulse-postgresql-credentials",
        "smepulse-redis-credentials",
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_references_resolve(helm: Helm, scenario: Path) -> None:
    """ServiceAccounts, ConfigMaps and chart Secrets that Pods use are rendered by the chart."""
    manifests = helm.template([scenario])
    given = yaml.safe_load(scenario.read_text()) or {}
    external = {
        v
        for block in given.values()
        if isinstance(block, dict)
        for v in [block.get("existingSecret"), (block.get("auth") or {}).get("existingSecret")]
        if v
    }
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for ref, pod in pod_specs(manifests):
        if "serviceAccountName" in pod:
            assert ("ServiceAccount", pod["serviceAccountName"]) in names, ref
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names, ref
        for container in pod["containers"]:
            for env in container.get("env", []):
                key_ref = env.get("valueFrom", {}).get("secretKeyRef")
                if key_ref and not key_ref.get("optional"):
                    assert ("Secret", key_ref["name"]) in names or key_ref["name"] in external, ref


def test_minimal_scenario_runs_no_data_stack(helm: Helm) -> None:
    manifests = helm.template([MINIMAL])
    assert kinds(manifests, "StatefulSet") == []
    assert kinds(manifests, "Job") == []
    assert {d["metadata"]["name"] for d in kinds(manifests, "Deployment")} == {"smepulse-operator"}


def test_full_scenario_runs_every_component(helm: Helm) -> None:
    manifests = helm.template([FULL])
    components = {m["metadata"]["labels"].get("app.kubernetes.io/component") for m in manifests}
    assert {
        "operator", "config", "cronjob", "minio", "postgresql", "trino-coordinator",
        "trino-worker", "mlflow", "redis", "metabase", "tests", "jobs",
    } <= components  # fmt: skip
    # The buckets are folders made by MinIO's init container from the small operator image:
    # no install/upgrade hook, so nothing outlives `helm install --wait` (only `helm test` Pods
    # are hooks).
    hooks = {
        m["metadata"]["annotations"]["helm.sh/hook"]
        for m in manifests
        if "helm.sh/hook" in m["metadata"].get("annotations", {})
    }
    assert hooks == {"test"}
    minio = find(manifests, "StatefulSet", "smepulse-minio")["spec"]["template"]["spec"]
    (init,) = minio["initContainers"]
    assert init["image"] == "ghcr.io/smepulse/smepulse-operator:0.1.0"
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env == {"MINIO_DRIVE": "/data", "S3_BUCKETS": "smepulse,smepulse-exports"}
    assert {m["name"]: m["mountPath"] for m in init["volumeMounts"]} == {"data": "/data"}
    assert minio["containers"][0]["command"] == ["minio"]


def test_long_release_names_stay_dns_labels(helm: Helm) -> None:
    release = "a-very-long-release-name-for-a-small-business-tenant"  # 51 characters
    manifests = helm.template([FULL], release=release)
    names = [m["metadata"]["name"] for m in manifests if m["kind"] != "CustomResourceDefinition"]
    assert all(len(n) <= 63 and not n.endswith("-") for n in names), names
    per_kind = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(per_kind) == len(set(per_kind))


def test_trino_catalogs_point_at_the_chart_services(helm: Helm) -> None:
    data = find(helm.template([FULL]), "ConfigMap", "smepulse-trino")["data"]
    lakehouse = dict(line.split("=", 1) for line in data["lakehouse.properties"].splitlines())
    assert lakehouse["connector.name"] == "iceberg"
    assert lakehouse["iceberg.catalog.type"] == "jdbc"
    assert lakehouse["iceberg.jdbc-catalog.connection-url"] == (
        "jdbc:postgresql://smepulse-postgresql:5432/iceberg"
    )
    assert lakehouse["iceberg.jdbc-catalog.default-warehouse-dir"] == "s3://smepulse/warehouse"
    bronze = dict(line.split("=", 1) for line in data["bronze.properties"].splitlines())
    assert bronze["connector.name"] == "hive"
    assert bronze["hive.metastore"] == "file"
    assert bronze["s3.endpoint"] == "http://smepulse-minio.smepulse.svc:9000"
    assert "node-scheduler.include-coordinator=false" in data["coordinator.config.properties"]

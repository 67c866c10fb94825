"""`helm install` of the minimal scenario into a real kube-apiserver, the operator running as the
chart's ServiceAccount, `helm test`, and `helm uninstall`.

The node stand-in (tests/kube/node.py) plays kubelet: it runs the chart's operator Pod as a
local process with the env the chart gives it (plus a kubeconfig holding the operator
ServiceAccount's token, as a Pod would have), runs the stage Jobs that operator creates, and
runs the `helm test` Pods. Tests in this module run in order on one release.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.integration.charts.kubehelp import (
    CRD_NAME,
    adopt_crd,
    service_account_kubeconfig,
    wait_for,
)
from tests.kube.controlplane import ControlPlane, free_ports
from tests.kube.node import NodeStandIn
from tests.unit.charts.helmlib import CHART

pytestmark = pytest.mark.integration

RELEASE = "smepulse"
OPERATOR_SA = "smepulse-operator"
GROUP, VERSION, PLURAL = "smepulse.io", "v1alpha1", "pipelineruns"


@dataclass
class Installed:
    namespace: str
    workdir: Path
    install_output: str
    operator_kubeconfig: Path
    tests_kubeconfig: Path


@pytest.fixture(scope="module")
def installed(
    kube_cluster: ControlPlane,
    kube_api: client.ApiClient,
    kube_node: NodeStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Installed]:
    namespace = f"chart-{uuid.uuid4().hex[:6]}"
    workdir = tmp_path_factory.mktemp("chart")
    core = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": namespace}})
    operator_kc, tests_kc = workdir / "operator.kubeconfig", workdir / "tests.kubeconfig"
    metrics_port, health_port = free_ports(2)
    # Stages run as local processes: point them at the embedded stack in the workdir.
    stage_env = {
        "SMEPULSE_WAREHOUSE": "duckdb",
        "SMEPULSE_BRONZE_URI": str(workdir / "bronze"),
    }
    operator_env = [
        {"name": "KUBECONFIG", "value": str(operator_kc)},  # kopf's own login
        {"name": "SMEPULSE_KUBECONFIG", "value": str(operator_kc)},
    ]
    adopt_crd(kube_api, RELEASE, namespace)
    proc = kube_cluster.helm(
        "install", RELEASE, str(CHART), "-n", namespace,
        "-f", str(CHART / "ci" / "minimal-values.yaml"),
        "--set", f"operator.metrics.port={metrics_port}",
        "--set", f"operator.healthPort={health_port}",
        "--set", f"config.home={workdir / 'home'}",
        "--set", "tests.timeoutSeconds=60",
        "--set-json", f"config.env={json.dumps(stage_env)}",
        "--set-json", f"operator.extraEnv={json.dumps(operator_env)}",
        "--set-json", f"tests.extraEnv={json.dumps([{'name': 'KUBECONFIG', 'value': str(tests_kc)}])}",
    )  # fmt: skip
    # The ServiceAccounts exist now: give their Pods the tokens a kubelet would mount. The
    # operator Pod may start first and crash-loop a few seconds until its file appears.
    service_account_kubeconfig(kube_cluster, namespace, OPERATOR_SA, operator_kc)
    service_account_kubeconfig(kube_cluster, namespace, "smepulse-tests", tests_kc)
    try:
        yield Installed(namespace, workdir, proc.stdout, operator_kc, tests_kc)
    finally:
        kube_cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", check=False)
        custom = client.CustomObjectsApi(kube_api)
        # Runs keep the operator's finalizer; with no operator left, drop it so the
        # namespace can go.
        for run in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, run["metadata"]["name"],
                {"metadata": {"finalizers": None}},
            )  # fmt: skip
        core.delete_namespace(namespace, propagation_policy="Background")


def test_install_succeeds_with_actionable_notes(installed: Installed) -> None:
    assert "STATUS: deployed" in installed.install_output
    notes = installed.install_output.split("NOTES:", 1)[1]
    assert f"kubectl -n {installed.namespace} rollout status deployment/smepulse-operator" in notes
    assert f"helm test smepulse -n {installed.namespace}" in notes
    assert len(notes.strip().splitlines()) <= 30


def test_crd_is_established_and_kept(installed: Installed, kube_cluster: ControlPlane) -> None:
    kube_cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    crd = kube_cluster.kubectl_json("get", "crd", CRD_NAME)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE


def test_cronjobs_in_the_cluster_carry_the_seed_schedules(
    installed: Installed, kube_api: client.ApiClient
) -> None:
    cronjobs = client.BatchV1Api(kube_api).list_namespaced_cron_job(installed.namespace).items
    found = {c.metadata.name: (c.spec.schedule, c.spec.time_zone) for c in cronjobs}
    assert found == {
        "smepulse-daily-etl": ("0 2 * * *", "Asia/Ho_Chi_Minh"),
        "smepulse-ml-training": ("0 1 * * 0", "Asia/Ho_Chi_Minh"),
        "smepulse-external-sync": ("0 0 1 * *", "Asia/Ho_Chi_Minh"),
    }
    assert {c.spec.concurrency_policy for c in cronjobs} == {"Forbid"}


def _run_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {
            "pipeline": "external-sync",
            "logicalDate": "2025-01-01",
            "stages": ["ingest-provinces"],
        },
    }


def test_operator_as_its_service_account_completes_a_run(
    installed: Installed, kube_api: client.ApiClient, kube_node: NodeStandIn
) -> None:
    ns = installed.namespace
    wait_for(
        "the operator Deployment to be available",
        lambda: True
        if (client.AppsV1Api(kube_api).read_namespaced_deployment(OPERATOR_SA, ns).status.available_replicas or 0) >= 1
        else None,
        timeout=90,
    )  # fmt: skip
    custom = client.CustomObjectsApi(kube_api)
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, _run_manifest("provinces"))

    def finished() -> dict[str, Any] | None:
        run = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "provinces")
        phase = (run.get("status") or {}).get("phase")
        return run if phase in ("Succeeded", "Failed", "Cancelled") else None

    run = wait_for("the PipelineRun to finish", finished, timeout=240)
    pods = client.CoreV1Api(kube_api).list_namespaced_pod(ns).items
    operator_pods = [p.metadata.name for p in pods if p.metadata.name.startswith(OPERATOR_SA)]
    log = "\n".join(kube_node.pod_log(ns, p) for p in operator_pods)
    assert run["status"]["phase"] == "Succeeded", f"{run['status']}\noperator log:\n{log[-3000:]}"
    assert " 403" not in log and "Forbidden" not in log
    # The stage really ran, as a Job the operator created, with the chart's config.
    jobs = client.BatchV1Api(kube_api).list_namespaced_job(ns).items
    stage_jobs = [
        j
        for j in jobs
        if j.metadata.owner_references and j.metadata.owner_references[0].name == "provinces"
    ]
    assert {j.spec.template.spec.service_account_name for j in stage_jobs} == {"smepulse-jobs"}
    env_from = stage_jobs[0].spec.template.spec.containers[0].env_from
    assert env_from[0].config_map_ref.name == "smepulse-config"
    assert list((installed.workdir / "bronze" / "ext_provinces").glob("ingest_date=*/*.parquet"))


def test_operator_service_account_is_refused_outside_its_grant(
    installed: Installed, kube_cluster: ControlPlane
) -> None:
    api = config.new_client_from_config(config_file=str(installed.operator_kubeconfig))
    ns = installed.namespace
    try:
        # Inside the grant (positive control): runs in its own namespace.
        client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
        refused: dict[str, Callable[[], object]] = {
            "list secrets": lambda: client.CoreV1Api(api).list_namespaced_secret(ns),
            "create a deployment": lambda: client.AppsV1Api(api).create_namespaced_deployment(
                ns, {"metadata": {"name": "x"}, "spec": {}}
            ),
            "runs in another namespace": lambda: client.CustomObjectsApi(
                api
            ).list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL),
            "list namespaces": lambda: client.CoreV1Api(api).list_namespace(),
        }
        for what, call in refused.items():
            with pytest.raises(ApiException) as err:
                call()
            assert err.value.status == 403, what
    finally:
        api.close()
    # The same through impersonation (Impersonate-User), for both ServiceAccounts.
    operator = f"system:serviceaccount:{ns}:{OPERATOR_SA}"
    for args in (["get", "secrets"], ["create", "deployment", "x", "--image=x"]):
        denied = kube_cluster.kubectl(*args, "-n", ns, "--as", operator, check=False)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), args
    submit = f"system:serviceaccount:{ns}:smepulse-submit"

    def can(verb: str, resource: str) -> str:
        proc = kube_cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", ns, "--as", submit, check=False
        )
        return proc.stdout.strip()

    assert can("create", "pipelineruns.smepulse.io") == "yes"
    assert can("delete", "pipelineruns.smepulse.io") == "no"
    assert can("create", "jobs.batch") == "no"
    denied = kube_cluster.kubectl("get", "secrets", "-n", ns, "--as", submit, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr


def test_helm_test_passes(installed: Installed, kube_cluster: ControlPlane) -> None:
    proc = kube_cluster.helm(
        "test", RELEASE, "-n", installed.namespace, "--timeout", "3m", check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "smepulse-test-crd-established" in proc.stdout
    assert "smepulse-test-operator-ready" in proc.stdout
    assert proc.stdout.count("Phase:          Succeeded") == 2


def test_uninstall_leaves_the_crd_and_the_runs(
    installed: Installed, kube_cluster: ControlPlane, kube_api: client.ApiClient
) -> None:
    ns = installed.namespace
    kube_cluster.helm("uninstall", RELEASE, "-n", ns, "--wait")
    assert kube_cluster.kubectl_json("get", "crd", CRD_NAME)["metadata"]["name"] == CRD_NAME
    runs = client.CustomObjectsApi(kube_api).list_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL
    )
    assert [r["metadata"]["name"] for r in runs["items"]] == ["provinces"]
    left = kube_cluster.kubectl(
        "get", "deployments,cronjobs,roles,rolebindings,serviceaccounts,configmaps,secrets,services",
        "-n", ns, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name",
    ).stdout.split()  # fmt: skip
    assert left == []


def test_default_install_notes_say_the_volumes_need_a_default_storage_class(
    installed: Installed, kube_cluster: ControlPlane
) -> None:
    # The default values (MinIO and PostgreSQL on, no storageClass), rendered by a real install
    # in dry-run against this API server, which has no StorageClass at all (the CRD belongs to
    # the installed release).
    proc = kube_cluster.helm(
        "install",
        "notes",
        str(CHART),
        "-n",
        installed.namespace,
        "--dry-run=server",
        "--set",
        "crds.install=false",
    )
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "MinIO and PostgreSQL claim a volume from the cluster's default StorageClass" in notes
    assert "minio.persistence.storageClass / postgresql.persistence.storageClass" in notes
    named = kube_cluster.helm(
        "install", "notes", str(CHART), "-n", installed.namespace, "--dry-run=server",
        "--set", "crds.install=false",
        "--set", "minio.persistence.storageClass=fast", "--set", "postgresql.persistence.storageClass=fast",
    )  # fmt: skip
    assert "StorageClass" not in named.stdout.split("NOTES:", 1)[1]


def test_embedded_scenario_notes_name_the_warehouse_claim_and_its_class(
    installed: Installed, kube_cluster: ControlPlane
) -> None:
    proc = kube_cluster.helm(
        "install", "notes", str(CHART), "-n", installed.namespace, "--dry-run=server",
        "-f", str(CHART / "ci" / "embedded-values.yaml"), "--set", "crds.install=false",
    )  # fmt: skip
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert "the stages (embeddedWarehouse) claim a volume from the cluster's default" in notes
    assert "embeddedWarehouse.persistence.storageClass" in notes
    assert "Warehouse: DuckDB on the claim notes-smepulse-warehouse" in notes
    assert "Load bronze into /var/lib/smepulse/bronze" in notes
    assert len(notes.strip().splitlines()) <= 30

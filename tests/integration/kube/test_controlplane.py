"""Smoke tests of the test control plane: real kube-apiserver, controller-manager, etcd,
plus the node stand-in that runs Pods as local processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube.controlplane import ControlPlane
from tests.kube.node import NodeStandIn
from tests.kube.wait import gone, wait_for, wait_for_job

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL, KIND = "test.smepulse.io", "v1", "widgets", "Widget"


def job_body(name: str, command: list[str], **container: Any) -> dict[str, Any]:
    """A one-pod Job with no retries, like the operator's stage Jobs."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "ignored:latest", "command": command, **container}
                    ],
                }
            },
        },
    }


def pod_of_job(api: client.ApiClient, namespace: str, job: str) -> Any:
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"job-name={job}")
    assert len(pods.items) == 1, [p.metadata.name for p in pods.items]
    return pods.items[0]


def test_job_runs_to_complete(
    kube_api: client.ApiClient, kube_node: NodeStandIn, kube_namespace: str
) -> None:
    core, batch = client.CoreV1Api(kube_api), client.BatchV1Api(kube_api)
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "settings"}, "data": {"GREETING": "hi"}}
    )
    core.create_namespaced_secret(
        kube_namespace, {"metadata": {"name": "creds"}, "stringData": {"TOKEN": "s3cret"}}
    )
    batch.create_namespaced_job(
        kube_namespace,
        job_body(
            "hello",
            [
                "sh",
                "-c",
                'echo "$GREETING from $POD_NAME in $POD_NS, token ${#TOKEN} chars, $(WHO)"',
            ],
            envFrom=[{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "creds"}}],
            env=[
                {"name": "WHO", "value": "the stand-in"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            ],
        ),
    )

    assert wait_for_job(kube_api, kube_namespace, "hello") == "Complete"

    pod = pod_of_job(kube_api, kube_namespace, "hello")
    assert pod.spec.node_name == kube_node.node_name
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert terminated.started_at and terminated.finished_at
    out = kube_node.pod_log(kube_namespace, pod.metadata.name)
    assert out.strip() == (
        f"hi from {pod.metadata.name} in {kube_namespace}, token 6 chars, the stand-in"
    )


@pytest.mark.parametrize(
    ("command", "exit_code", "reason"),
    [
        (["sh", "-c", "echo failing >&2; exit 3"], 3, "Error"),
        (["smepulse-no-such-command", "stage", "x"], 127, "StartError"),
    ],
    ids=["exit-3", "command-not-found"],
)
def test_failing_command_fails_the_job(
    kube_api: client.ApiClient,
    kube_node: NodeStandIn,
    kube_namespace: str,
    command: list[str],
    exit_code: int,
    reason: str,
) -> None:
    client.BatchV1Api(kube_api).create_namespaced_job(kube_namespace, job_body("fails", command))

    assert wait_for_job(kube_api, kube_namespace, "fails") == "Failed"

    pod = pod_of_job(kube_api, kube_namespace, "fails")
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (exit_code, reason)
    if exit_code == 127:
        assert "not found on PATH" in terminated.message
        assert "not found on PATH" in kube_node.pod_log(kube_namespace, pod.metadata.name)


def test_job_deadline_kills_the_process(
    kube_api: client.ApiClient, kube_node: NodeStandIn, kube_namespace: str
) -> None:
    body = job_body("slow", ["sleep", "300"])
    body["spec"]["activeDeadlineSeconds"] = 2
    client.BatchV1Api(kube_api).create_namespaced_job(kube_namespace, body)

    assert wait_for_job(kube_api, kube_namespace, "slow", timeout=30) == "Failed"

    job = client.BatchV1Api(kube_api).read_namespaced_job("slow", kube_namespace)
    reasons = {c.reason for c in job.status.conditions if c.type == "Failed"}
    assert reasons == {"DeadlineExceeded"}
    # The Job controller deleted the Pod; the stand-in killed it and confirmed the deletion.
    core = client.CoreV1Api(kube_api)
    wait_for(
        lambda: not core.list_namespaced_pod(kube_namespace, label_selector="job-name=slow").items,
        timeout=30,
        what="the deadline-exceeded Pod to be deleted",
    )


def test_pod_waits_for_its_configmap(
    kube_api: client.ApiClient, kube_node: NodeStandIn, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    client.BatchV1Api(kube_api).create_namespaced_job(
        kube_namespace,
        job_body(
            "needs-config",
            ["sh", "-c", "echo $STAGE"],
            envFrom=[{"configMapRef": {"name": "late"}}],
        ),
    )

    def waiting_reason() -> str | None:
        pods = core.list_namespaced_pod(kube_namespace, label_selector="job-name=needs-config")
        for pod in pods.items:
            for status in pod.status.container_statuses or []:
                if status.state.waiting:
                    return str(status.state.waiting.reason)
        return None

    reason = wait_for(waiting_reason, timeout=30, what="the Pod to wait for its ConfigMap")
    assert reason in ("ContainerCreating", "CreateContainerConfigError")
    wait_for(
        lambda: waiting_reason() == "CreateContainerConfigError",
        timeout=30,
        what="CreateContainerConfigError",
    )
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "late"}, "data": {"STAGE": "verify-infra"}}
    )

    assert wait_for_job(kube_api, kube_namespace, "needs-config") == "Complete"
    pod = pod_of_job(kube_api, kube_namespace, "needs-config")
    assert kube_node.pod_log(kube_namespace, pod.metadata.name).strip() == "verify-infra"


@pytest.fixture(scope="module")
def widget_crd(kube_api: client.ApiClient, kube_cluster: ControlPlane) -> Iterator[str]:
    """A tiny namespaced CRD with a status subresource, removed after the module."""
    ext = client.ApiextensionsV1Api(kube_api)
    name = f"{PLURAL}.{GROUP}"
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"plural": PLURAL, "singular": "widget", "kind": KIND},
                "versions": [
                    {
                        "name": VERSION,
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {"size": {"type": "integer", "minimum": 1}},
                                    },
                                    "status": {
                                        "type": "object",
                                        "properties": {
                                            "phase": {"type": "string"},
                                            "observedGeneration": {"type": "integer"},
                                        },
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )

    def established() -> bool:
        crd = ext.read_custom_resource_definition(name)
        return any(
            c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
        )

    wait_for(established, timeout=30, what=f"CRD {name} Established")
    # So that the garbage collector knows the new type at once (see the method's docstring).
    kube_cluster.restart_controller_manager()
    try:
        yield name
    finally:
        ext.delete_custom_resource_definition(name)


def test_custom_resource_status_subresource(
    kube_api: client.ApiClient, widget_crd: str, kube_namespace: str
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    args = (GROUP, VERSION, kube_namespace, PLURAL)
    custom.create_namespaced_custom_object(
        *args,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": "w1"},
            "spec": {"size": 3},
        },
    )

    custom.patch_namespaced_custom_object_status(
        *args, "w1", {"status": {"phase": "Running", "observedGeneration": 1}}
    )
    # A write to the main resource must not touch status (that is what the subresource means).
    custom.patch_namespaced_custom_object(
        *args, "w1", {"spec": {"size": 4}, "status": {"phase": "Hacked"}}
    )

    widget = custom.get_namespaced_custom_object_status(*args, "w1")
    assert widget["status"] == {"phase": "Running", "observedGeneration": 1}
    assert widget["spec"] == {"size": 4}
    assert widget["metadata"]["generation"] == 2
    # The schema is enforced at admission.
    with pytest.raises(ApiException) as bad:
        custom.create_namespaced_custom_object(
            *args,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "metadata": {"name": "w2"},
                "spec": {"size": 0},
            },
        )
    assert bad.value.status == 422


def test_kubectl_and_helm_report_built_versions(kube_cluster: ControlPlane) -> None:
    versions = json.loads(kube_cluster.kubectl("version", "-o", "json").stdout)
    server = versions["serverVersion"]
    assert server["major"] == "1" and int(server["minor"]) >= 34, server
    assert server["gitVersion"].startswith(f"v1.{server['minor']}."), server
    assert versions["clientVersion"]["gitVersion"] == server["gitVersion"]
    assert kube_cluster.helm("version", "--short").stdout.startswith("v3.")
    # RBAC is really on: an unprivileged ServiceAccount may not list Secrets.
    denied = kube_cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "secrets",
        "--as=system:serviceaccount:default:default",
        check=False,
    )
    assert denied.stdout.strip() == "no"


def test_helm_installs_a_chart(
    kube_cluster: ControlPlane, kube_api: client.ApiClient, kube_namespace: str, tmp_path: Path
) -> None:
    chart = tmp_path / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: demo\nversion: 0.1.0\nkubeVersion: '>=1.34.0-0'\n"
    )
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )

    kube_cluster.helm("install", "demo", str(chart), "-n", kube_namespace, "--wait")

    cm = client.CoreV1Api(kube_api).read_namespaced_config_map("demo-cfg", kube_namespace)
    assert cm.data["kube"].startswith("v1.")
    kube_cluster.helm("uninstall", "demo", "-n", kube_namespace, "--wait")


def test_deleting_owner_garbage_collects_jobs(
    kube_api: client.ApiClient,
    kube_node: NodeStandIn,
    widget_crd: str,
    kube_namespace: str,
) -> None:
    custom, batch = client.CustomObjectsApi(kube_api), client.BatchV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    owner = custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        kube_namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "metadata": {"name": "owner"},
            "spec": {"size": 1},
        },
    )
    job = job_body("owned", ["sleep", "300"])
    job["metadata"]["ownerReferences"] = [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": "owner",
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    batch.create_namespaced_job(kube_namespace, job)
    pod = wait_for(
        lambda: next(
            (
                p
                for p in core.list_namespaced_pod(
                    kube_namespace, label_selector="job-name=owned"
                ).items
                if p.status.phase == "Running"
            ),
            None,
        ),
        timeout=30,
        what="the owned Job's pod to run",
    )

    custom.delete_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "owner")

    # Fast because widget_crd restarted controller-manager after installing the CRD.
    wait_for(
        lambda: gone(lambda: batch.read_namespaced_job("owned", kube_namespace)),
        timeout=30,
        what="the garbage collector to delete the owned Job",
    )
    # ...and the Job's Pod follows; the stand-in kills its process and confirms the deletion.
    wait_for(
        lambda: gone(lambda: core.read_namespaced_pod(pod.metadata.name, kube_namespace)),
        timeout=30,
        what="the owned Job's Pod to be deleted",
    )

"""Every ci/ scenario is accepted by a real kube-apiserver (server-side dry run), and
`helm upgrade` keeps the credentials the chart generated (its `lookup` against the live API)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.charts.kubehelp import wait_for
from tests.kube.controlplane import ControlPlane
from tests.unit.charts.helmlib import CHART, SCENARIOS

pytestmark = pytest.mark.integration

IDS = [p.name.removesuffix("-values.yaml") for p in SCENARIOS]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_scenario_applies_with_server_side_dry_run(
    scenario: Path, kube_cluster: ControlPlane, kube_namespace: str
) -> None:
    rendered = kube_cluster.helm(
        "template", "smepulse", str(CHART), "-n", kube_namespace, "-f", str(scenario)
    ).stdout
    proc = kube_cluster.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=rendered, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "(server dry run)" in proc.stdout
    assert "Warning" not in proc.stderr, proc.stderr


def test_server_side_dry_run_rejects_a_broken_manifest(
    kube_cluster: ControlPlane, kube_namespace: str
) -> None:
    rendered = kube_cluster.helm(
        "template", "smepulse", str(CHART), "-n", kube_namespace,
        "-f", str(CHART / "ci" / "minimal-values.yaml"),
        "--set", "cronJobs.dailyEtl.schedule=61 2 * * *",
    ).stdout  # fmt: skip
    proc = kube_cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered, check=False)
    assert proc.returncode != 0
    assert "smepulse-daily-etl" in proc.stderr and "schedule" in proc.stderr


@pytest.fixture
def quiet_namespace(kube_api: client.ApiClient, kube_namespace: str) -> Iterator[str]:
    """A namespace where no Pod may be created (ResourceQuota pods=0): the data stack's
    StatefulSets exist, but the node stand-in has nothing to run (it would start a real
    redis-server on this machine's port 6379)."""
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_resource_quota(
        kube_namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    wait_for(
        "the quota to be counted",
        lambda: (
            True
            if core.read_namespaced_resource_quota("no-pods", kube_namespace).status.hard
            else None
        ),
        timeout=30,
    )
    yield kube_namespace


def _secrets(api: client.ApiClient, namespace: str) -> dict[str, dict[str, str]]:
    items = client.CoreV1Api(api).list_namespaced_secret(namespace).items
    return {
        s.metadata.name: {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}
        for s in items
        if s.type == "Opaque"
    }


def test_upgrade_keeps_generated_secrets(
    kube_cluster: ControlPlane, kube_api: client.ApiClient, quiet_namespace: str
) -> None:
    ns = quiet_namespace
    release = f"up-{uuid.uuid4().hex[:4]}"
    # The CRD belongs to another release in this cluster; hooks need MinIO to answer.
    common = [
        "-n", ns, "--no-hooks",
        "--set", "crds.install=false", "--set", "tests.enabled=false",
        "--set", "trino.enabled=false", "--set", "mlflow.enabled=false",
    ]  # fmt: skip
    kube_cluster.helm("install", release, str(CHART), *common)
    before = _secrets(kube_api, ns)
    generated = {
        f"{release}-smepulse-minio": "root-password",
        f"{release}-smepulse-postgresql": "password",
        f"{release}-smepulse-redis": "password",
        f"{release}-smepulse-minio-users": "stages-secret-key",
        f"{release}-smepulse-postgresql-roles": "mlflow-password",
    }
    for name, key in generated.items():
        assert len(before[name][key]) == 32, name
    stages = before[f"{release}-smepulse-secrets"]
    # The stages' own MinIO user, not the root pair.
    assert stages["SMEPULSE_S3_ACCESS_KEY_ID"] == "smepulse-stages"
    assert (
        stages["SMEPULSE_S3_SECRET_ACCESS_KEY"]
        == before[f"{release}-smepulse-minio-users"]["stages-secret-key"]
    )

    kube_cluster.helm("upgrade", release, str(CHART), *common, "--set", "redis.maxMemory=128mb")
    after = _secrets(kube_api, ns)
    assert after == before
    redis = client.AppsV1Api(kube_api).read_namespaced_deployment(f"{release}-smepulse-redis", ns)
    assert "128mb" in redis.spec.template.spec.containers[0].args  # the upgrade did apply

    # An explicit value still wins over the stored one (rotation on purpose).
    kube_cluster.helm(
        "upgrade", release, str(CHART), *common, "--reuse-values",
        "--set", "postgresql.auth.password=rotated-on-purpose",
    )  # fmt: skip
    rotated = _secrets(kube_api, ns)
    assert rotated[f"{release}-smepulse-postgresql"]["password"] == "rotated-on-purpose"
    assert rotated[f"{release}-smepulse-minio"] == before[f"{release}-smepulse-minio"]

    kube_cluster.helm("uninstall", release, "-n", ns, "--wait")
    # Documented: the StatefulSets' claims outlive the release.
    claims = kube_cluster.kubectl("get", "pvc", "-n", ns, "-o", "name").stdout.split()
    assert sorted(claims) == [
        f"persistentvolumeclaim/data-{release}-smepulse-minio-0",
        f"persistentvolumeclaim/data-{release}-smepulse-postgresql-0",
    ]
    assert _secrets(kube_api, ns) == {}


def test_helm_template_cannot_keep_secrets(kube_cluster: ControlPlane) -> None:
    """Why GitOps needs existingSecret: without a live lookup every render generates anew."""

    def render() -> str:
        return kube_cluster.helm(
            "template", "x", str(CHART), "--show-only", "templates/minio/minio-secret.yaml"
        ).stdout

    assert render() != render()

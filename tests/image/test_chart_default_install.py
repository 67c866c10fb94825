"""The chart's *default* install, live on the real node (issue 13 point 3).

``helm install`` with the chart's default values (MinIO, PostgreSQL, Trino, MLflow and Redis
on) and ``--wait`` within Helm's default 5-minute timeout, into a namespace that *enforces* the
``restricted`` Pod Security Standard. Only the image references differ from the defaults: the
operator and stages images built from a clean clone of HEAD, and the data-stack test images of
tests/images/ (each reproduces the contract of its upstream image the chart relies on), all
imported into the node's containerd. Then: every Pod Ready, non-root (from the live Pod specs
and ``id -u`` inside every container) with a read-only root file system; ``helm test``
passes; ``helm upgrade`` with a changed value applies it and keeps the generated passwords;
``helm uninstall`` leaves exactly what the chart README's "What ``helm uninstall`` leaves
behind" says: the PipelineRun CRD, the MinIO and PostgreSQL PVCs, and the Pods of the last
``helm test`` (hooks; the first live run found them left over while the README said
"everything else: deleted", and the README now says so), nothing else.

Storage, the one thing this node lacks: it has no StorageClass and no provisioner, and the
chart's default install claims its volumes from the cluster's *default* StorageClass (NOTES
says so). The test stands in for a provisioner as a cluster admin would with static local
storage: a default StorageClass ``kubernetes.io/no-provisioner`` (``WaitForFirstConsumer``)
and two ``local`` PersistentVolumes (20Gi, 8Gi: the chart's default claim sizes) on folders of
the test's tmp dir, pinned to the node. kubelet applies the Pods' ``fsGroup`` to local
volumes, as a real provisioner's volumes get it; nothing is chowned by hand. The class and
the volumes are removed at the end, with the CRD and the PVCs (the README's "remove
everything"), so the session's next install starts clean.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.image.conftest import BuiltImages
from tests.image.pipelines import local_storage
from tests.images.build import DataImage, chart_set_args
from tests.kube.realnode import RealCluster
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.image, pytest.mark.timeout(1500)]

RELEASE = "smepulse"
CRD = "pipelineruns.smepulse.io"
CLASS = "smepulse-test-local"
#: The chart's default claims: name -> size (values.yaml `*.persistence.size`).
CLAIMS = {f"data-{RELEASE}-minio-0": "20Gi", f"data-{RELEASE}-postgresql-0": "8Gi"}
#: Pods of the default install once Ready: component label -> count.
COMPONENTS = {
    "operator": 1, "minio": 1, "postgresql": 1, "redis": 1, "mlflow": 1,
    "trino-coordinator": 1, "trino-worker": 1,
}  # fmt: skip


def _pods(cluster: RealCluster, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cluster.kubectl_json("get", "pods", "-n", ns)["items"]
    return items


def _secrets(cluster: RealCluster, ns: str) -> dict[str, dict[str, str]]:
    items = cluster.kubectl_json(
        "get", "secrets", "-n", ns, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )["items"]
    return {s["metadata"]["name"]: s.get("data", {}) for s in items}


def _ready_after(pod: dict[str, Any]) -> float:
    """Seconds from the Pod's creation to its Ready condition (API timestamps, 1 s grain)."""

    def at(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    return at(ready["lastTransitionTime"]) - at(pod["metadata"]["creationTimestamp"])


def _diagnose(cluster: RealCluster, ns: str) -> str:
    out = []
    for args in (
        ("get", "pods,pvc,pv", "-n", ns, "-o", "wide"),
        ("get", "events", "-n", ns, "--sort-by=.lastTimestamp"),
    ):
        out.append(cluster.kubectl(*args, check=False).stdout[-6000:])
    for pod in _pods(cluster, ns):
        for status in pod["status"].get("containerStatuses", []):
            if not status.get("ready"):
                name = pod["metadata"]["name"]
                logs = cluster.kubectl(
                    "logs", "-n", ns, name, "-c", status["name"], "--tail", "30", check=False
                )
                out.append(f"--- {name}/{status['name']}:\n{logs.stdout}{logs.stderr}")
    return "\n".join(out)


def _exec_id_and_root_mount(
    cluster: RealCluster, ns: str, pod: str, container: str
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "exec", "-n", ns, pod, "-c", container, "--", "sh", "-c",
        # The uid, and the first mount option of / ("ro" or "rw") as the kernel has it.
        'id -u; while read -r _ m _ o _; do [ "$m" = / ] && echo "${o%%,*}"; done'
        " </proc/mounts; true",
        check=False,
    )  # fmt: skip


def _restart(cluster: RealCluster, ns: str, pod: str, container: str) -> str:
    """Once the container runs again (up to 120 s): its restart count and why the last one
    ended."""

    def status() -> dict[str, Any] | None:
        doc = cluster.kubectl_json("get", "pod", "-n", ns, pod)
        for st in doc["status"].get("containerStatuses", []):
            if st["name"] == container and st.get("ready"):
                return dict(st)
        return None

    st = wait_for(status, timeout=120, what=f"{pod}/{container} to run again")
    last = (st.get("lastState") or {}).get("terminated") or {}
    return (
        f"restartCount {st.get('restartCount')}, last ended {last.get('reason')!r} "
        f"(exit code {last.get('exitCode')})"
    )


def _check_non_root_read_only(cluster: RealCluster, ns: str, pod: dict[str, Any]) -> list[str]:
    """Problems of one Pod: a container that may run as root or write its root file system,
    or (when running) whose ``id -u`` differs from the non-root uid its spec declares or whose
    ``/`` is not mounted read-only (``/proc/mounts`` inside it)."""
    problems = []
    name = pod["metadata"]["name"]
    pod_sc = pod["spec"].get("securityContext", {})
    running = {
        s["name"] for s in pod["status"].get("containerStatuses", []) if "running" in s["state"]
    }
    for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
        sc = {**pod_sc, **c.get("securityContext", {})}
        where = f"{name}/{c['name']}"
        if sc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot is {sc.get('runAsNonRoot')!r}")
        uid = sc.get("runAsUser")
        if not isinstance(uid, int) or uid == 0:
            problems.append(f"{where}: runAsUser is {uid!r}")
        if c.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if c["name"] in running:
            inside = _exec_id_and_root_mount(cluster, ns, name, c["name"])
            gone = ("no running task", "container not found")
            if inside.returncode != 0 and any(g in inside.stderr for g in gone):
                # The container restarted since the Pod was read (MLflow's, twice: in CI at
                # load ~1 and at load ~5): say why, then ask the new one (an OOMKill is a
                # finding, not a hiccup).
                restarted = _restart(cluster, ns, name, c["name"])
                print(f"{where}: restarted before the check: {restarted}")
                if "OOMKilled" in restarted:
                    problems.append(f"{where}: {restarted}")
                inside = _exec_id_and_root_mount(cluster, ns, name, c["name"])
            lines = inside.stdout.split()
            if inside.returncode != 0 or lines != [str(uid), "ro"]:
                problems.append(
                    f"{where}: inside: {inside.stdout.strip()!r} {inside.stderr.strip()[-300:]!r}"
                    f" (expected uid {uid} and a read-only /)"
                )
    return problems


def test_default_install_upgrade_uninstall_on_real_node(
    images: BuiltImages,
    data_images: dict[str, DataImage],
    real_cluster: RealCluster,
    real_api: client.ApiClient,
    real_namespace: str,
    tmp_path: Path,
) -> None:
    ns, cluster = real_namespace, real_cluster
    assert cluster.control_plane is not None
    helm = cluster.control_plane.helm

    started = time.monotonic()
    cluster.import_images(*images.tags.values(), *(i.ref for i in data_images.values()))
    print(f"\nimported operator, stages and {len(data_images)} data images into the node "
          f"in {time.monotonic() - started:.1f} s")  # fmt: skip

    # A CRD kept by an earlier release of this session's cluster would belong to that release:
    # Helm refuses to adopt it. The README's "remove everything" first.
    cluster.kubectl("delete", "crd", CRD, "--ignore-not-found", "--timeout=60s")
    core = client.CoreV1Api(real_api)
    core.patch_namespace(
        ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    storage = local_storage(
        cluster, tmp_path / "volumes", CLASS, tuple(sorted(set(CLAIMS.values())))
    )
    repository, tag = images.tags["operator"].rsplit(":", 1)
    image_args = [
        "--set", f"image.operator.repository={repository}",
        "--set", f"image.stages.repository={images.tags['stages'].rsplit(':', 1)[0]}",
        "--set-string", f"image.tag={tag}",
        *chart_set_args(data_images),
    ]  # fmt: skip
    try:
        cluster.kubectl("apply", "-f", "-", input=_as_list(storage))

        started = time.monotonic()
        install = helm(
            "install", RELEASE, str(images.chart), "-n", ns, *image_args,
            "--wait", "--timeout", "5m", check=False, timeout=420,
        )  # fmt: skip
        ready_seconds = time.monotonic() - started
        assert install.returncode == 0, f"{install.stderr}\n{_diagnose(cluster, ns)}"
        print(f"helm install --wait (default values): every Pod Ready in {ready_seconds:.1f} s")

        pods = _pods(cluster, ns)
        print("  Ready after creation: " + ", ".join(sorted(
            f"{p['metadata']['labels'].get('app.kubernetes.io/component')} {_ready_after(p):.0f} s"
            for p in pods
        )))  # fmt: skip
        counts: dict[str, int] = {}
        for pod in pods:
            component = pod["metadata"]["labels"].get("app.kubernetes.io/component", "?")
            counts[component] = counts.get(component, 0) + 1
            conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            assert conditions.get("Ready") == "True", (pod["metadata"]["name"], pod["status"])
            for status in pod["status"]["containerStatuses"]:
                assert status["imageID"], status  # a real container from an imported image
        assert counts == COMPONENTS, counts
        problems = [p for pod in pods for p in _check_non_root_read_only(cluster, ns, pod)]
        assert not problems, "\n".join(problems)
        bound = {
            c["metadata"]["name"]: (c["status"]["phase"], c["spec"]["storageClassName"])
            for c in cluster.kubectl_json("get", "pvc", "-n", ns)["items"]
        }
        assert bound == {name: ("Bound", CLASS) for name in CLAIMS}, bound

        started = time.monotonic()
        tested = helm("test", RELEASE, "-n", ns, "--timeout", "5m", check=False, timeout=420)
        assert tested.returncode == 0, f"{tested.stdout}\n{tested.stderr}"
        print(f"helm test passed in {time.monotonic() - started:.1f} s")
        for pod in _pods(cluster, ns):
            if "helm.sh/hook" in pod["metadata"].get("annotations", {}):
                problems += _check_non_root_read_only(cluster, ns, pod)
        assert not problems, "\n".join(problems)

        # Upgrade with one changed value: applied; generated passwords kept (README,
        # "Credentials: generated, kept, or yours"); every Pod Ready again.
        secrets = _secrets(cluster, ns)
        started = time.monotonic()
        upgrade = helm(
            "upgrade", RELEASE, str(images.chart), "-n", ns, *image_args,
            "--set", "config.logLevel=DEBUG", "--wait", "--timeout", "5m",
            check=False, timeout=420,
        )  # fmt: skip
        assert upgrade.returncode == 0, f"{upgrade.stderr}\n{_diagnose(cluster, ns)}"
        print(f"helm upgrade --wait in {time.monotonic() - started:.1f} s")
        config = cluster.kubectl_json("get", "configmap", "-n", ns, f"{RELEASE}-config")
        assert config["data"]["SMEPULSE_LOG_LEVEL"] == "DEBUG", config["data"]
        assert _secrets(cluster, ns) == secrets, "helm upgrade changed a generated Secret"
        generated = base64.b64decode(secrets[f"{RELEASE}-minio"]["root-password"])
        assert len(generated) >= 16, "MinIO's generated root password is too short"

        # Uninstall: the README's table, exactly.
        started = time.monotonic()
        helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "5m", timeout=420)
        print(f"helm uninstall --wait in {time.monotonic() - started:.1f} s")
        # The release's Pods go; the last `helm test` Pods stay (hooks, README).
        wait_for(
            lambda: all("helm.sh/hook" in p["metadata"].get("annotations", {})
                        for p in _pods(cluster, ns)),
            timeout=120, what=f"every Pod of the release in {ns} gone",
            describe=lambda: cluster.kubectl("get", "pods", "-n", ns).stdout,
        )  # fmt: skip
        left = cluster.kubectl_json(
            "get", "all,configmaps,secrets,serviceaccounts,roles,rolebindings,"
            "networkpolicies,pvc", "-n", ns,
        )["items"]  # fmt: skip
        left_names = sorted(
            f"{o['kind']}/{o['metadata']['name']}"
            for o in left
            if not (o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kube-root-ca.crt")
            and not (o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "default")
        )
        expected = [f"PersistentVolumeClaim/{n}" for n in CLAIMS] + [
            f"Pod/{RELEASE}-test-{n}" for n in ("crd-established", "operator-ready")
        ]
        assert left_names == sorted(expected), left_names
        for pod in _pods(cluster, ns):
            assert pod["status"]["phase"] == "Succeeded", (pod["metadata"]["name"], pod["status"])
        crd = cluster.kubectl_json("get", "crd", CRD)
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", crd["metadata"]
        cluster_rbac = cluster.kubectl_json(
            "get", "clusterroles,clusterrolebindings", "-l", f"app.kubernetes.io/instance={RELEASE}"
        )["items"]
        assert not cluster_rbac, [r["metadata"]["name"] for r in cluster_rbac]
    finally:
        # The README's "remove everything" (also after a failure half-way), then the stand-in
        # storage; the namespace itself goes with the fixture.
        helm("uninstall", RELEASE, "-n", ns, "--ignore-not-found", "--wait", check=False)
        cluster.kubectl("delete", "crd", CRD, "--ignore-not-found", "--timeout=60s", check=False)
        for kind in ("pod", "pvc"):
            cluster.kubectl("delete", kind, "-n", ns, "--all", "--timeout=90s", check=False)
        for obj in storage:
            cluster.kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"],
                            "--ignore-not-found", "--timeout=60s", check=False)  # fmt: skip


def _as_list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})

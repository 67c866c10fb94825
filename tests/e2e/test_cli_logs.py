"""``smepulse logs`` on the real node (tests/kube/realnode.py): the kubelet serves the Pod logs
the node stand-in of the integration layer cannot.

No operator runs here (it would need the stage image): the PipelineRun is created and its
status written by the test, and the stage Pods are created by hand with the labels the
operator's Jobs give them (smepulse.io/run, smepulse.io/stage, smepulse.io/attempt). Everything
``smepulse logs`` touches is real: the API server, the kubelet, containerd, the containers'
output. Expected lines are the ones the containers echo.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.kube.realnode import RealCluster
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DEBIAN = "smepulse-local/debian:bookworm"
CRD = (
    Path(__file__).resolve().parents[2] / "charts/smepulse/files/crds/pipelineruns.smepulse.io.yaml"
)
GROUP, VERSION, PLURAL = "smepulse.io", "v1alpha1", "pipelineruns"
RUN = "external-sync-20250101"


def stage_pod(name: str, run: str, stage: str, attempt: int, script: str) -> dict[str, Any]:
    labels = {
        "smepulse.io/run": run,
        "smepulse.io/stage": stage,
        "smepulse.io/attempt": str(attempt),
    }
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "enableServiceLinks": False,
            "containers": [{"name": "stage", "image": DEBIAN, "command": ["sh", "-c", script]}],
        },
    }


def finished(core: client.CoreV1Api, ns: str, name: str) -> bool:
    return core.read_namespaced_pod(name, ns).status.phase in ("Succeeded", "Failed")


def test_logs_follows_the_stage_pods_of_a_run_until_it_ends(
    real_cluster: RealCluster, real_api: client.ApiClient, real_namespace: str
) -> None:
    ns = real_namespace
    # The session's cluster is shared (the image layer helm-installs the chart, CRD included,
    # on it): add the CRD only if absent, and take away only what was added here.
    exts = client.ApiextensionsV1Api(real_api)
    added = not any(
        c.metadata.name == "pipelineruns.smepulse.io"
        for c in exts.list_custom_resource_definition().items
    )
    if added:
        real_cluster.kubectl("apply", "-f", str(CRD))
    try:
        real_cluster.kubectl(
            "wait", "--for=condition=Established", "crd/pipelineruns.smepulse.io", "--timeout=60s"
        )
        follow_logs(real_cluster, real_api, ns)
    finally:
        if added:
            real_cluster.kubectl("delete", "-f", str(CRD), "--wait=true")


def follow_logs(real_cluster: RealCluster, real_api: client.ApiClient, ns: str) -> None:
    custom, core = client.CustomObjectsApi(real_api), client.CoreV1Api(real_api)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PipelineRun",
            "metadata": {"name": RUN},
            "spec": {"pipeline": "external-sync", "logicalDate": "2025-01-01"},
        },
    )
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, RUN, {"status": {"phase": "Running"}}
    )
    pods = [
        stage_pod("a", RUN, "ingest-worldbank", 1, "echo worldbank one; echo worldbank two"),
        stage_pod("a2", RUN, "ingest-worldbank", 2, "echo worldbank again"),
        # Another run's Pod: never shown.
        stage_pod("x", "external-sync-20250102", "ingest-worldbank", 1, "echo other run"),
    ]
    for pod in pods:
        core.create_namespaced_pod(ns, pod)
    for name in ("a", "a2", "x"):
        wait_for(lambda n=name: finished(core, ns, n), timeout=90, what=f"pod {ns}/{name} to end")

    env = {**os.environ, "KUBECONFIG": str(real_cluster.kubeconfig)}
    env.pop("SMEPULSE_KUBECONFIG", None)
    cmd = [sys.executable, "-m", "smepulse.cli", "logs", RUN, "-n", ns]

    once = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert once.returncode == 0, once.stderr
    assert once.stdout.splitlines() == [
        "[ingest-worldbank] worldbank one",
        "[ingest-worldbank] worldbank two",
        "[ingest-worldbank#2] worldbank again",
    ]
    one_stage = subprocess.run(
        [*cmd, "--stage", "ingest-worldbank"], env=env, capture_output=True, text=True, timeout=60
    )
    assert one_stage.returncode == 0, one_stage.stderr
    # One stage, two Pods (attempts): still prefixed, by attempt.
    assert one_stage.stdout.splitlines()[-1] == "[ingest-worldbank#2] worldbank again"

    # --follow: a stage Pod started after the command is streamed while it runs, and the
    # command ends once the run is terminal and that Pod's stream has ended.
    follow = subprocess.Popen(
        [*cmd, "--follow"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        core.create_namespaced_pod(
            ns,
            stage_pod(
                "b",
                RUN,
                "ingest-provinces",
                1,
                "echo provinces start; sleep 8; echo provinces end",
            ),
        )
        assert follow.stdout is not None
        early = []
        while not early or early[-1] != "[ingest-provinces] provinces start":
            line = follow.stdout.readline()
            assert line, f"logs --follow ended early: {early} {follow.stderr}"
            early.append(line.rstrip("\n"))
        # Streamed while the Pod still runs (it sleeps 8 s after that line).
        assert not finished(core, ns, "b")
        wait_for(lambda: finished(core, ns, "b"), timeout=90, what=f"pod {ns}/b to end")
        assert follow.poll() is None, "logs --follow ended while the run was still Running"
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, RUN, {"status": {"phase": "Succeeded"}}
        )
        rest, err = follow.communicate(timeout=60)
        out = "\n".join(early) + "\n" + rest
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 0, err
    lines = out.splitlines()
    assert sorted(lines) == sorted(
        [
            "[ingest-worldbank] worldbank one",
            "[ingest-worldbank] worldbank two",
            "[ingest-worldbank#2] worldbank again",
            "[ingest-provinces] provinces start",
            "[ingest-provinces] provinces end",
        ]
    ), out
    assert lines.index("[ingest-provinces] provinces start") < lines.index(
        "[ingest-provinces] provinces end"
    )

"""What the real-node pipeline tests share: the ``smepulse`` CLI as a user runs it, the World
Bank replay inside the node's network namespace, PipelineRuns read through the API, and
``kubectl port-forward`` to a Service (the only way in from the test's loopback)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.image.conftest import REPO
from tests.image.worldbank_replay import INDICATORS
from tests.kube.realnode import RealCluster
from tests.kube.wait import wait_for

GROUP, VERSION, PLURAL = "smepulse.io", "v1alpha1", "pipelineruns"
SMEPULSE = str(Path(sys.executable).with_name("smepulse"))


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worldbank_env(base_url: str) -> dict[str, str]:
    return {
        "SMEPULSE_WORLDBANK_BASE_URL": base_url,
        "SMEPULSE_WORLDBANK_INDICATORS": json.dumps(INDICATORS),
        "SMEPULSE_WORLDBANK_START_YEAR": "2014",
        "SMEPULSE_HTTP_RETRIES": "1",
        "SMEPULSE_HTTP_BACKOFF_SECONDS": "1",
    }


def smepulse(*args: str, env: dict[str, str], cwd: Path, timeout: float = 900) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMEPULSE_")}
    proc = subprocess.run(
        [SMEPULSE, *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (
        f"smepulse {' '.join(args)} exited {proc.returncode}:\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


@contextlib.contextmanager
def replay(cluster: RealCluster, log: Path) -> Iterator[str]:
    """The World Bank replay in the node's network namespace; yields its base URL."""
    proc = subprocess.Popen(
        [*cluster.nsenter(), sys.executable, "-m", "tests.image.worldbank_replay",
         "--bind", cluster.node_ip, "--log", str(log)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        port = proc.stdout.readline().strip()
        assert port.isdigit(), f"the World Bank replay did not start: {proc.stderr.read()[-2000:]}"
        yield f"http://{cluster.node_ip}:{port}/v2"
    finally:
        _stop(proc)


def local_storage(
    cluster: RealCluster, root: Path, class_name: str, sizes: tuple[str, ...]
) -> list[dict[str, Any]]:
    """A default StorageClass without provisioner (``WaitForFirstConsumer``) and one ``local``
    PersistentVolume per size on a folder under ``root``, pinned to the node: what a cluster
    admin with static local storage provides, and what the chart's default claims bind to."""
    objects: list[dict[str, Any]] = [{
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": class_name, "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Retain",
    }]  # fmt: skip
    for i, size in enumerate(sizes):
        path = root / f"pv{i}"
        path.mkdir(parents=True)
        objects.append({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"{class_name}-{i}"},
            "spec": {
                "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain", "storageClassName": class_name,
                "local": {"path": str(path)},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In",
                     "values": [cluster.node_name]}]}]}},
            },
        })  # fmt: skip
    return objects


@contextlib.contextmanager
def port_forward(cluster: RealCluster, namespace: str, target: str, port: int) -> Iterator[int]:
    """``kubectl port-forward <target> :<port>`` on loopback; yields the local port."""
    plane = cluster.control_plane
    assert plane is not None
    proc = subprocess.Popen(
        [str(plane.bin_dir / "kubectl"), "port-forward", "-n", namespace, target, f":{port}",
         "--address", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plane.env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+) ->", line)
        assert found, f"kubectl port-forward {target}: {line!r} {proc.stderr.read()[-1000:]}"
        yield int(found.group(1))
    finally:
        _stop(proc)


class Runs:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom, self.ns = client.CustomObjectsApi(api), namespace

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.ns, PLURAL, name
            )
            return doc
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def wait_terminal(self, name: str, timeout: float) -> dict[str, Any]:
        terminal = {"Succeeded", "Failed", "TimedOut", "Cancelled"}

        def status() -> dict[str, Any] | None:
            doc = self.get(name)
            st = dict((doc or {}).get("status") or {})
            return st if st.get("phase") in terminal else None

        def describe() -> str:
            doc = self.get(name)
            return json.dumps((doc or {}).get("status"), indent=1)[-3000:]

        found = wait_for(status, timeout=timeout, interval=2, what=f"run {name}", describe=describe)
        assert found is not None
        return found

    def delete_all(self) -> None:
        self.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL)
        wait_for(
            lambda: (
                not self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL)[
                    "items"
                ]
            ),
            timeout=60,
            what=f"the runs of {self.ns} to be deleted",
        )

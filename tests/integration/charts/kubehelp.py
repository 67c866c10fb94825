"""Helpers of the chart integration tests: ServiceAccount kubeconfigs, CRD ownership, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube.controlplane import ControlPlane

CRD_NAME = "pipelineruns.smepulse.io"
T = TypeVar("T")


def service_account_kubeconfig(
    cluster: ControlPlane, namespace: str, service_account: str, path: Path
) -> Path:
    """A kubeconfig that authenticates AS the ServiceAccount, with a token from the TokenRequest
    API: the identity a Pod of that ServiceAccount has in a cluster (stronger than
    impersonation, which still authenticates as the admin first)."""
    token = cluster.kubectl(
        "-n", namespace, "create", "token", service_account, "--duration", "2h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text(encoding="utf-8"))
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": server}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [
            {
                "name": "sa",
                "context": {"cluster": "test", "user": service_account, "namespace": namespace},
            }
        ],
        "current-context": "sa",
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config), encoding="utf-8")
    tmp.replace(path)  # atomic: a Pod polling for the file never reads half of it
    return path


def adopt_crd(api: client.ApiClient, release: str, namespace: str) -> None:
    """Let this release own the (cluster-wide, shared) CRD if another test created it first.

    Helm refuses to install over an object it does not own; it adopts one carrying its
    ownership label and annotations. Other test modules apply the same CRD file.
    """
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.read_custom_resource_definition(CRD_NAME)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    ext.patch_custom_resource_definition(
        CRD_NAME,
        {
            "metadata": {
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": release,
                    "meta.helm.sh/release-namespace": namespace,
                },
            }
        },
    )


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0) -> T:
    """Poll ``probe`` until it returns a value that is not None; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except ApiException as exc:
            last = f"HTTP {exc.status}"
            if exc.status not in (404, 409):
                raise
        else:
            if value is not None:
                return value
            last = value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def status_of(exc: ApiException) -> int:
    return int(exc.status or 0)

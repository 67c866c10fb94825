"""pytest plugin: a real Kubernetes control plane for the tests.

Loaded by the root ``tests/conftest.py`` (``pytest_plugins = ["tests.kube.fixtures"]``).

Fixtures:

* ``kube_cluster`` (session): etcd + kube-apiserver + kube-controller-manager, a
  :class:`~tests.kube.controlplane.ControlPlane` with ``.kubeconfig``, ``.server``,
  ``.bin_dir``, ``.kubectl(*args)``, ``.helm(*args)``. Started once, stopped at session end
  (also after failures and, via process groups and the parent-death signal, if pytest dies).
* ``kube_api`` (session): a ``kubernetes.client.ApiClient`` for that cluster (admin).
* ``kube_node`` (session): the node stand-in (:mod:`tests.kube.node`) running Pods of every
  namespace as local processes, so Jobs complete.
* ``kube_namespace`` (function): a fresh namespace name, deleted after the test.

When the binaries are missing (build them with ``bash scripts/k8s-tools.sh``) the tests that
use these fixtures are skipped, unless ``SMEPULSE_REQUIRE_KUBE=1`` (CI), where they fail.
``SMEPULSE_KUBE_KEEP=1`` keeps the cluster's workdir (logs, etcd data) after the session.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.kube.controlplane import ControlPlane, ControlPlaneError
from tests.kube.node import NodeStandIn
from tests.kube.tools import ToolsUnavailable, find_bin_dir


def _required() -> bool:
    return os.environ.get("SMEPULSE_REQUIRE_KUBE") == "1"


@pytest.fixture(scope="session")
def kube_bin_dir() -> Path:
    """Directory with etcd, kube-apiserver, kube-controller-manager, kubectl and helm."""
    try:
        return find_bin_dir()
    except ToolsUnavailable as exc:
        if _required():
            pytest.fail(f"SMEPULSE_REQUIRE_KUBE=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def kube_cluster(
    kube_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """A running control plane for the whole session (see module docstring)."""
    workdir = tmp_path_factory.mktemp("kube")
    cp = ControlPlane(kube_bin_dir, workdir, keep=True)
    error: ControlPlaneError | None = None
    try:
        cp.start()
    except ControlPlaneError as exc:
        error = exc
    if error is not None:
        cp.stop()
        # Not a skip: the binaries are there, so a control plane that fails to start is a bug.
        pytest.fail(
            f"Kubernetes control plane did not start (logs in {cp.log_dir}):\n{error}",
            pytrace=False,
        )
    try:
        yield cp
    finally:
        cp.stop()
        if os.environ.get("SMEPULSE_KUBE_KEEP") != "1":
            # pytest keeps its last few temp dirs; etcd's data is the bulky part.
            shutil.rmtree(workdir / "etcd", ignore_errors=True)


@pytest.fixture(scope="session")
def kube_api(kube_cluster: ControlPlane) -> Iterator[client.ApiClient]:
    """Admin ``ApiClient`` of the session's cluster (sync ``kubernetes`` client)."""
    api = config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def kube_node(kube_cluster: ControlPlane) -> Iterator[NodeStandIn]:
    """The node stand-in, serving Pods of all namespaces; pod logs under the cluster's workdir."""
    node = NodeStandIn(
        kube_cluster.kubeconfig,
        log_dir=kube_cluster.workdir / "pods",
        max_pods=int(os.environ.get("SMEPULSE_KUBE_MAX_PODS", "8")),
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def kube_namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (in the background) afterwards."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem or 'test'}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": name, "labels": {"smepulse.io/test": "true"}}})
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise

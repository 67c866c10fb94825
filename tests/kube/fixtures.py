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
* ``real_cluster`` (session): a control plane with a real node (kubelet, containerd, runc,
  CNI, kube-proxy) in a network namespace of its own, :class:`~tests.kube.realnode.RealCluster`;
  ``real_api`` and ``real_namespace`` are its ``kube_api`` and ``kube_namespace``. Needs root,
  ``scripts/node-tools.sh`` and the Docker engine with the base images
  (``scripts/docker-tools.sh``, started by the fixture if needed).

When the binaries are missing (build them with ``bash scripts/k8s-tools.sh``) the tests that
use these fixtures are skipped, unless ``SMEPULSE_REQUIRE_KUBE=1`` (CI), where they fail.
``SMEPULSE_KUBE_KEEP=1`` keeps the cluster's workdir (logs, etcd data) after the session.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.kube.controlplane import ControlPlane, ControlPlaneError
from tests.kube.node import NodeStandIn
from tests.kube.realnode import (
    NodeError,
    NodeToolsUnavailable,
    RealCluster,
    docker_env,
    find_node_bin_dir,
    host_snapshot,
    snapshot_diff,
)
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


# ---- a real node (kubelet + containerd + kube-proxy in a network namespace of its own) --------


@pytest.fixture(scope="session")
def real_cluster(
    kube_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealCluster]:
    """A control plane and one real node (:mod:`tests.kube.realnode`) for the whole session,
    with the local base images imported. At session end it is torn down and the host compared
    with its state before: anything left behind fails the session's last test using it."""
    try:
        if os.geteuid() != 0:
            raise NodeToolsUnavailable("a real node needs root (network namespaces, cgroups)")
        node_bin = find_node_bin_dir()
        engine = docker_env()
    except NodeToolsUnavailable as exc:
        if _required():
            pytest.fail(f"SMEPULSE_REQUIRE_KUBE=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))
    workdir = tmp_path_factory.mktemp("realnode")
    before = host_snapshot(workdir)
    # SIGTERM (a CI timeout, `kill`) would end pytest without teardown and leave the node's
    # namespace, cgroups and mounts behind: turn it into the KeyboardInterrupt pytest unwinds.
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    cluster = RealCluster(workdir, bin_dir=kube_bin_dir, node_bin_dir=node_bin, docker=engine)
    try:
        cluster.start()
    except NodeError as exc:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        pytest.fail(f"real node did not start (logs in {cluster.log_dir}):\n{exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        leaked = snapshot_diff(before, host_snapshot(workdir))
        if leaked:
            pytest.fail(f"the real node's teardown left the host changed:\n{leaked}")


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def real_api(real_cluster: RealCluster) -> Iterator[client.ApiClient]:
    """Admin ``ApiClient`` of the real-node cluster."""
    api = config.new_client_from_config(config_file=str(real_cluster.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def real_namespace(real_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace on the real-node cluster, once its ``default`` ServiceAccount exists
    (the ServiceAccount admission plugin is on there: Pods wait for it)."""
    from tests.kube.wait import wait_for

    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem or 'test'}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(real_api)
    core.create_namespace({"metadata": {"name": name}})
    wait_for(
        lambda: core.list_namespaced_service_account(name).items,
        timeout=30,
        what=f"ServiceAccount default in {name}",
    )
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, propagation_policy="Background")

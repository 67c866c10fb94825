"""A node stand-in: it REPLACES KUBELET AND A CONTAINER RUNTIME, which this machine lacks.

There is no Docker, containerd or kubelet here, so Pods created through the real API server
(by the real Job controller, for instance) would stay Pending forever. This module does what
kwok does, plus actually running the command:

1. registers a ``Node`` (Ready, heartbeat and ``kube-node-lease`` Lease renewed every few
   seconds, so the node-lifecycle controller never taints or evicts it);
2. watches Pods (all namespaces, or one) and binds those with no ``spec.nodeName`` to itself
   through the ``pods/binding`` subresource (there is no kube-scheduler either);
3. runs each container's ``command`` + ``args`` as a LOCAL SUBPROCESS, with the container's
   ``env`` / ``envFrom`` resolved from the API (ConfigMaps, Secrets, simple ``fieldRef``s,
   ``$(VAR)`` expansion) — the image is ignored: the command must exist on this machine's
   PATH (the project's own CLI, e.g. ``smepulse stage verify-infra``); an unknown executable
   makes the container fail with exit code 127 and a message saying so;
4. writes the Pod status a kubelet would (``Running`` with running containerStatuses, then
   ``Succeeded``/``Failed`` with ``terminated`` state, exit code, reason, start/finish
   times), so the real Job controller marks Jobs Complete or Failed;
5. honours deletion: a deleted Pod's process group gets SIGTERM, then SIGKILL after the grace
   period, and the Pod is then removed (grace 0), as a kubelet confirms a deletion.

Each container's stdout and stderr go to ``<log_dir>/<namespace>/<pod>/<container>.log``
(``kubectl logs`` does not work: there is no kubelet to serve it). Pods run in threads, at
most ``max_pods`` at a time; the rest wait (Pending) for a free slot.

Not emulated: images, volumes, resource limits, probes, security contexts, networking
(no pod IP), ``kubectl exec/logs``. Init containers run in order before the containers;
``restartPolicy: OnFailure``/``Always`` restarts a failed container in place.
Job-level ``activeDeadlineSeconds`` is enforced by the real Job controller (it deletes the
Pods); Pod-level ``spec.activeDeadlineSeconds`` is enforced here.

The Node side (registration, heartbeat, watch, binding, deletion) is here; running one Pod is
:mod:`tests.kube.podrun`, building a container's environment :mod:`tests.kube.podenv`.

Use it as a fixture (``kube_node`` in :mod:`tests.kube.fixtures`), as a context manager, or
standalone::

    python -m tests.kube.node --kubeconfig PATH [--namespace NS] [--max-pods N] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.kube.podenv import NODE_IP
from tests.kube.podrun import PodRun, confirm_deletion, now_rfc3339, write_pod_status

log = logging.getLogger(__name__)

DEFAULT_NODE_NAME = "smepulse-node"
LEASE_NAMESPACE = "kube-node-lease"
# Environment a pod's process inherits from the node process (the rest comes from the pod).
BASE_ENV_KEYS = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "JAVA_HOME",
)


def now_micro() -> str:
    """UTC now as a ``metav1.MicroTime`` string (always six fractional digits)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NodeStandIn:
    """Registers a Node, binds Pods to it and runs their containers as local processes.

    ``namespace=None`` serves Pods of every namespace. ``base_env`` (default: a few keys such
    as PATH/HOME taken from this process, see ``BASE_ENV_KEYS``) is the environment every
    container starts from; the Pod's own ``env``/``envFrom`` is applied on top.
    """

    def __init__(
        self,
        kubeconfig: str | Path,
        *,
        node_name: str = DEFAULT_NODE_NAME,
        namespace: str | None = None,
        log_dir: str | Path | None = None,
        max_pods: int = 8,
        base_env: Mapping[str, str] | None = None,
        heartbeat_seconds: float = 10.0,
    ) -> None:
        self.kubeconfig = str(kubeconfig)
        self.node_name = node_name
        self.namespace = namespace
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="smepulse-node-"))
        self.max_pods = max_pods
        self.base_env = (
            dict(base_env)
            if base_env is not None
            else {k: v for k, v in os.environ.items() if k in BASE_ENV_KEYS or k.startswith("LC_")}
        )
        self.heartbeat_seconds = heartbeat_seconds
        cfg = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
        # Every running Pod writes status from its own thread: size the pool for that.
        cfg.connection_pool_maxsize = max(10, 3 * max_pods + 4)
        self.api = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self._runs: dict[str, PodRun] = {}
        self._runs_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=max_pods, thread_name_prefix="pod")
        self._watching = threading.Event()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> NodeStandIn:
        """Register the Node and start heartbeat and Pod watch; return once watching."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._register_node()
        for target, name in (
            (self._heartbeat_loop, "node-heartbeat"),
            (self._watch_loop, "node-watch"),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if not self._watching.wait(timeout):
            raise RuntimeError(f"node stand-in {self.node_name}: pod watch did not start")
        log.info("node stand-in %s ready (pod logs in %s)", self.node_name, self.log_dir)
        return self

    def stop(self) -> None:
        """Kill running containers (their Pods end Failed, reason NodeShutdown), stop threads.

        The Node object is left in place; without heartbeats the node-lifecycle controller
        marks it NotReady later, as for a powered-off machine.
        """
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            run.request_stop(5.0, reason="NodeShutdown")
        self._pool.shutdown(wait=True, cancel_futures=True)
        for t in self._threads:
            t.join(timeout=15)
        self.api.close()

    def __enter__(self) -> NodeStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def pod_log_dir(self, namespace: str, pod: str) -> Path:
        """Folder holding ``<container>.log`` files of one Pod."""
        return self.log_dir / namespace / pod

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """A container's combined stdout+stderr so far ('' if it has not started).

        ``container`` may be omitted when the Pod has written one log only; with several
        (init containers, sidecars) that raises ValueError naming them.
        """
        folder = self.pod_log_dir(namespace, pod)
        if container is None:
            logs = sorted(folder.glob("*.log"))
            if len(logs) > 1:
                names = ", ".join(p.stem for p in logs)
                raise ValueError(f"pod {namespace}/{pod} has several container logs: {names}")
            return logs[0].read_text(errors="replace") if logs else ""
        path = folder / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- the Node object -------------------------------------------------------------------

    def _register_node(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "smepulse.io/node-stand-in": "true",
                },
            },
        }
        try:
            self.core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._patch_node_status(full=True)
        self._renew_lease()

    def _patch_node_status(self, *, full: bool = False) -> None:
        beat = now_rfc3339()

        def cond(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": type_,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": beat,
                "lastTransitionTime": beat,
            }

        status: dict[str, Any] = {
            "conditions": [
                cond("Ready", "True", "KubeletReady", "node stand-in is running pods as processes"),
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
            ]
        }
        if not full:
            for c in status["conditions"]:  # keep the original transition time
                del c["lastTransitionTime"]
        else:
            capacity = {
                "cpu": str(os.cpu_count() or 2),
                "memory": "16Gi",
                "pods": str(self.max_pods * 10),
                "ephemeral-storage": "100Gi",
            }
            status.update(
                {
                    "capacity": capacity,
                    "allocatable": capacity,
                    "addresses": [
                        {"type": "InternalIP", "address": NODE_IP},
                        {"type": "Hostname", "address": self.node_name},
                    ],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                    "nodeInfo": {
                        "machineID": "smepulse",
                        "systemUUID": "smepulse",
                        "bootID": "smepulse",
                        "kernelVersion": os.uname().release,
                        "osImage": "node stand-in",
                        "containerRuntimeVersion": "smepulse-node://1",
                        "kubeletVersion": "v0.0.0-standin",
                        "kubeProxyVersion": "",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                }
            )
        self.core.patch_node_status(self.node_name, {"status": status})

    def _renew_lease(self) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": 40,
                "renewTime": now_micro(),
            },
        }
        try:
            self.coordination.patch_namespaced_lease(
                self.node_name, LEASE_NAMESPACE, {"spec": body["spec"]}
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE, body)

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.heartbeat_seconds):
            try:
                self._renew_lease()
                self._patch_node_status()
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                log.warning("node heartbeat failed: %s", exc)

    # ---- watching Pods ---------------------------------------------------------------------

    def _pod_lister(self) -> tuple[Any, tuple[str, ...]]:
        # The generated API method itself (not a wrapper): Watch.stream reads the model type
        # to deserialize events into from the method's docstring.
        if self.namespace:
            return self.core.list_namespaced_pod, (self.namespace,)
        return self.core.list_pod_for_all_namespaces, ()

    def _watch_loop(self) -> None:
        list_pods, args = self._pod_lister()
        while not self._stopping.is_set():
            try:
                pods = list_pods(*args)
                for pod in pods.items:
                    self._on_pod(pod)
                rv = pods.metadata.resource_version
                self._watching.set()
                while not self._stopping.is_set():
                    w = watch.Watch()
                    for event in w.stream(
                        list_pods,
                        *args,
                        resource_version=rv,
                        timeout_seconds=5,
                        _request_timeout=30,
                    ):
                        pod = event["object"]
                        if event["type"] == "BOOKMARK" or isinstance(pod, dict):
                            rv = event["raw_object"]["metadata"]["resourceVersion"]
                            continue
                        rv = pod.metadata.resource_version
                        if event["type"] == "DELETED":
                            self._on_deleted(pod)
                        else:
                            self._on_pod(pod)
                        if self._stopping.is_set():
                            w.stop()
            except ApiException as exc:
                if exc.status != 410:  # 410 Gone: history expired, just list again
                    log.warning("pod watch failed: %s", exc)
                    self._stopping.wait(1)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                log.warning("pod watch connection failed: %s", exc)
                self._stopping.wait(1)
            except Exception:
                log.exception("pod watch crashed; restarting it")
                self._stopping.wait(1)

    def _on_pod(self, pod: Any) -> None:
        meta, spec, status = pod.metadata, pod.spec, pod.status
        with self._runs_lock:
            run = self._runs.get(meta.uid)
        if meta.deletion_timestamp is not None:
            if run is not None:
                run.request_stop(float(meta.deletion_grace_period_seconds or 0), deleted=True)
            elif spec.node_name == self.node_name:
                confirm_deletion(self.core, meta.namespace, meta.name, meta.uid)
            return
        phase = status.phase if status else None
        if run is not None or phase in ("Succeeded", "Failed"):
            return
        if not spec.node_name:
            if spec.scheduling_gates:
                return
            if not self._bind(meta.namespace, meta.name):
                return
        elif spec.node_name != self.node_name:
            return
        elif phase == "Running":
            # Left running by an earlier instance of this node: its process is gone.
            self._orphaned(pod)
            return
        self._take(pod)

    def _on_deleted(self, pod: Any) -> None:
        with self._runs_lock:
            run = self._runs.pop(pod.metadata.uid, None)
        if run is not None and not run.done.is_set():
            run.request_stop(0.0)

    def _bind(self, namespace: str, name: str) -> bool:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            # Raw response: the generated client cannot deserialize the Status it returns.
            self.core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)
            return True
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("binding pod %s/%s failed: %s", namespace, name, exc)
            return False

    def _take(self, pod: Any) -> None:
        meta = pod.metadata
        run = PodRun(pod, self.core, self.pod_log_dir(meta.namespace, meta.name), self.base_env)
        with self._runs_lock:
            self._runs[meta.uid] = run
        try:
            self._pool.submit(run.run)
        except RuntimeError:  # the pool is shut down: the node is stopping
            run.done.set()

    def _orphaned(self, pod: Any) -> None:
        statuses = [
            {
                "name": c.name,
                "image": c.image or "",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "Error",
                        "finishedAt": now_rfc3339(),
                        "message": "the node stand-in restarted while this ran",
                    }
                },
            }
            for c in pod.spec.containers
        ]
        write_pod_status(
            self.core,
            pod.metadata.namespace,
            pod.metadata.name,
            {
                "phase": "Failed",
                "reason": "NodeRestarted",
                "message": "the node stand-in restarted; the process was lost",
                "containerStatuses": statuses,
            },
        )


# ---- python -m tests.kube.node ----------------------------------------------------------------


def _main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.kube.node",
        description="Node stand-in: bind Pods to a fake Node and run their commands locally "
        "(replaces kubelet + container runtime).",
    )
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the cluster")
    parser.add_argument("--node-name", default=DEFAULT_NODE_NAME)
    parser.add_argument("--namespace", help="serve only this namespace (default: all)")
    parser.add_argument("--max-pods", type=int, default=8, help="pods running at once")
    parser.add_argument("--log-dir", help="pod logs go to LOG_DIR/<ns>/<pod>/<container>.log")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    node = NodeStandIn(
        args.kubeconfig,
        node_name=args.node_name,
        namespace=args.namespace,
        log_dir=args.log_dir,
        max_pods=args.max_pods,
    ).start()
    print(f"node {node.node_name} running; pod logs in {node.log_dir}", flush=True)
    stop.wait()
    node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())

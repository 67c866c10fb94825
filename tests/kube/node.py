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

Use it as a fixture (``kube_node`` in :mod:`tests.kube.fixtures`), as a context manager, or
standalone::

    python -m tests.kube.node --kubeconfig PATH [--namespace NS] [--max-pods N] [--log-dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.kube.procs import spawn, stop_group

log = logging.getLogger(__name__)

DEFAULT_NODE_NAME = "smepulse-node"
LEASE_NAMESPACE = "kube-node-lease"
EXIT_NOT_FOUND = 127
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
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def now_rfc3339() -> str:
    """UTC now as a Kubernetes ``metav1.Time`` string."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """UTC now as a ``metav1.MicroTime`` string (always six fractional digits)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known names are replaced, unknown ones kept,
    ``$$`` escapes a dollar (as kubelet does for env values, command and args)."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR_REF.sub(repl, text)


class ConfigError(Exception):
    """The container's environment cannot be built yet (kubelet: CreateContainerConfigError)."""


@dataclass
class _Container:
    """One running (or finished) container process and the status it reports."""

    name: str
    image: str
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    restart_count: int = 0
    last_terminated: dict[str, Any] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def status(self) -> dict[str, Any]:
        if self.exit_code is not None:
            state: dict[str, Any] = {
                "terminated": {
                    "exitCode": self.exit_code,
                    "reason": self.reason,
                    "message": self.message,
                    "startedAt": self.started_at or self.finished_at,
                    "finishedAt": self.finished_at,
                    "containerID": self._cid(),
                }
            }
        elif self.started_at:
            state = {"running": {"startedAt": self.started_at}}
        else:
            state = {
                "waiting": {"reason": self.reason or "ContainerCreating", "message": self.message}
            }
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "state": state,
            "ready": self.exit_code is None and bool(self.started_at),
            "started": self.exit_code is None and bool(self.started_at),
            "restartCount": self.restart_count,
        }
        if self.started_at:
            status["containerID"] = self._cid()
        if self.last_terminated:
            status["lastState"] = {"terminated": self.last_terminated}
        return status

    def _cid(self) -> str:
        return f"smepulse-node://{self.proc.pid if self.proc else 0}"


@dataclass
class _PodRun:
    """Book-keeping for one Pod this node has taken on."""

    namespace: str
    name: str
    uid: str
    stop: threading.Event = field(default_factory=threading.Event)
    grace: float = 30.0
    deleted: bool = False
    done: threading.Event = field(default_factory=threading.Event)


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
        self.api = config.new_client_from_config(config_file=self.kubeconfig)
        self.core = client.CoreV1Api(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self._runs: dict[str, _PodRun] = {}
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
            run.grace = min(run.grace, 5.0)
            run.stop.set()
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
        """A container's combined stdout+stderr (the only container if ``container`` is None)."""
        folder = self.pod_log_dir(namespace, pod)
        if container is None:
            logs = sorted(folder.glob("*.log"))
            if not logs:
                return ""
            return logs[0].read_text(errors="replace")
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
                        {"type": "InternalIP", "address": "127.0.0.1"},
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

    def _list_pods(self, **kwargs: Any) -> Any:
        if self.namespace:
            return self.core.list_namespaced_pod(self.namespace, **kwargs)
        return self.core.list_pod_for_all_namespaces(**kwargs)

    def _watch_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                pods = self._list_pods()
                for pod in pods.items:
                    self._on_pod(pod)
                rv = pods.metadata.resource_version
                self._watching.set()
                while not self._stopping.is_set():
                    w = watch.Watch()
                    for event in w.stream(
                        self._list_pods, resource_version=rv, timeout_seconds=5, _request_timeout=30
                    ):
                        pod = event["object"]
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
                run.grace = float(meta.deletion_grace_period_seconds or 0)
                run.deleted = True
                run.stop.set()
            elif spec.node_name == self.node_name:
                self._confirm_deletion(meta.namespace, meta.name, meta.uid)
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
            run.grace = 0
            run.stop.set()

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
        run = _PodRun(
            meta.namespace,
            meta.name,
            meta.uid,
            grace=float(pod.spec.termination_grace_period_seconds or 30),
        )
        with self._runs_lock:
            self._runs[meta.uid] = run
        try:
            self._pool.submit(self._run_pod_safely, run, pod)
        except RuntimeError:  # the pool is shut down: the node is stopping
            run.done.set()

    def _confirm_deletion(self, namespace: str, name: str, uid: str) -> None:
        """What kubelet does once containers are gone: delete with grace period 0."""
        try:
            self.core.delete_namespaced_pod(
                name,
                namespace,
                grace_period_seconds=0,
                body=client.V1DeleteOptions(
                    grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
                ),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("deleting pod %s/%s failed: %s", namespace, name, exc)

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
        self._write_status(
            pod.metadata.namespace,
            pod.metadata.name,
            {
                "phase": "Failed",
                "reason": "NodeRestarted",
                "message": "the node stand-in restarted; the process was lost",
                "containerStatuses": statuses,
            },
        )

    # ---- running one Pod -------------------------------------------------------------------

    def _run_pod_safely(self, run: _PodRun, pod: Any) -> None:
        try:
            self._run_pod(run, pod)
        except Exception as exc:
            log.exception("running pod %s/%s failed", run.namespace, run.name)
            with contextlib.suppress(Exception):
                self._write_status(
                    run.namespace,
                    run.name,
                    {"phase": "Failed", "reason": "NodeStandInError", "message": str(exc)},
                )
        finally:
            run.done.set()
            if run.deleted:
                self._confirm_deletion(run.namespace, run.name, run.uid)

    def _run_pod(self, run: _PodRun, pod: Any) -> None:
        spec = pod.spec
        folder = self.pod_log_dir(run.namespace, run.name)
        folder.mkdir(parents=True, exist_ok=True)
        start_time = now_rfc3339()
        deadline = (
            time.monotonic() + spec.active_deadline_seconds
            if spec.active_deadline_seconds
            else None
        )
        inits = [_Container(c.name, c.image or "") for c in spec.init_containers or []]
        mains = [_Container(c.name, c.image or "") for c in spec.containers]
        base = {"hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}], "startTime": start_time}

        def publish(phase: str, extra: Mapping[str, Any] | None = None) -> None:
            ready = "True" if phase == "Running" else "False"
            inits_done = all(c.exit_code == 0 for c in inits)
            body: dict[str, Any] = {
                **base,
                "phase": phase,
                "conditions": [
                    _condition("PodScheduled", "True"),
                    _condition("Initialized", "True" if inits_done else "False"),
                    _condition("ContainersReady", ready),
                    _condition("Ready", ready),
                ],
                "containerStatuses": [c.status() for c in mains],
            }
            if inits:
                body["initContainerStatuses"] = [c.status() for c in inits]
            body.update(extra or {})
            self._write_status(run.namespace, run.name, body)

        publish("Pending")
        restart = spec.restart_policy in ("OnFailure", "Always")
        try:
            envs = self._wait_for_envs(run, pod, inits + mains, publish)
        except _Stopped:
            return
        ok = True
        for state, c in zip(inits, spec.init_containers or [], strict=True):
            ok = self._run_container(
                run, c, state, envs[c.name], folder, deadline, restart, lambda: publish("Pending")
            )
            if not ok:
                break
        if ok:
            publish("Running")
            threads = [
                threading.Thread(
                    target=self._run_container,
                    args=(
                        run,
                        c,
                        state,
                        envs[c.name],
                        folder,
                        deadline,
                        restart,
                        lambda: publish("Running"),
                    ),
                    name=f"pod-{run.name}-{c.name}",
                    daemon=True,
                )
                for state, c in zip(mains, spec.containers, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = all(c.exit_code == 0 for c in mains)
        extra: dict[str, Any] = {}
        if deadline is not None and time.monotonic() >= deadline:
            ok = False
            extra = {
                "reason": "DeadlineExceeded",
                "message": f"Pod was active longer than {spec.active_deadline_seconds}s",
            }
        elif self._stopping.is_set() and not run.deleted:
            ok = False
            extra = {"reason": "NodeShutdown", "message": "the node stand-in was stopped"}
        for c in mains:  # containers never started (an init container failed)
            if c.exit_code is None:
                c.exit_code, c.reason = 1, "ContainerStatusUnknown"
                c.finished_at = now_rfc3339()
        publish("Succeeded" if ok else "Failed", extra)

    def _wait_for_envs(
        self,
        run: _PodRun,
        pod: Any,
        states: list[_Container],
        publish: Callable[[str], None],
    ) -> dict[str, dict[str, str]]:
        """Resolve every container's env; retry while a ConfigMap/Secret is missing."""
        containers = [*(pod.spec.init_containers or []), *pod.spec.containers]
        while True:
            try:
                return {c.name: self._container_env(pod, c) for c in containers}
            except ConfigError as exc:
                for s in states:
                    s.reason, s.message = "CreateContainerConfigError", str(exc)
                publish("Pending")
                if run.stop.wait(2):
                    raise _Stopped from exc

    def _run_container(
        self,
        run: _PodRun,
        c: Any,
        state: _Container,
        env: dict[str, str],
        folder: Path,
        deadline: float | None,
        restart: bool,
        publish: Callable[[], None],
    ) -> bool:
        """Run one container to its end (restarting it if the policy says so); True if 0."""
        while True:
            self._run_process(run, c, state, env, folder, deadline, publish)
            if (
                state.exit_code == 0
                or not restart
                or run.stop.is_set()
                or (deadline is not None and time.monotonic() >= deadline)
            ):
                return state.exit_code == 0
            backoff = min(10.0, 2.0**state.restart_count)
            state.last_terminated = state.status()["state"]["terminated"]
            state.restart_count += 1
            state.exit_code, state.started_at = None, ""
            state.reason, state.message = "CrashLoopBackOff", f"restarting in {backoff:.0f}s"
            publish()
            if run.stop.wait(backoff):
                state.exit_code, state.reason = state.last_terminated["exitCode"], "Error"
                return False

    def _run_process(
        self,
        run: _PodRun,
        c: Any,
        state: _Container,
        env: dict[str, str],
        folder: Path,
        deadline: float | None,
        publish: Callable[[], None],
    ) -> None:
        argv = [expand(a, env) for a in [*(c.command or []), *(c.args or [])]]
        log_path = folder / f"{c.name}.log"
        state.reason = state.message = ""
        with log_path.open("ab") as out:
            exe = shutil.which(argv[0], path=env.get("PATH")) if argv else None
            if exe is None:
                state.message = (
                    f"{argv[0]!r} not found on PATH ({env.get('PATH', '')}): the node stand-in "
                    "runs the command locally and ignores the image"
                    if argv
                    else "container has no command: the node stand-in cannot run an image's "
                    "entrypoint, give the container an explicit command"
                )
                out.write(f"[node stand-in] {state.message}\n".encode())
                state.started_at = state.finished_at = now_rfc3339()
                state.exit_code, state.reason = EXIT_NOT_FOUND, "StartError"
                return
            if run.stop.is_set():
                state.exit_code, state.reason = 137, "Error"
                state.finished_at = now_rfc3339()
                return
            cwd = c.working_dir if c.working_dir and Path(c.working_dir).is_dir() else folder
            state.proc = spawn([exe, *argv[1:]], log=out, env=env, cwd=cwd)
            state.started_at = now_rfc3339()
            publish()
            timed_out = False
            while state.proc.poll() is None:
                if run.stop.wait(0.1):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    timed_out = True
                    break
            code = stop_group(state.proc, grace=0.0 if timed_out else run.grace)
        state.finished_at = now_rfc3339()
        code = 137 if code is None else code
        state.exit_code = 128 - code if code < 0 else code  # -N: killed by signal N
        state.reason = "Completed" if state.exit_code == 0 else "Error"
        if state.exit_code and c.termination_message_policy == "FallbackToLogsOnError":
            state.message = log_path.read_bytes()[-2048:].decode("utf-8", "replace")

    def _container_env(self, pod: Any, c: Any) -> dict[str, str]:
        """The process environment: base env, then envFrom, then env (kubelet's order)."""
        ns = pod.metadata.namespace
        env = dict(self.base_env)
        env["HOSTNAME"] = pod.metadata.name
        for src in c.env_from or []:
            prefix = src.prefix or ""
            if src.config_map_ref is not None:
                data = self._config_map(ns, src.config_map_ref.name, src.config_map_ref.optional)
            elif src.secret_ref is not None:
                data = self._secret(ns, src.secret_ref.name, src.secret_ref.optional)
            else:
                continue
            for key, value in (data or {}).items():
                if _ENV_NAME.match(prefix + key):
                    env[prefix + key] = value
        for var in c.env or []:
            if var.value_from is None:
                env[var.name] = expand(var.value or "", env)
                continue
            resolved = self._value_from(pod, var.name, var.value_from)
            if resolved is not None:
                env[var.name] = resolved
        return env

    def _value_from(self, pod: Any, name: str, src: Any) -> str | None:
        ns = pod.metadata.namespace
        if src.field_ref is not None:
            return _field_ref(pod, src.field_ref.field_path)
        if src.config_map_key_ref is not None:
            ref = src.config_map_key_ref
            return _key(self._config_map(ns, ref.name, ref.optional), ref, "ConfigMap", name)
        if src.secret_key_ref is not None:
            ref = src.secret_key_ref
            return _key(self._secret(ns, ref.name, ref.optional), ref, "Secret", name)
        raise ConfigError(
            f"env {name}: only fieldRef, configMapKeyRef and secretKeyRef "
            "are supported by the node stand-in"
        )

    def _config_map(self, ns: str, name: str, optional: bool | None) -> dict[str, str] | None:
        try:
            return dict(self.core.read_namespaced_config_map(name, ns).data or {})
        except ApiException as exc:
            if exc.status == 404:
                if optional:
                    return None
                raise ConfigError(f'configmap "{name}" not found') from exc
            raise

    def _secret(self, ns: str, name: str, optional: bool | None) -> dict[str, str] | None:
        try:
            data = self.core.read_namespaced_secret(name, ns).data or {}
        except ApiException as exc:
            if exc.status == 404:
                if optional:
                    return None
                raise ConfigError(f'secret "{name}" not found') from exc
            raise
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}

    def _write_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        try:
            self.core.patch_namespaced_pod_status(name, namespace, {"status": dict(status)})
        except ApiException as exc:
            if exc.status != 404:  # a Pod deleted meanwhile has no status left to write
                raise


class _Stopped(Exception):
    """The Pod was deleted (or the node stopped) before its containers started."""


def _condition(type_: str, status: str) -> dict[str, str]:
    return {"type": type_, "status": status, "lastTransitionTime": now_rfc3339()}


def _key(data: dict[str, str] | None, ref: Any, kind: str, var: str) -> str | None:
    if data is None:  # optional and missing
        return None
    if ref.key in data:
        return data[ref.key]
    if ref.optional:
        return None
    raise ConfigError(f'env {var}: key "{ref.key}" not found in {kind} "{ref.name}"')


_FIELD_PATHS: dict[str, Callable[[Any], str | None]] = {
    "metadata.name": lambda p: p.metadata.name,
    "metadata.namespace": lambda p: p.metadata.namespace,
    "metadata.uid": lambda p: p.metadata.uid,
    "spec.nodeName": lambda p: p.spec.node_name,
    "spec.serviceAccountName": lambda p: p.spec.service_account_name,
    "status.hostIP": lambda p: "127.0.0.1",
    "status.podIP": lambda p: "127.0.0.1",
}


def _field_ref(pod: Any, path: str) -> str:
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        values = getattr(pod.metadata, m.group(1)) or {}
        return str(values.get(m.group(2), ""))
    if path not in _FIELD_PATHS:
        raise ConfigError(f"fieldRef {path!r} is not supported by the node stand-in")
    return _FIELD_PATHS[path](pod) or ""


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

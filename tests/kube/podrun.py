"""Run one Pod's containers as local processes and report its status as kubelet would.

Part of the node stand-in (:mod:`tests.kube.node`, which replaces kubelet and a container
runtime). A :class:`PodRun` takes a Pod that is bound to the node and:

1. writes ``Pending`` (containers ``waiting: ContainerCreating``), resolves each container's
   environment (:mod:`tests.kube.podenv`), retrying every 2 s while a ConfigMap or Secret is
   missing (``waiting: CreateContainerConfigError``, as kubelet does);
2. runs init containers one after another, then all containers at once, each as
   ``command + args`` in its own process group (the image is ignored; the executable is
   looked up on the container's PATH; not found -> exit 127, reason ``StartError``);
3. writes ``Running`` with ``running`` containerStatuses, and at the end ``Succeeded`` or
   ``Failed`` with ``terminated`` states (exit code, reason, startedAt, finishedAt);
4. on :meth:`PodRun.request_stop` (the Pod was deleted, or the node stops) sends SIGTERM,
   then SIGKILL after the grace period, and confirms a deletion with a grace-0 delete.

Each container's stdout+stderr go to ``<log_dir>/<container>.log``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube.podenv import NODE_IP, ConfigError, container_env, expand
from tests.kube.procs import spawn, stop_group

log = logging.getLogger(__name__)

EXIT_NOT_FOUND = 127
CONFIG_RETRY_SECONDS = 2.0


def now_rfc3339() -> str:
    """UTC now as a Kubernetes ``metav1.Time`` string."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_pod_status(
    core: client.CoreV1Api, namespace: str, name: str, status: Mapping[str, Any]
) -> None:
    """Patch ``pods/status``; a Pod deleted meanwhile (404) is not an error."""
    try:
        core.patch_namespaced_pod_status(name, namespace, {"status": dict(status)})
    except ApiException as exc:
        if exc.status != 404:
            raise


def confirm_deletion(core: client.CoreV1Api, namespace: str, name: str, uid: str) -> None:
    """What kubelet does once a deleted Pod's containers are gone: delete with grace 0."""
    try:
        core.delete_namespaced_pod(
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


@dataclass
class ContainerState:
    """One container's process and the status it reports."""

    name: str
    image: str
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    reason: str = ""
    message: str = ""
    restart_count: int = 0
    last_terminated: dict[str, Any] | None = None
    pid: int = 0

    def terminated(self) -> dict[str, Any]:
        return {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "message": self.message,
            "startedAt": self.started_at or self.finished_at,
            "finishedAt": self.finished_at,
            "containerID": self.container_id,
        }

    @property
    def container_id(self) -> str:
        return f"smepulse-node://{self.pid}"

    @property
    def running(self) -> bool:
        return self.exit_code is None and bool(self.started_at)

    def status(self) -> dict[str, Any]:
        """The ``containerStatuses`` entry."""
        if self.exit_code is not None:
            state: dict[str, Any] = {"terminated": self.terminated()}
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
            "ready": self.running,
            "started": self.running,
            "restartCount": self.restart_count,
        }
        if self.started_at:
            status["containerID"] = self.container_id
        if self.last_terminated:
            status["lastState"] = {"terminated": self.last_terminated}
        return status


class _Stopped(Exception):
    """Stop was requested before the containers started."""


class PodRun:
    """One Pod taken on by the node; :meth:`run` blocks until the Pod has finished."""

    def __init__(
        self, pod: Any, core: client.CoreV1Api, log_dir: Path, base_env: Mapping[str, str]
    ) -> None:
        self.pod = pod
        self.core = core
        self.log_dir = log_dir
        self.base_env = base_env
        self.namespace: str = pod.metadata.namespace
        self.name: str = pod.metadata.name
        self.uid: str = pod.metadata.uid
        spec = pod.spec
        self.grace = float(spec.termination_grace_period_seconds or 30)
        self.deleted = False
        self.stop_reason = ""
        self.stopped = threading.Event()
        self.done = threading.Event()
        self.inits = [ContainerState(c.name, c.image or "") for c in spec.init_containers or []]
        self.mains = [ContainerState(c.name, c.image or "") for c in spec.containers]
        self.start_time = now_rfc3339()
        self.deadline = (
            time.monotonic() + spec.active_deadline_seconds
            if spec.active_deadline_seconds
            else None
        )
        self._status_lock = threading.Lock()

    def request_stop(self, grace: float, *, deleted: bool = False, reason: str = "") -> None:
        """Kill the containers (SIGTERM, SIGKILL after ``grace`` s); ``deleted`` confirms the
        Pod's deletion afterwards, ``reason`` becomes the Pod's status reason otherwise."""
        self.grace = min(self.grace, grace)
        self.deleted = self.deleted or deleted
        self.stop_reason = self.stop_reason or reason
        self.stopped.set()

    def run(self) -> None:
        """Run the Pod to its end; never raises (an internal error fails the Pod)."""
        try:
            self._run()
        except Exception as exc:
            log.exception("running pod %s/%s failed", self.namespace, self.name)
            with contextlib.suppress(Exception):
                self._write({"phase": "Failed", "reason": "NodeStandInError", "message": str(exc)})
        finally:
            self.done.set()
            if self.deleted:
                confirm_deletion(self.core, self.namespace, self.name, self.uid)

    # ---- the Pod -------------------------------------------------------------------------

    def _run(self) -> None:
        spec = self.pod.spec
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._publish("Pending")
        try:
            envs = self._resolve_envs()
        except _Stopped:
            return
        restart = spec.restart_policy in ("OnFailure", "Always")
        ok = True
        for state, c in zip(self.inits, spec.init_containers or [], strict=True):
            ok = self._run_container(c, state, envs[c.name], restart, "Pending")
            if not ok:
                break
        if ok:
            self._publish("Running")
            threads = [
                threading.Thread(
                    target=self._run_container,
                    args=(c, state, envs[c.name], restart, "Running"),
                    name=f"pod-{self.name}-{c.name}",
                    daemon=True,
                )
                for state, c in zip(self.mains, spec.containers, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            ok = all(c.exit_code == 0 for c in self.mains)
        extra: dict[str, str] = {}
        if self._past_deadline():
            ok = False
            extra = {
                "reason": "DeadlineExceeded",
                "message": f"Pod was active longer than {spec.active_deadline_seconds}s",
            }
        elif self.stop_reason:
            ok = False
            extra = {"reason": self.stop_reason, "message": "stopped by the node stand-in"}
        for c in self.mains:  # never started (an init container failed, or stopped)
            if c.exit_code is None:
                c.exit_code, c.reason, c.finished_at = 1, "ContainerStatusUnknown", now_rfc3339()
        self._publish("Succeeded" if ok else "Failed", extra)

    def _past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _publish(self, phase: str, extra: Mapping[str, str] | None = None) -> None:
        ready = "True" if phase == "Running" else "False"
        initialized = "True" if all(c.exit_code == 0 for c in self.inits) else "False"
        with self._status_lock:  # containers report from their own threads
            body: dict[str, Any] = {
                "phase": phase,
                "hostIP": NODE_IP,
                "hostIPs": [{"ip": NODE_IP}],
                "startTime": self.start_time,
                "conditions": [
                    _condition("PodScheduled", "True"),
                    _condition("Initialized", initialized),
                    _condition("ContainersReady", ready),
                    _condition("Ready", ready),
                ],
                "containerStatuses": [c.status() for c in self.mains],
            }
            if self.inits:
                body["initContainerStatuses"] = [c.status() for c in self.inits]
            body.update(extra or {})
            self._write(body)

    def _write(self, status: Mapping[str, Any]) -> None:
        write_pod_status(self.core, self.namespace, self.name, status)

    def _resolve_envs(self) -> dict[str, dict[str, str]]:
        """Every container's env; wait (as kubelet does) while a reference is missing."""
        spec = self.pod.spec
        containers = [*(spec.init_containers or []), *spec.containers]
        while True:
            try:
                return {
                    c.name: container_env(
                        self.pod, c, self.base_env, self._config_map, self._secret
                    )
                    for c in containers
                }
            except ConfigError as exc:
                for s in [*self.inits, *self.mains]:
                    s.reason, s.message = "CreateContainerConfigError", str(exc)
                self._publish("Pending")
                if self.stopped.wait(CONFIG_RETRY_SECONDS):
                    raise _Stopped from exc

    def _config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            return dict(self.core.read_namespaced_config_map(name, namespace).data or {})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            data = self.core.read_namespaced_secret(name, namespace).data or {}
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}

    # ---- one container -------------------------------------------------------------------

    def _run_container(
        self, c: Any, state: ContainerState, env: dict[str, str], restart: bool, phase: str
    ) -> bool:
        """Run a container to its end, restarting it if the policy says so; True if exit 0."""
        while True:
            self._run_process(c, state, env, lambda: self._publish(phase))
            if (
                state.exit_code == 0
                or not restart
                or self.stopped.is_set()
                or self._past_deadline()
            ):
                return state.exit_code == 0
            backoff = min(10.0, 2.0**state.restart_count)
            state.last_terminated = state.terminated()
            state.restart_count += 1
            state.exit_code, state.started_at = None, ""
            state.reason, state.message = "CrashLoopBackOff", f"restarting in {backoff:.0f}s"
            self._publish(phase)
            if self.stopped.wait(backoff):
                state.exit_code, state.reason = state.last_terminated["exitCode"], "Error"
                state.finished_at = now_rfc3339()
                return False

    def _run_process(
        self, c: Any, state: ContainerState, env: dict[str, str], publish: Callable[[], None]
    ) -> None:
        argv = [expand(a, env) for a in [*(c.command or []), *(c.args or [])]]
        log_path = self.log_dir / f"{c.name}.log"
        state.reason = state.message = ""
        with log_path.open("ab") as out:
            exe = shutil.which(argv[0], path=env.get("PATH")) if argv else None
            if exe is None:
                state.message = (
                    f"executable {argv[0]!r} not found on PATH ({env.get('PATH', '')}): the "
                    "node stand-in runs the command locally and ignores the image"
                    if argv
                    else "container has no command: the node stand-in cannot run an image's "
                    "entrypoint, give the container an explicit command"
                )
                out.write(f"[node stand-in] {state.message}\n".encode())
                state.started_at = state.finished_at = now_rfc3339()
                state.exit_code, state.reason = EXIT_NOT_FOUND, "StartError"
                return
            if self.stopped.is_set():
                state.exit_code, state.reason, state.finished_at = 137, "Error", now_rfc3339()
                return
            cwd = c.working_dir if c.working_dir and Path(c.working_dir).is_dir() else self.log_dir
            # Spawned from this thread, which waits for the child: the parent-death signal
            # (see procs.spawn) stays armed for the child's whole life.
            proc = spawn([exe, *argv[1:]], log=out, env=env, cwd=cwd)
            state.pid, state.started_at = proc.pid, now_rfc3339()
            publish()
            code = self._wait(proc)
        state.finished_at = now_rfc3339()
        state.exit_code = 128 - code if code < 0 else code  # -N: killed by signal N
        state.reason = "Completed" if state.exit_code == 0 else "Error"
        if state.exit_code and c.termination_message_policy == "FallbackToLogsOnError":
            state.message = log_path.read_bytes()[-2048:].decode("utf-8", "replace")

    def _wait(self, proc: subprocess.Popen[bytes]) -> int:
        """Wait for the process; kill its group on stop or deadline. Returns its status."""
        timed_out = False
        while proc.poll() is None:
            if self.stopped.wait(0.1):
                break
            if self._past_deadline():
                timed_out = True
                break
        # Also reaps whatever the command left behind in its process group.
        code = stop_group(proc, grace=0.0 if timed_out else self.grace)
        return 137 if code is None else code


def _condition(type_: str, status: str) -> dict[str, str]:
    return {"type": type_, "status": status, "lastTransitionTime": now_rfc3339()}

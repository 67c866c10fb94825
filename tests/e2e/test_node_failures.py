"""Failures as a real cluster makes them (issue 13, point 4), on the real node
(tests/kube/realnode.py): the operator runs as a process of its own (``smepulse operator``)
against the node's API server, its stage Jobs run as containers of a tiny fake stage image.

The fake image (built once per session from ``smepulse-local/python3:bookworm``) puts a
``smepulse`` script on ``PATH``; ``smepulse stage <name>`` does what the run's params say for
that stage (``SMEPULSE_PARAMS`` = the run's ``spec.params``, ``{stage: behaviour}``):

* ``ok`` (any stage not named): print a line and exit 0;
* ``sleep:N``: print ``started``, sleep N seconds, exit 0;
* ``oom``: print ``started``, then keep allocating (and touching) memory until the kernel kills
  it at the container's memory limit.

Every behaviour installs a SIGTERM handler that prints ``SIGTERM received`` and exits 143, as
the product image's tini + Python do, so a test can see that a stage was stopped by SIGTERM.

What each test proves is in its docstring. Independent observations (Pod states, container
exit reasons, the Job objects, the Pods' own output) are read from the API server, not from
the operator.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube.realnode import RealCluster, docker_env
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "charts/smepulse/files/crds/pipelineruns.smepulse.io.yaml"
GROUP, VERSION, PLURAL = "smepulse.io", "v1alpha1", "pipelineruns"
BASE_IMAGE = "smepulse-local/python3:bookworm"
FAKE_IMAGE = "smepulse-local/fake-stage:test"
# Never imported into the node, and there is no registry: pulling it fails.
MISSING_IMAGE = "smepulse-local/never-imported:missing"
STUCK_POD_SECONDS = 8
RUN_LABEL = "smepulse.io/run"
STAGE_LABEL = "smepulse.io/stage"
# Small requests so that several runs' Pods fit the one node at once; the catalog's defaults
# ask for 250m and 512Mi per stage.
RESOURCES = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"cpu": "500m", "memory": "128Mi"},
}

FAKE_SMEPULSE = r'''#!/usr/bin/python3
"""Fake `smepulse stage <name>`: what it does comes from SMEPULSE_PARAMS[<name>]."""
import json, os, signal, sys, time


def on_term(signum, frame):
    print(f"fake stage {STAGE}: SIGTERM received", flush=True)
    sys.exit(143)


if len(sys.argv) != 3 or sys.argv[1] != "stage":
    print(f"fake smepulse: unexpected arguments {sys.argv[1:]}", file=sys.stderr)
    sys.exit(2)
STAGE = sys.argv[2]
signal.signal(signal.SIGTERM, on_term)
what = json.loads(os.environ.get("SMEPULSE_PARAMS") or "{}").get(STAGE, "ok")
if what == "ok":
    print(f"fake stage {STAGE}: ok", flush=True)
elif what.startswith("sleep:"):
    print(f"fake stage {STAGE}: started", flush=True)
    time.sleep(float(what.split(":", 1)[1]))
    print(f"fake stage {STAGE}: done", flush=True)
elif what == "oom":
    print(f"fake stage {STAGE}: started", flush=True)
    hog = []
    while True:
        hog.append(b"\x01" * (8 << 20))  # filled, so every page is resident
        print(f"fake stage {STAGE}: {8 * len(hog)} MiB", flush=True)
else:
    print(f"fake stage {STAGE}: unknown behaviour {what!r}", file=sys.stderr)
    sys.exit(2)
'''


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_stage_image(real_cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fake stage image, built with Docker and imported into the node."""
    engine = docker_env()
    folder = tmp_path_factory.mktemp("fake-stage-image")
    script = folder / "smepulse"
    script.write_text(FAKE_SMEPULSE)
    script.chmod(0o755)
    (folder / "Dockerfile").write_text(
        f'FROM {BASE_IMAGE}\nCOPY smepulse /usr/local/bin/smepulse\nCMD ["smepulse"]\n'
    )
    env = {**os.environ, "DOCKER_HOST": engine["DOCKER_HOST"]}
    build = subprocess.run(
        [engine["SMEPULSE_DOCKER_BIN"], "build", "-q", "-t", FAKE_IMAGE, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, f"docker build of {FAKE_IMAGE} failed:\n{build.stderr}"
    real_cluster.import_images(FAKE_IMAGE)
    return FAKE_IMAGE


@pytest.fixture(scope="module")
def pipelinerun_crd(real_cluster: RealCluster, real_api: client.ApiClient) -> Iterator[None]:
    """The chart's CRD, applied if the session's cluster lacks it (removed again after)."""
    exts = client.ApiextensionsV1Api(real_api)
    added = not any(
        c.metadata.name == "pipelineruns.smepulse.io"
        for c in exts.list_custom_resource_definition().items
    )
    if added:
        real_cluster.kubectl("apply", "-f", str(CRD))
    real_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/pipelineruns.smepulse.io", "--timeout=60s"
    )
    try:
        yield
    finally:
        if added:
            real_cluster.kubectl("delete", "-f", str(CRD), "--wait=true", "--timeout=60s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """``smepulse operator -n <ns>`` as a child process (so it can be SIGKILLed)."""

    def __init__(self, cluster: RealCluster, namespace: str, workdir: Path) -> None:
        self.namespace, self.workdir = namespace, workdir
        self.log = workdir / "operator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "SMEPULSE_KUBECONFIG": str(cluster.kubeconfig),
            "SMEPULSE_JOB_IMAGE": FAKE_IMAGE,
            "SMEPULSE_OPERATOR_STUCK_POD_SECONDS": str(STUCK_POD_SECONDS),
            "SMEPULSE_OPERATOR_RECONCILE_INTERVAL_SECONDS": "2",
            "SMEPULSE_LOG_FORMAT": "text",
        }

    def start(self) -> None:
        health = _free_port()
        self.env["SMEPULSE_OPERATOR_HEALTH_PORT"] = str(health)
        self.env["SMEPULSE_OPERATOR_METRICS_PORT"] = str(_free_port())
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"---- start {self.starts} ----\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("smepulse")), "operator", "-n", self.namespace],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the operator exited at start:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=1) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for(ready, timeout=60, interval=0.2, what="the operator's /readyz", describe=self.tail)

    def kill(self) -> None:
        """SIGKILL: no cleanup handler runs, as when a node dies or the OOM killer strikes."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def tracebacks(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text if "Traceback" in text else ""


def _namespace(api: client.ApiClient, stem: str) -> str:
    """A namespace with the ``smepulse-config`` ConfigMap the stage Jobs load (envFrom)."""
    core = client.CoreV1Api(api)
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    wait_for(
        lambda: core.list_namespaced_service_account(name).items,
        timeout=30,
        what=f"ServiceAccount default in {name}",
    )
    core.create_namespaced_config_map(
        name, {"metadata": {"name": "smepulse-config"}, "data": {"SMEPULSE_LOG_FORMAT": "text"}}
    )
    return name


@contextlib.contextmanager
def operator_on_namespace(
    cluster: RealCluster, api: client.ApiClient, stem: str, workdir: Path
) -> Iterator[OperatorProcess]:
    ns = _namespace(api, stem)
    op = OperatorProcess(cluster, ns, workdir)
    try:
        op.start()
        yield op
    finally:
        custom = client.CustomObjectsApi(api)
        with contextlib.suppress(ApiException):
            # Runs carry the operator's finalizer: delete them while it still runs.
            custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
            if op.proc is not None and op.proc.poll() is None:
                wait_for(
                    lambda: (
                        not custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)[
                            "items"
                        ]
                    ),
                    timeout=30,
                    what=f"the runs of {ns} to be deleted",
                )
        op.stop()
        with contextlib.suppress(ApiException):
            # An operator that died early left its finalizer on runs: drop it, so neither the
            # namespace nor the CRD waits for an operator that will not come back.
            for doc in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, doc["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )  # fmt: skip
            client.CoreV1Api(api).delete_namespace(ns, propagation_policy="Background")
    assert not op.tracebacks(), f"traceback in the operator's log {op.log}:\n{op.tail(80)}"


@pytest.fixture(scope="module")
def operator(
    real_cluster: RealCluster,
    real_api: client.ApiClient,
    fake_stage_image: str,
    pipelinerun_crd: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """One operator for the module's tests that do not kill it, on a namespace of its own."""
    workdir = tmp_path_factory.mktemp("operator")
    with operator_on_namespace(real_cluster, real_api, "node-failures", workdir) as op:
        yield op


# ---- helpers ---------------------------------------------------------------------------------


class Runs:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)

    def create(self, name: str, stages: list[str], params: dict[str, str], **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PipelineRun",
            "metadata": {"name": name},
            "spec": {
                "pipeline": "external-sync",
                "logicalDate": "2025-01-01",
                "stages": stages,
                "params": params,
                "resources": RESOURCES,
                **spec,
            },
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        doc: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name
        )
        return doc

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def stage(self, name: str, stage: str) -> dict[str, Any]:
        for item in self.status(name).get("stages") or []:
            if item.get("name") == stage:
                return dict(item)
        return {}

    def wait_phase(self, name: str, phases: tuple[str, ...], timeout: float) -> dict[str, Any]:
        return wait_for(
            lambda: st if (st := self.status(name)).get("phase") in phases else None,
            timeout=timeout,
            interval=0.5,
            what=f"run {self.ns}/{name} to reach {'/'.join(phases)}",
            describe=lambda: json.dumps(self.status(name), indent=1),
        )

    def delete(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def pods(self, run: str, stage: str | None = None) -> list[client.V1Pod]:
        selector = f"{RUN_LABEL}={run}" + (f",{STAGE_LABEL}={stage}" if stage else "")
        return list(self.core.list_namespaced_pod(self.ns, label_selector=selector).items)

    def jobs(self, run: str) -> list[client.V1Job]:
        return list(
            self.batch.list_namespaced_job(self.ns, label_selector=f"{RUN_LABEL}={run}").items
        )

    def events(self, run: str) -> list[client.CoreV1Event]:
        return [
            e
            for e in self.core.list_namespaced_event(
                self.ns, field_selector=f"involvedObject.name={run}"
            ).items
            if e.involved_object.kind == "PipelineRun"
        ]

    def running_pod(self, run: str, stage: str, timeout: float = 60) -> client.V1Pod:
        """The stage's Pod once its container runs and has printed ``started`` (its SIGTERM
        handler is installed by then)."""

        def probe() -> client.V1Pod | None:
            for pod in self.pods(run, stage):
                if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp:
                    with contextlib.suppress(ApiException):
                        if "started" in self.core.read_namespaced_pod_log(
                            pod.metadata.name, self.ns
                        ):
                            return pod
            return None

        return wait_for(
            probe,
            timeout=timeout,
            interval=0.3,
            what=f"a running Pod of stage {stage} of {self.ns}/{run}",
            describe=lambda: str([(p.metadata.name, p.status.phase) for p in self.pods(run)]),
        )


def terminated(pod: client.V1Pod) -> client.V1ContainerStateTerminated | None:
    for cs in pod.status.container_statuses or []:
        if cs.state and cs.state.terminated:
            return cs.state.terminated
    return None


class LogFollower:
    """``kubectl logs -f`` of one Pod in a thread: it keeps what the container printed up to
    its end, even when the Pod (and with it its log) is deleted right after."""

    def __init__(self, core: client.CoreV1Api, ns: str, pod: str) -> None:
        self.lines: list[str] = []
        self.ended = threading.Event()

        def run() -> None:
            try:
                resp = core.read_namespaced_pod_log(
                    pod, ns, follow=True, _preload_content=False, _request_timeout=(5, 120)
                )
                for raw in resp.stream(1024):
                    self.lines.extend(raw.decode(errors="replace").splitlines())
            except Exception as exc:  # reported through the lines read
                self.lines.append(f"(log stream ended: {exc!r})")
            finally:
                self.ended.set()

        threading.Thread(target=run, name=f"logs-{pod}", daemon=True).start()


# ---- the tests -------------------------------------------------------------------------------


def test_image_that_cannot_be_pulled_fails_the_stage_within_a_minute(
    operator: OperatorProcess, real_api: client.ApiClient
) -> None:
    """ErrImagePull/ImagePullBackOff, with the operator's default settings for it: the
    attempt fails once the Pod has been stuck ``operator_image_pull_seconds`` (45 s), within a
    minute of the run's creation; the kubelet's reason is named in the stage's and the run's
    status and in an Event, and the stuck Job is deleted -- long before the stage's
    activeDeadlineSeconds (600 s for ingest-provinces)."""
    runs = Runs(real_api, operator.namespace)
    run = "pull-20250101"
    created = time.monotonic()
    runs.create(
        run,
        ["ingest-provinces"],
        {},
        image=MISSING_IMAGE,
        retries={"limit": 0, "backoffSeconds": 0},
    )
    try:
        # Independent of the operator: the kubelet reports the pull failure on the Pod.
        wait_for(
            lambda: next(
                (
                    cs.state.waiting.reason
                    for p in runs.pods(run, "ingest-provinces")
                    for cs in p.status.container_statuses or []
                    if cs.state.waiting
                    and cs.state.waiting.reason in ("ErrImagePull", "ImagePullBackOff")
                ),
                None,
            ),
            timeout=45,
            what="the kubelet to report the image pull failure",
        )
        stage = wait_for(
            lambda: (
                s if (s := runs.stage(run, "ingest-provinces")).get("phase") == "Failed" else None
            ),
            timeout=75,
            interval=0.5,
            what=f"stage ingest-provinces of {run} to fail",
            describe=lambda: json.dumps(runs.status(run), indent=1),
        )
        elapsed = time.monotonic() - created
        assert elapsed < 60, f"the stage failed only after {elapsed:.0f} s"
        assert stage["attempts"] == 1
        assert any(r in stage["message"] for r in ("ErrImagePull", "ImagePullBackOff")), stage
        # The kubelet's own words, image named: "Back-off pulling image ..." or the pull error.
        assert MISSING_IMAGE.split("/")[-1] in stage["message"], stage
        status = runs.status(run)
        assert status["failedStage"] == "ingest-provinces", status
        assert any(r in status["message"] for r in ("ErrImagePull", "ImagePullBackOff")), status

        # Events are posted asynchronously (after the status patch): wait for them.
        def pull_warnings() -> list[str]:
            return [
                f"{e.reason}: {e.message}"
                for e in runs.events(run)
                if e.type == "Warning"
                and e.reason in ("StagePodStuck", "StageFailed")
                and "ingest-provinces" in e.message
                and ("ErrImagePull" in e.message or "ImagePullBackOff" in e.message)
            ]

        warnings = wait_for(
            pull_warnings,
            timeout=20,
            what=f"a Warning Event of {run} naming the image pull failure",
            describe=lambda: str([(e.reason, e.message) for e in runs.events(run)]),
        )
        assert any(w.startswith("StagePodStuck: ") for w in warnings), warnings
        # The stuck attempt's Job is deleted (its Pod would retry the pull forever).
        wait_for(
            lambda: (
                not [
                    j
                    for j in runs.jobs(run)
                    if j.metadata.labels[STAGE_LABEL] == "ingest-provinces"
                    and not j.metadata.deletion_timestamp
                ]
            ),
            timeout=30,
            what="the stuck Job to be deleted",
        )
    finally:
        runs.delete(run)


def test_oomkilled_stage_is_reported_as_such_and_retried(
    operator: OperatorProcess, real_api: client.ApiClient
) -> None:
    """A stage over its memory limit is OOMKilled by the kernel: each attempt's Pod says so,
    the operator reports OOMKilled (not a generic error) in the stage's status and its Events,
    and retries the stage per the retries setting (limit 1: two attempts, two Jobs)."""
    runs = Runs(real_api, operator.namespace)
    run = "oom-20250101"
    runs.create(
        run,
        ["ingest-provinces"],
        {"ingest-provinces": "oom"},
        retries={"limit": 1, "backoffSeconds": 0},
        resources={
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "500m", "memory": "64Mi"},
        },
    )
    try:
        status = runs.wait_phase(run, ("Failed",), timeout=90)
        # Independent of the operator: the kubelet's record of each attempt's container.
        pods = runs.pods(run, "ingest-provinces")
        reasons = sorted(
            (p.metadata.labels["smepulse.io/attempt"], getattr(terminated(p), "reason", None))
            for p in pods
        )
        assert reasons == [("1", "OOMKilled"), ("2", "OOMKilled")], reasons
        assert sorted(
            j.metadata.name for j in runs.jobs(run) if "provinces" in j.metadata.name
        ) == [
            f"{run}-ingest-provinces",
            f"{run}-ingest-provinces-2",
        ]
        stage = runs.stage(run, "ingest-provinces")
        assert stage["phase"] == "Failed" and stage["attempts"] == 2, stage
        assert "OOMKilled" in stage["message"], stage
        assert "OOMKilled" in status["message"], status

        # Events are posted asynchronously (after the status patch): wait for them.
        def oom_events() -> set[str]:
            return {
                str(e.reason)
                for e in runs.events(run)
                if e.type == "Warning" and "OOMKilled" in (e.message or "")
            }

        wait_for(
            lambda: {"StageAttemptFailed", "StageFailed"} <= oom_events(),
            timeout=20,
            what=f"StageAttemptFailed and StageFailed Events of {run} naming OOMKilled",
            describe=lambda: str([(e.reason, e.message) for e in runs.events(run)]),
        )
    finally:
        runs.delete(run)


@pytest.mark.parametrize("how", ["evicted", "deleted"])
def test_evicted_or_deleted_pod_is_replaced_in_its_job_without_spending_a_retry(
    how: str, operator: OperatorProcess, real_api: client.ApiClient
) -> None:
    """A Pod evicted through the Eviction API (what ``kubectl drain`` does) is marked
    DisruptionTarget; the same Pod simply deleted (``kubectl delete pod``) gets SIGTERM
    without it and its container exits 143. The Job's podFailurePolicy ignores both, so the
    Job controller starts a new Pod in the same Job: the stage succeeds on attempt 1, with
    one Job (render.py; tests/integration/operator/test_gaps.py gap 8)."""
    runs = Runs(real_api, operator.namespace)
    run = f"{how}-20250101"
    stage = "ingest-provinces"
    runs.create(run, [stage], {stage: "sleep:6"}, retries={"limit": 2, "backoffSeconds": 0})
    try:
        first = runs.running_pod(run, stage)
        name = first.metadata.name
        follower = LogFollower(runs.core, runs.ns, name)
        time.sleep(0.5)  # the stream is open
        if how == "evicted":
            runs.core.create_namespaced_pod_eviction(
                name,
                runs.ns,
                client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=runs.ns)),
            )
        else:
            runs.core.delete_namespaced_pod(name, runs.ns)
        # Either way the container got SIGTERM (and the Pod was not just forgotten).
        assert follower.ended.wait(40), f"pod {name} still runs"
        assert any("SIGTERM received" in line for line in follower.lines), follower.lines
        status = runs.wait_phase(run, ("Succeeded", "Failed"), timeout=90)
        assert status["phase"] == "Succeeded", status
        jobs = sorted(
            j.metadata.name for j in runs.jobs(run) if j.metadata.labels[STAGE_LABEL] == stage
        )
        record = runs.stage(run, stage)
        assert jobs == [f"{run}-{stage}"]
        assert record["attempts"] == 1 and record["jobName"] == f"{run}-{stage}", record
        # It succeeded in another Pod than the one that was ended.
        done = [p for p in runs.pods(run, stage) if p.status.phase == "Succeeded"]
        assert len(done) == 1 and done[0].metadata.name != name, done
    finally:
        runs.delete(run)


def test_cancel_stops_every_stage_pod_by_sigterm_within_the_grace_period(
    operator: OperatorProcess, real_api: client.ApiClient
) -> None:
    """``spec.cancel: true`` on a running run: both running stages' Pods get SIGTERM (their
    handler prints it), are gone well within the Pods' termination grace period, and the run
    ends Cancelled with both stages Cancelled."""
    runs = Runs(real_api, operator.namespace)
    run = "cancel-20250101"
    stages = ["ingest-worldbank", "ingest-provinces"]
    runs.create(run, stages, {s: "sleep:300" for s in stages})
    try:
        pods = [runs.running_pod(run, s) for s in stages]
        grace = max(p.spec.termination_grace_period_seconds or 30 for p in pods)
        followers = {
            p.metadata.name: LogFollower(runs.core, runs.ns, p.metadata.name) for p in pods
        }
        time.sleep(1)  # the streams are open
        cancelled = time.monotonic()
        runs.custom.patch_namespaced_custom_object(
            GROUP, VERSION, runs.ns, PLURAL, run, {"spec": {"cancel": True}}
        )
        names = {p.metadata.name for p in pods}
        wait_for(
            lambda: not names & {p.metadata.name for p in runs.pods(run)},
            timeout=grace,
            interval=0.3,
            what=f"the stage Pods {sorted(names)} to be gone within the {grace} s grace period",
            describe=lambda: str([(p.metadata.name, p.status.phase) for p in runs.pods(run)]),
        )
        gone_after = time.monotonic() - cancelled
        for name, follower in followers.items():
            follower.ended.wait(10)
            assert any("SIGTERM received" in line for line in follower.lines), (
                name,
                follower.lines,
            )
        assert gone_after < grace, gone_after
        status = runs.wait_phase(run, ("Cancelled",), timeout=60)
        phases = {s["name"]: s["phase"] for s in status["stages"]}
        assert phases == {
            "ingest-worldbank": "Cancelled",
            "ingest-provinces": "Cancelled",
            "notify": "Succeeded",
        }, phases
    finally:
        runs.delete(run)


def test_operator_killed_mid_run_resumes_without_duplicate_jobs(
    real_cluster: RealCluster,
    real_api: client.ApiClient,
    fake_stage_image: str,
    pipelinerun_crd: None,
    tmp_path: Path,
) -> None:
    """The operator is SIGKILLed twice, each time the moment a Job it creates appears (its
    status patch, the reconcile's last write, may or may not have landed): first at the first
    ingest Job, then, restarted, at dbt-external-silver's Job (created once both ingest stages
    ended). Started again, it completes the run, and every stage has exactly one Job -- the
    same objects (uids) that existed at each kill -- and one Pod."""
    with operator_on_namespace(real_cluster, real_api, "operator-kill", tmp_path) as op:
        runs = Runs(real_api, op.namespace)
        run = "kill-20250101"
        stages = ["ingest-worldbank", "ingest-provinces", "dbt-external-silver"]
        runs.create(
            run,
            stages,
            {"ingest-worldbank": "sleep:5", "ingest-provinces": "sleep:5",
             "dbt-external-silver": "sleep:3"},
        )  # fmt: skip
        before: dict[str, str] = {}
        # The two ingest stages start in one reconcile (either Job may come first); the dbt
        # stage in a later one, after both.
        for wanted in ({"ingest-worldbank", "ingest-provinces"}, {"dbt-external-silver"}):

            def created(w: set[str] = wanted) -> bool:
                return any(j.metadata.labels[STAGE_LABEL] in w for j in runs.jobs(run))

            wait_for(created, timeout=60, interval=0.05, what=f"a Job of {sorted(wanted)}")
            op.kill()
            recorded = [s["name"] for s in runs.status(run).get("stages") or [] if s.get("jobName")]
            print(f"killed at the Job of {sorted(wanted)}; status then named Jobs of {recorded}")
            time.sleep(0.5)
            before |= {j.metadata.name: j.metadata.uid for j in runs.jobs(run)}
            op.start()
        status = runs.wait_phase(run, ("Succeeded", "Failed"), timeout=90)
        assert status["phase"] == "Succeeded", status
        after = {j.metadata.name: j.metadata.uid for j in runs.jobs(run)}
        assert sorted(after) == sorted([f"{run}-{s}" for s in [*stages, "notify"]]), after
        for name, uid in before.items():
            assert after[name] == uid, f"Job {name} was replaced across a restart"
        assert all(s["attempts"] == 1 for s in status["stages"]), status["stages"]
        # One Pod per Job: nothing ran twice.
        per_stage = sorted(p.metadata.labels[STAGE_LABEL] for p in runs.pods(run))
        assert per_stage == sorted([*stages, "notify"]), per_stage


def _freeze_status(api: client.ApiClient, ns: str) -> tuple[str, str]:
    """A ValidatingAdmissionPolicy (and its binding) that refuses every write of a
    PipelineRun's status in ``ns``: the operator's reconcile then creates Jobs and fails at
    its last step, the status patch. Also refuses creating a run labelled
    ``smepulse-test/probe``, so a dry-run create tells when the policy is in force."""
    name = f"freeze-status-{ns}"
    reg = client.AdmissionregistrationV1Api(api)
    reg.create_validating_admission_policy(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [GROUP],
                            "apiVersions": ["*"],
                            "operations": ["UPDATE"],
                            "resources": [f"{PLURAL}/status"],
                        },
                        {
                            "apiGroups": [GROUP],
                            "apiVersions": ["*"],
                            "operations": ["CREATE"],
                            "resources": [PLURAL],
                        },
                    ]
                },
                "validations": [
                    {
                        # (subResource is absent, not empty, on the main resource)
                        "expression": "has(request.subResource) ? false : "
                        "!(has(object.metadata.labels) && "
                        "'smepulse-test/probe' in object.metadata.labels)",
                        "message": "status writes are frozen by the test",
                        "reason": "Forbidden",
                    }
                ],
            },
        }
    )
    reg.create_validating_admission_policy_binding(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}
                },
            },
        }
    )
    custom = client.CustomObjectsApi(api)
    probe = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PipelineRun",
        "metadata": {"name": "probe", "labels": {"smepulse-test/probe": "1"}},
        "spec": {"pipeline": "external-sync", "suspend": True},
    }

    def in_force() -> bool:
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, probe, dry_run="All")
        except ApiException as exc:
            return exc.status == 403 and "frozen by the test" in str(exc.body)
        return False

    wait_for(in_force, timeout=30, interval=0.2, what=f"the policy {name} to be in force")
    return name, name


def _unfreeze_status(api: client.ApiClient, names: tuple[str, str]) -> None:
    reg = client.AdmissionregistrationV1Api(api)
    with contextlib.suppress(ApiException):
        reg.delete_validating_admission_policy_binding(names[1])
    with contextlib.suppress(ApiException):
        reg.delete_validating_admission_policy(names[0])


def test_operator_killed_between_creating_jobs_and_recording_them_creates_no_duplicates(
    real_cluster: RealCluster,
    real_api: client.ApiClient,
    fake_stage_image: str,
    pipelinerun_crd: None,
    tmp_path: Path,
) -> None:
    """The worst moment for a kill: the reconcile created the stage Jobs but its status patch
    (the last write) never landed -- forced here by an admission policy that refuses the
    run's status writes, so the kill falls between the two for sure. The operator, SIGKILLed
    then and restarted with the policy gone, re-derives the run from the Jobs that exist:
    no second Job for any stage, the same uids, and the run completes."""
    with operator_on_namespace(real_cluster, real_api, "operator-kill-early", tmp_path) as op:
        runs = Runs(real_api, op.namespace)
        run = "early-20250101"
        stages = ["ingest-worldbank", "ingest-provinces"]
        frozen = _freeze_status(real_api, op.namespace)
        try:
            runs.create(run, stages, {s: "sleep:3" for s in stages})
            wait_for(
                lambda: {j.metadata.labels[STAGE_LABEL] for j in runs.jobs(run)} == set(stages),
                timeout=60,
                interval=0.1,
                what=f"the Jobs of {stages} in {run}",
            )
            time.sleep(1)  # the status patch has been tried (and refused) by now
            assert not runs.status(run).get("startTime"), runs.status(run)
            op.kill()
            before = {j.metadata.name: j.metadata.uid for j in runs.jobs(run)}
        finally:
            _unfreeze_status(real_api, frozen)
        op.start()
        status = runs.wait_phase(run, ("Succeeded", "Failed"), timeout=90)
        assert status["phase"] == "Succeeded", status
        after = {j.metadata.name: j.metadata.uid for j in runs.jobs(run)}
        assert sorted(after) == sorted(f"{run}-{s}" for s in [*stages, "notify"]), after
        assert {n: after[n] for n in before} == before, "a Job was replaced across the restart"
        assert all(s["attempts"] == 1 for s in status["stages"]), status["stages"]
        per_stage = sorted(p.metadata.labels[STAGE_LABEL] for p in runs.pods(run))
        assert per_stage == sorted([*stages, "notify"]), per_stage

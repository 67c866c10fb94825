"""Side by side: the SME Pulse operator and Argo Workflows' workflow-controller, same DAG.

Both controllers get daily-etl's shape, derived from the catalog (``smepulse.catalog``): one
Pod per job stage with the catalog's ``needs`` as edges, the ``finally`` stages as Argo's
``onExit`` (the operator runs them itself). ``kind: trigger`` stages are left out on both
sides: the operator starts another PipelineRun for them, not a Pod, so keeping them would not
be the same shape. Each controller gets a fresh test control plane (tests/kube: real etcd,
kube-apiserver, kube-controller-manager), one after the other, never at the same time.

Pods complete at once, and nothing in them runs: Argo's Pods need the ``argoexec`` executor
image (an init container, a ``wait`` sidecar and ``/var/run/argo/argoexec emissary`` around the
command, sharing emptyDir volumes), which the node stand-in cannot run. So a node stand-in
(tests/kube/node.py) binds every Pod and writes the status a kubelet would for a container
that exited 0 (phase Succeeded, every container terminated with exit code 0); for an Argo Pod
it first creates the WorkflowTaskResult (``report-outputs-completed: "true"``) that the wait
sidecar would. The figures therefore measure each controller (and, for the operator, the Job
controller it relies on) with zero-length stages: orchestration only.

Per controller, after one warm-up run:

1. creation -> first Pod: ``--latency-runs`` runs created one at a time, each timed from the
   create call to the first Pod's ADDED event on a watch (p50, p95);
2. ``--runs`` (100) runs created at once: time until every Pod of every run exists and until
   every run is terminal;
3. the controller's peak RSS (VmHWM) and CPU seconds (utime+stime, from /proc) over 1 and 2;
   kube-apiserver and kube-controller-manager CPU seconds over the same span beside them.

The operator runs as its image does (benchmarks/venvs.py: the ``operator`` dependency
group only). ``--kcm-qps N`` sets kube-controller-manager's client rate limit on both control
planes (default 20 QPS, burst 30): each stage Job's Pod is created, tracked and accounted by
the Job controller through that client, so it bounds the operator's first Pod under load.

Both controllers run with their shipped defaults (Argo: 32 workflow workers, client QPS 20,
burst 30; leader election off, metrics and telemetry off). Argo reconciles a Workflow at most
once per DEFAULT_REQUEUE_TIME (10 s by default) after a Pod changes, which sets the pace of a
chain of short stages, so Argo is measured twice by default: as shipped (10s) and with 1s,
the lowest value its source calls safe (``--argo-requeue``).

    python benchmarks/bench_argo.py [--runs 100] [--latency-runs 50]

Needs the Kubernetes tools (scripts/k8s-tools.sh) and workflow-controller v3.6.10
(scripts/argo-tools.sh builds it from the Go module proxy, ~2 min with a warm module cache).
Loopback only, except one thing Argo does unconditionally: its /healthz listens on :6060
(all interfaces); nothing is sent anywhere but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.venvs import operator_command, operator_env  # noqa: E402
from smepulse.catalog import Pipeline, load_catalog  # noqa: E402
from tests.kube.controlplane import ControlPlane, free_ports, running_control_plane  # noqa: E402
from tests.kube.node import NodeStandIn  # noqa: E402
from tests.kube.podenv import NODE_IP  # noqa: E402
from tests.kube.podrun import now_rfc3339, write_pod_status  # noqa: E402

PIPELINE = "daily-etl"
NS = "bench"
ARGO_VERSION = "3.6.10"
ARGO_TOOLS = REPO / "scripts" / "argo-tools.sh"
OPERATOR_CRD = REPO / "charts/smepulse/files/crds/pipelineruns.smepulse.io.yaml"
SMEPULSE_GROUP, SMEPULSE_VERSION, SMEPULSE_PLURAL = "smepulse.io", "v1alpha1", "pipelineruns"
ARGO_GROUP, ARGO_API = "argoproj.io", "v1alpha1"
ARGO_WF_LABEL = "workflows.argoproj.io/workflow"
ARGO_NODE_ID = "workflows.argoproj.io/node-id"
OPERATOR_RUN_LABEL = "smepulse.io/run"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- the DAG, from the catalog ---------------------------------------------------------------


@dataclass(frozen=True)
class DagShape:
    """A pipeline as Pods: job stages with their needs, then the finally stages."""

    stages: tuple[tuple[str, tuple[str, ...]], ...]
    finally_: tuple[str, ...]
    dropped: tuple[str, ...] = ()

    @property
    def pods_per_run(self) -> int:
        return len(self.stages) + len(self.finally_)


def dag_shape(pipeline: Pipeline) -> DagShape:
    """Job stages (name, needs) in catalog order and the finally stages; triggers dropped.

    A job stage that needs a trigger stage would lose an edge: that is refused, not hidden.
    """
    dropped = tuple(s.name for s in pipeline.stages if s.kind == "trigger")
    stages = []
    for s in pipeline.stages:
        if s.kind == "trigger":
            continue
        lost = sorted(set(s.needs) & set(dropped))
        if lost:
            raise ValueError(
                f"pipeline {pipeline.name}: stage {s.name} needs trigger stage(s) {lost}; "
                "the benchmark's Pod-only DAG cannot keep that edge"
            )
        stages.append((s.name, tuple(s.needs)))
    return DagShape(tuple(stages), tuple(s.name for s in pipeline.finally_), dropped)


def argo_workflow(name: str, shape: DagShape) -> dict[str, Any]:
    """An Argo Workflow with the same DAG: one task per stage, finally stages as onExit."""
    image = f"quay.io/argoproj/argoexec:v{ARGO_VERSION}"  # never pulled: nothing runs

    def task(stage: str, needs: Sequence[str] = ()) -> dict[str, Any]:
        t: dict[str, Any] = {
            "name": stage,
            "template": "stage",
            "arguments": {"parameters": [{"name": "stage", "value": stage}]},
        }
        if needs:
            t["dependencies"] = list(needs)
        return t

    templates: list[dict[str, Any]] = [
        {"name": "main", "dag": {"tasks": [task(n, needs) for n, needs in shape.stages]}},
        {
            "name": "stage",
            "inputs": {"parameters": [{"name": "stage"}]},
            "container": {"image": image, "command": ["true", "{{inputs.parameters.stage}}"]},
        },
    ]
    spec: dict[str, Any] = {"entrypoint": "main", "templates": templates}
    if shape.finally_:
        # One parallel step group, as the operator starts all finally stages together.
        templates.append(
            {"name": "finally", "steps": [[task(n) for n in shape.finally_]]},
        )
        spec["onExit"] = "finally"
    return {
        "apiVersion": f"{ARGO_GROUP}/{ARGO_API}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": spec,
    }


def pipeline_run(name: str, shape: DagShape) -> dict[str, Any]:
    return {
        "apiVersion": f"{SMEPULSE_GROUP}/{SMEPULSE_VERSION}",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {"pipeline": PIPELINE, "stages": [n for n, _ in shape.stages]},
    }


# ---- a node whose Pods finish at once --------------------------------------------------------


class InstantNode(NodeStandIn):
    """Binds Pods like NodeStandIn, then reports every container exited 0 (nothing runs)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._taken: set[str] = set()
        self.custom = client.CustomObjectsApi(self.api)

    def _take(self, pod: Any) -> None:
        with self._runs_lock:
            if pod.metadata.uid in self._taken:
                return
            self._taken.add(pod.metadata.uid)
        with contextlib.suppress(RuntimeError):  # RuntimeError: the node is stopping
            self._pool.submit(self._complete, pod)

    def _complete(self, pod: Any) -> None:
        meta = pod.metadata
        try:
            if ARGO_WF_LABEL in (meta.labels or {}):
                self._report_argo_outputs(pod)
            now = now_rfc3339()

            def terminated(c: Any) -> dict[str, Any]:
                return {
                    "name": c.name,
                    "image": c.image,
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }

            status: dict[str, Any] = {
                "phase": "Succeeded",
                "hostIP": NODE_IP,
                "startTime": now,
                "conditions": [
                    {"type": t, "status": s, "lastTransitionTime": now}
                    for t, s in (
                        ("PodScheduled", "True"),
                        ("Initialized", "True"),
                        ("ContainersReady", "False"),
                        ("Ready", "False"),
                    )
                ],
                "containerStatuses": [terminated(c) for c in pod.spec.containers],
            }
            if pod.spec.init_containers:
                status["initContainerStatuses"] = [terminated(c) for c in pod.spec.init_containers]
            write_pod_status(self.core, meta.namespace, meta.name, status)
        except Exception as exc:  # a lost Pod shows as a run that never ends
            print(f"instant node: completing {meta.namespace}/{meta.name} failed: {exc}")

    def _report_argo_outputs(self, pod: Any) -> None:
        """What argoexec's wait sidecar writes when the main container ends."""
        meta = pod.metadata
        owner = next(o for o in meta.owner_references or [] if o.kind == "Workflow")
        body = {
            "apiVersion": f"{ARGO_GROUP}/{ARGO_API}",
            "kind": "WorkflowTaskResult",
            "metadata": {
                "name": meta.annotations[ARGO_NODE_ID],
                "labels": {
                    ARGO_WF_LABEL: meta.labels[ARGO_WF_LABEL],
                    "workflows.argoproj.io/report-outputs-completed": "true",
                },
                "ownerReferences": [
                    {
                        "apiVersion": owner.api_version,
                        "kind": "Workflow",
                        "name": owner.name,
                        "uid": owner.uid,
                    }
                ],
            },
        }
        try:
            self.custom.create_namespaced_custom_object(
                ARGO_GROUP, ARGO_API, meta.namespace, "workflowtaskresults", body
            )
        except ApiException as exc:
            if exc.status != 409:
                raise


# ---- measuring -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def component_pid(cp: ControlPlane, name: str) -> int:
    return next(c.proc.pid for c in cp._components if c.name == name)


class PodWatch:
    """Arrival time (monotonic, at the watch event) of every Pod (or, with ``jobs``, every Job:
    the operator's hop before the Job controller's), grouped by run."""

    def __init__(
        self, api: client.ApiClient, run_of: Callable[[Any], str | None], jobs: bool = False
    ) -> None:
        self.list = (
            client.BatchV1Api(api).list_namespaced_job
            if jobs
            else client.CoreV1Api(api).list_namespaced_pod
        )
        self.run_of = run_of
        self.pods: dict[str, dict[str, float]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> PodWatch:
        self.thread.start()
        return self

    def _loop(self) -> None:
        rv = ""
        while not self.stop.is_set():
            try:
                w = watch.Watch()
                for ev in w.stream(
                    self.list,
                    NS,
                    resource_version=rv or None,
                    timeout_seconds=5,
                ):
                    now = time.monotonic()
                    pod = ev["object"]
                    rv = pod.metadata.resource_version
                    run = self.run_of(pod)
                    if run:
                        with self.lock:
                            self.pods.setdefault(run, {}).setdefault(pod.metadata.uid, now)
                    if self.stop.is_set():
                        w.stop()
            except ApiException as exc:
                if exc.status == 410:
                    rv = ""
                else:
                    time.sleep(0.2)

    def first(self, run: str) -> float | None:
        with self.lock:
            times = self.pods.get(run)
            return min(times.values()) if times else None

    def all_of(self, runs: Sequence[str]) -> list[float]:
        with self.lock:
            return [t for r in runs for t in self.pods.get(r, {}).values()]


@dataclass
class Controller:
    """How to start one controller, create a run and read run phases."""

    name: str
    start: Callable[[ControlPlane, Path], subprocess.Popen[bytes]]
    create: Callable[[client.CustomObjectsApi, str], None]
    phases: Callable[[client.CustomObjectsApi], dict[str, str]]
    terminal: frozenset[str]
    run_of: Callable[[Any], str | None]
    setup: Callable[[ControlPlane, client.ApiClient, Path], None]
    makes_jobs: bool = False


@dataclass
class Result:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    job_latencies_ms: list[float] = field(default_factory=list)
    created_s: float = 0.0
    pods_s: float = float("nan")
    terminal_s: float = float("nan")
    pods_seen: int = 0
    not_terminal: int = 0
    not_succeeded: int = 0
    rss_mib: float = float("nan")
    cpu_s: float = float("nan")
    apiserver_cpu_s: float = float("nan")
    kcm_cpu_s: float = float("nan")
    exit_code: int | None = None
    load: list[str] = field(default_factory=list)


def wait_terminal(
    ctl: Controller, custom: client.CustomObjectsApi, names: set[str], deadline: float
) -> dict[str, str]:
    while True:
        current = {n: p for n, p in ctl.phases(custom).items() if n in names}
        if all(current.get(n, "") in ctl.terminal for n in names) or time.monotonic() > deadline:
            return current
        time.sleep(0.25)


def measure(ctl: Controller, shape: DagShape, args: argparse.Namespace, tmp: Path) -> Result:
    res = Result(ctl.name)
    kcm: tuple[str, ...] = ()
    if args.kcm_qps:
        # kube-controller-manager's client rate limit (default 20 QPS, burst 30) is what every
        # Job's Pod waits on: the Job controller creates the Pod, tracks it with a finalizer
        # and writes the Job's status, several requests per stage.
        kcm = (f"--kube-api-qps={args.kcm_qps}", f"--kube-api-burst={int(args.kcm_qps * 1.5)}")
    with running_control_plane(
        workdir=tmp / f"kube-{ctl.name}", extra_controller_manager_args=kcm
    ) as cp:
        api = config.new_client_from_config(config_file=str(cp.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace({"metadata": {"name": NS}})
        ctl.setup(cp, api, tmp)
        node = InstantNode(cp.kubeconfig, log_dir=tmp / f"pods-{ctl.name}", max_pods=8).start()
        proc = ctl.start(cp, tmp)
        pods = PodWatch(api, ctl.run_of).start()
        # Only the operator makes Jobs: creation -> first Job is its own share of the latency.
        jobs = PodWatch(api, ctl.run_of, jobs=True).start() if ctl.makes_jobs else None
        try:
            # Warm-up: the controller is up and its caches are synced once this finishes.
            ctl.create(custom, "warmup")
            warm = wait_terminal(ctl, custom, {"warmup"}, time.monotonic() + 120)
            if warm.get("warmup") not in ctl.terminal:
                raise RuntimeError(
                    f"{ctl.name}: warm-up run not terminal after 120 s (phase "
                    f"{warm.get('warmup')!r}); controller exit code {proc.poll()}"
                )
            pids = {
                "ctl": proc.pid,
                "api": component_pid(cp, "kube-apiserver"),
                "kcm": component_pid(cp, "kube-controller-manager"),
            }
            cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
            res.load.append(loadavg())
            lat_names = [f"lat-{i:03d}" for i in range(args.latency_runs)]
            for name in lat_names:
                t0 = time.monotonic()
                ctl.create(custom, name)
                while (first := pods.first(name)) is None and time.monotonic() - t0 < 60:
                    time.sleep(0.002)
                res.latencies_ms.append(((first or float("inf")) - t0) * 1000)
                job = jobs.first(name) if jobs else None
                if job is not None:
                    res.job_latencies_ms.append((job - t0) * 1000)
            wait_terminal(ctl, custom, set(lat_names), time.monotonic() + 300)
            drain = [f"drain-{i:03d}" for i in range(args.runs)]
            t0 = time.monotonic()
            for name in drain:
                ctl.create(custom, name)
            res.created_s = time.monotonic() - t0
            expected = len(drain) * shape.pods_per_run
            deadline = t0 + args.timeout
            final: dict[str, str] = {}
            while time.monotonic() < deadline:
                final = {n: p for n, p in ctl.phases(custom).items() if n in set(drain)}
                if all(final.get(n, "") in ctl.terminal for n in drain):
                    res.terminal_s = time.monotonic() - t0
                    break
                time.sleep(0.25)
            time.sleep(1)  # let the watch deliver the last ADDED events
            arrivals = pods.all_of(drain)
            res.pods_seen = len(arrivals)
            if len(arrivals) >= expected:
                res.pods_s = max(arrivals) - t0
            res.not_terminal = sum(final.get(n, "") not in ctl.terminal for n in drain)
            res.not_succeeded = sum(final.get(n, "") != "Succeeded" for n in drain)
            cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
            res.cpu_s = cpu1["ctl"] - cpu0["ctl"]
            res.apiserver_cpu_s = cpu1["api"] - cpu0["api"]
            res.kcm_cpu_s = cpu1["kcm"] - cpu0["kcm"]
            res.rss_mib = peak_rss_mib(proc.pid)
            res.load.append(loadavg())
        finally:
            pods.stop.set()
            if jobs:
                jobs.stop.set()
            proc.terminate()
            try:
                res.exit_code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                res.exit_code = proc.wait()
            node.stop()
    return res


# ---- the two controllers ---------------------------------------------------------------------


def operator_controller(shape: DagShape) -> Controller:
    def setup(cp: ControlPlane, api: client.ApiClient, tmp: Path) -> None:
        cp.kubectl("apply", "-f", str(OPERATOR_CRD))
        cp.kubectl("wait", "--for=condition=Established", "crd/pipelineruns.smepulse.io")
        client.CoreV1Api(api).create_namespaced_config_map(
            NS, {"metadata": {"name": "smepulse-config"}, "data": {}}
        )

    def start(cp: ControlPlane, tmp: Path) -> subprocess.Popen[bytes]:
        metrics, health = free_ports(2)
        env = operator_env(
            {
                "SMEPULSE_KUBECONFIG": str(cp.kubeconfig),
                "SMEPULSE_LOG_FORMAT": "json",
                "SMEPULSE_LOG_LEVEL": "WARNING",
                "SMEPULSE_OPERATOR_METRICS_PORT": str(metrics),
                "SMEPULSE_OPERATOR_HEALTH_PORT": str(health),
            }
        )
        return subprocess.Popen(
            [*operator_command(), "-n", NS],
            env=env,
            stdout=(tmp / "operator.log").open("wb"),
            stderr=subprocess.STDOUT,
        )

    def phases(custom: client.CustomObjectsApi) -> dict[str, str]:
        items = custom.list_namespaced_custom_object(
            SMEPULSE_GROUP, SMEPULSE_VERSION, NS, SMEPULSE_PLURAL
        )["items"]
        return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}

    return Controller(
        name="smepulse-operator",
        start=start,
        create=lambda custom, name: custom.create_namespaced_custom_object(
            SMEPULSE_GROUP, SMEPULSE_VERSION, NS, SMEPULSE_PLURAL, pipeline_run(name, shape)
        ),
        phases=phases,
        terminal=frozenset({"Succeeded", "Failed", "Cancelled"}),
        run_of=lambda pod: (pod.metadata.labels or {}).get(OPERATOR_RUN_LABEL),
        setup=setup,
        makes_jobs=True,
    )


def argo_dir() -> Path:
    proc = subprocess.run(["bash", str(ARGO_TOOLS)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{ARGO_TOOLS} failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def argo_controller(shape: DagShape, tools: Path, requeue: str) -> Controller:
    def setup(cp: ControlPlane, api: client.ApiClient, tmp: Path) -> None:
        cp.kubectl("apply", "-f", str(tools / "crds"))
        cp.kubectl("wait", "--for=condition=Established", "crd", "--all")
        # The controller reads its ConfigMap from its kubeconfig's namespace ("default").
        client.CoreV1Api(api).create_namespaced_config_map(
            "default",
            {
                "metadata": {"name": "workflow-controller-configmap"},
                "data": {
                    "metricsConfig": "enabled: false\n",
                    "telemetryConfig": "enabled: false\n",
                },
            },
        )

    def start(cp: ControlPlane, tmp: Path) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "LEADER_ELECTION_DISABLE": "true",
            "DEFAULT_REQUEUE_TIME": requeue,
        }
        return subprocess.Popen(
            [
                str(tools / "bin" / "workflow-controller"),
                "--kubeconfig",
                str(cp.kubeconfig),
                "--namespaced",
                "--managed-namespace",
                NS,
                "--configmap",
                "workflow-controller-configmap",
                "--executor-image",
                f"quay.io/argoproj/argoexec:v{ARGO_VERSION}",
                "--loglevel",
                "warn",
            ],
            env=env,
            stdout=(tmp / f"workflow-controller-{requeue}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )

    def phases(custom: client.CustomObjectsApi) -> dict[str, str]:
        items = custom.list_namespaced_custom_object(ARGO_GROUP, ARGO_API, NS, "workflows")["items"]
        return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}

    return Controller(
        name=f"argo (requeue {requeue})",
        start=start,
        create=lambda custom, name: custom.create_namespaced_custom_object(
            ARGO_GROUP, ARGO_API, NS, "workflows", argo_workflow(name, shape)
        ),
        phases=phases,
        terminal=frozenset({"Succeeded", "Failed", "Error"}),
        run_of=lambda pod: (pod.metadata.labels or {}).get(ARGO_WF_LABEL),
        setup=setup,
    )


# ---- report ----------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def report(results: Sequence[Result], shape: DagShape, args: argparse.Namespace) -> None:
    print(
        f"DAG: {PIPELINE}, {len(shape.stages)} stages + finally {list(shape.finally_)} = "
        f"{shape.pods_per_run} Pods per run (left out, not Pods: {list(shape.dropped)}); "
        "Pods complete at once and nothing runs in them, so this measures Pod creation and "
        "the controllers' bookkeeping (Argo's argoexec cannot run on the node stand-in)"
    )
    rows: list[tuple[str, Callable[[Result], float], str]] = [
        ("creation -> first Pod p50", lambda r: statistics.median(r.latencies_ms), "ms"),
        ("creation -> first Pod p95", lambda r: pct(r.latencies_ms, 0.95), "ms"),
        (f"{args.runs} runs: create calls done", lambda r: r.created_s, "s"),
        (f"{args.runs} runs: all Pods created", lambda r: r.pods_s, "s"),
        (f"{args.runs} runs: all terminal", lambda r: r.terminal_s, "s"),
        ("controller peak RSS (VmHWM)", lambda r: r.rss_mib, "MiB"),
        ("controller CPU during load", lambda r: r.cpu_s, "s"),
        ("kube-apiserver CPU during load", lambda r: r.apiserver_cpu_s, "s"),
        ("kube-controller-manager CPU", lambda r: r.kcm_cpu_s, "s"),
    ]
    base, others = results[0], results[1:]
    ratios = base.name == "smepulse-operator" and others
    head = f"{'':36}" + "".join(f"{r.name:>24}" for r in results)
    if ratios:
        head += "".join(f"{'op / ' + r.name:>30}" for r in others)
    print(head)
    for label, get, unit in rows:
        values = [get(r) for r in results]
        line = f"{label:36}" + "".join(f"{v:>19.1f} {unit:<4}" for v in values)
        if ratios:
            line += "".join(f"{values[0] / v if v else float('nan'):>29.2f}x" for v in values[1:])
        print(line)
    for r in results:
        if r.job_latencies_ms:
            print(
                f"{r.name}: creation -> first Job p50/p95 "
                f"{statistics.median(r.job_latencies_ms):.1f}/{pct(r.job_latencies_ms, 0.95):.1f} ms"
                " (the rest of its first-Pod time is the Job controller's)"
            )
        print(
            f"{r.name}: latency runs {len(r.latencies_ms)}, Pods seen for the {args.runs} runs "
            f"{r.pods_seen}/{args.runs * shape.pods_per_run}, not terminal {r.not_terminal}, "
            f"not Succeeded {r.not_succeeded}, exit code after SIGTERM {r.exit_code}; "
            f"load average before/after its load: {' / '.join(r.load)}"
        )
    print(f"load average at the end: {loadavg()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="concurrent runs (default 100)")
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=900, help="per drain, seconds")
    parser.add_argument(
        "--argo-requeue",
        default="10s,1s",
        help="Argo DEFAULT_REQUEUE_TIME values, one controller run each (10s is Argo's default; "
        "1s the lowest its source calls safe)",
    )
    parser.add_argument(
        "--only", choices=("operator", "argo"), help="measure one controller (for debugging)"
    )
    parser.add_argument(
        "--kcm-qps",
        type=float,
        default=0,
        help="kube-controller-manager --kube-api-qps for both controllers' control planes "
        "(burst 1.5x; default: its own default, 20 QPS / burst 30)",
    )
    args = parser.parse_args()
    shape = dag_shape(load_catalog().pipeline(PIPELINE))
    controllers = []
    if args.only != "argo":
        controllers.append(operator_controller(shape))
    if args.only != "operator":
        tools = argo_dir()
        controllers += [argo_controller(shape, tools, r) for r in args.argo_requeue.split(",")]
    print(f"load average at the start: {loadavg()} ({os.cpu_count()} CPUs)")
    print(
        "kube-controller-manager client rate limit: "
        + (f"{args.kcm_qps:g} QPS" if args.kcm_qps else "its default (20 QPS, burst 30)")
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-argo-") as tmp:
        for ctl in controllers:
            print(f"measuring {ctl.name} ...", flush=True)
            results.append(measure(ctl, shape, args, Path(tmp)))
    report(results, shape, args)
    ok = all(r.not_terminal == 0 and r.not_succeeded == 0 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the operator on a real control plane (tests/kube): latency and drain.

1. Latency from PipelineRun creation to its first Job: runs are created one at a time and
   the first Job's ADDED event is timed from a watch (p50, p95 over ``--latency-runs``).
2. Drain: ``--runs`` (100) runs created at once; time until every run is terminal, and the
   operator's peak memory (VmHWM of the ``smepulse operator`` subprocess, read from /proc),
   run as its image runs it (benchmarks/venvs.py: the ``operator`` group only).

Stages run on the node stand-in as the scripted ``fake_stage.py`` (no data stack), so the
figures measure the operator, the API server and the Job controller, not the stages. Each run
is ml-training limited to ``validate-models``: two Jobs (the stage and the finally notify).

    python benchmarks/bench_operator.py [--runs 100] [--latency-runs 30] [--max-pods 8]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.venvs import operator_command, operator_env  # noqa: E402
from tests.kube.controlplane import running_control_plane  # noqa: E402
from tests.kube.node import NodeStandIn  # noqa: E402

GROUP, VERSION, PLURAL = "smepulse.io", "v1alpha1", "pipelineruns"
CRD = REPO / "charts/smepulse/files/crds/pipelineruns.smepulse.io.yaml"
FAKE_STAGE = REPO / "tests/integration/operator/fake_stage.py"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PipelineRun",
        "metadata": {"name": name},
        "spec": {"pipeline": "ml-training", "stages": ["validate-models"]},
    }


def first_jobs(
    api: client.ApiClient, ns: str, seen: dict[str, float], stop: threading.Event
) -> None:
    """Record when the first Job of each run appears (watch ADDED events)."""
    batch = client.BatchV1Api(api)
    while not stop.is_set():
        w = watch.Watch()
        for ev in w.stream(
            batch.list_namespaced_job, ns, label_selector="smepulse.io/run", timeout_seconds=5
        ):
            run = ev["object"].metadata.labels["smepulse.io/run"]
            seen.setdefault(run, time.monotonic())
            if stop.is_set():
                w.stop()
                break


def phases(custom: client.CustomObjectsApi, ns: str) -> dict[str, str]:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--max-pods", type=int, default=8)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp,
        running_control_plane(workdir=Path(tmp) / "kube") as cp,
    ):
        fake_bin = Path(tmp) / "bin"
        fake_bin.mkdir()
        (fake_bin / "smepulse").write_text(
            f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = 'smepulse'\n"
            f"runpy.run_path({str(FAKE_STAGE)!r}, run_name='__main__')\n"
        )
        (fake_bin / "smepulse").chmod(0o755)
        cp.kubectl("apply", "-f", str(CRD))
        cp.kubectl("wait", "--for=condition=Established", "crd/pipelineruns.smepulse.io")
        api = config.new_client_from_config(config_file=str(cp.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        ns = "bench"
        core.create_namespace({"metadata": {"name": ns}})
        core.create_namespaced_config_map(
            ns,
            {
                "metadata": {"name": "smepulse-config"},
                "data": {"PATH": f"{fake_bin}:{Path(sys.executable).parent}:/usr/bin:/bin"},
            },
        )
        node = NodeStandIn(
            cp.kubeconfig, log_dir=Path(tmp) / "pods", max_pods=args.max_pods
        ).start()
        env = operator_env(
            {
                "SMEPULSE_KUBECONFIG": str(cp.kubeconfig),
                "SMEPULSE_LOG_FORMAT": "json",
                "SMEPULSE_LOG_LEVEL": "WARNING",
                "SMEPULSE_OPERATOR_METRICS_PORT": "18900",
                "SMEPULSE_OPERATOR_HEALTH_PORT": "18901",
            }
        )
        log = (Path(tmp) / "operator.log").open("wb")
        op = subprocess.Popen(
            [*operator_command(), "-n", ns],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=first_jobs, args=(api, ns, seen, stop), daemon=True)
        watcher.start()
        try:
            time.sleep(3)  # operator startup
            latencies = []
            for i in range(args.latency_runs):
                name = f"lat-{i:03d}"
                t0 = time.monotonic()
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, run_body(name))
                while name not in seen and time.monotonic() - t0 < 30:
                    time.sleep(0.005)
                latencies.append(seen.get(name, float("inf")) - t0)
            t0 = time.monotonic()
            for i in range(args.runs):
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, run_body(f"drain-{i:03d}")
                )
            created = time.monotonic() - t0
            while True:
                current = phases(custom, ns)
                pending = [
                    n for n, p in current.items() if p not in ("Succeeded", "Failed", "Cancelled")
                ]
                if not pending or time.monotonic() - t0 > 1800:
                    break
                time.sleep(1)
            drain = time.monotonic() - t0
            rss = peak_rss_mib(op.pid)
            failed = [n for n, p in current.items() if p != "Succeeded"]
        finally:
            stop.set()
            op.terminate()
            op.wait(timeout=60)
            node.stop()
        lat_ms = sorted(x * 1000 for x in latencies)
        p95 = lat_ms[min(len(lat_ms) - 1, round(0.95 * (len(lat_ms) - 1)))]
        print(
            f"creation -> first Job latency over {len(lat_ms)} runs: "
            f"p50 {statistics.median(lat_ms):.0f} ms, p95 {p95:.0f} ms, max {lat_ms[-1]:.0f} ms"
        )
        print(
            f"{args.runs} concurrent runs (2 Jobs each, node stand-in max {args.max_pods} pods): "
            f"created in {created:.1f} s, all terminal after {drain:.1f} s"
            f"{'' if not pending else f' ({len(pending)} NOT finished)'}"
        )
        print(
            f"runs not Succeeded: {len(failed)}; operator exit code {op.returncode}; "
            f"operator peak RSS {rss:.0f} MiB"
        )
    return 0 if not pending and not failed else 1


if __name__ == "__main__":
    sys.exit(main())

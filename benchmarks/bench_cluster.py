#!/usr/bin/env python3
"""daily-etl on the cluster path (a real node, the chart's default data stack) beside the
embedded default, on the same machine, in one run (issue 18 point 4).

    sudo python benchmarks/bench_cluster.py                      # scale 1 and scale 10
    sudo python benchmarks/bench_cluster.py --scale 1 --keep     # keep the work folder

What it does, once: builds the operator and stages images from a clean clone of HEAD and the
data-stack test images (tests/images/), starts a real node (tests/kube/realnode.py, in a
network namespace of its own), installs the chart with its default values (MinIO, PostgreSQL,
Trino coordinator + 1 worker, MLflow, Redis; Trino's CPU requests at 250m so the stages fit
the 2-CPU node, as in tests/image/test_cluster_pipelines.py) on local volumes, and runs
external-sync (the World Bank API is out of reach: its bundled snapshot).

Per scale: ``smepulse generate-data`` into a local folder (2 years, logical date DAY), that
bronze uploaded to MinIO as is (through ``kubectl port-forward``), then

- the cluster: a PipelineRun of daily-etl for DAY with every stage but the trigger of
  ml-predict (``spec.stages``; predict is not daily-etl's own work), each stage a Job and a Pod
  of the stages image, dbt on Trino writing Iceberg tables to MinIO;
- the embedded default on this machine, after it (not alongside: the two would share the
  2 CPUs): ``smepulse run daily-etl --no-trigger`` on the same bronze (DuckDB, the runner's
  warm dbt worker), after an untimed external-sync.

Printed per scale: wall time of each; per stage on the cluster the Pod start overhead (Job
created -> container started: scheduling, sandbox, image already on the node, Python start is
*not* in it) and the stage's own time (container started -> finished) beside the embedded
stage time; and the peak working-set memory of Trino (coordinator, worker) and MinIO during
the cluster run, sampled every 2 s from the kubelet's /stats/summary through the API server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
import yaml

from smepulse.catalog import load_catalog
from smepulse.runner import history as runs_store
from tests.image.conftest import TARGETS, Docker, build
from tests.image.pipelines import local_storage, port_forward, smepulse
from tests.images.build import DEBIAN_BASE, build_data_images, chart_set_args
from tests.kube.realnode import RealCluster, docker_env, find_node_bin_dir
from tests.kube.tools import find_bin_dir
from tests.kube.wait import wait_for

REPO = Path(__file__).resolve().parents[1]
DAY = "2025-06-30"
NS = "bench"
RELEASE = "smepulse"
CLASS = "smepulse-bench-local"
OFFLINE = {"SMEPULSE_WORLDBANK_BASE_URL": "http://127.0.0.1:9", "SMEPULSE_HTTP_RETRIES": "0"}


def _t(stamp: str | None) -> float:
    assert stamp, "missing timestamp"
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _images(work: Path) -> tuple[dict[str, str], dict[str, Any]]:
    engine = docker_env()
    docker = Docker(engine["SMEPULSE_DOCKER_BIN"], {**os.environ, **engine, "DOCKER_BUILDKIT": "0"})
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True)
    bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(bundle).is_file():
        shutil.copyfile(bundle, clone / "build-ca.pem")
    run = uuid.uuid4().hex[:8]
    tags = {t: f"smepulse-bench/{t}:{run}" for t in TARGETS}
    base = engine.get("SMEPULSE_BASE_IMAGE") or os.environ.get("SMEPULSE_BASE_IMAGE") or ""
    if not base:
        raise SystemExit('no base image: eval "$(bash scripts/docker-tools.sh)" first')
    for target in TARGETS:
        seconds = build(docker, clone, target, tags[target], base)
        print(f"built {target} in {seconds:.0f} s", flush=True)
    if docker.run("image", "inspect", DEBIAN_BASE, check=False).returncode != 0:
        raise SystemExit(f"base image {DEBIAN_BASE} missing: run scripts/docker-tools.sh")
    data = build_data_images(docker.bin, docker.env, log=lambda m: None)
    return tags, data


class MemorySampler:
    """Peak working set per Pod name prefix, from the kubelet's summary API every 2 s."""

    def __init__(self, cluster: RealCluster, prefixes: dict[str, str]) -> None:
        self.cluster, self.prefixes = cluster, prefixes
        self.peak: dict[str, int] = dict.fromkeys(prefixes, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        path = f"/api/v1/nodes/{self.cluster.node_name}/proxy/stats/summary"
        while not self._stop.wait(2.0):
            done = self.cluster.kubectl("get", "--raw", path, check=False)
            if done.returncode != 0:
                continue
            for pod in json.loads(done.stdout).get("pods", []):
                name = pod["podRef"]["name"]
                used = int((pod.get("memory") or {}).get("workingSetBytes") or 0)
                for label, prefix in self.prefixes.items():
                    if name.startswith(prefix):
                        self.peak[label] = max(self.peak[label], used)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _s3(cluster: RealCluster, port: int) -> Any:
    import base64

    data = cluster.kubectl_json("get", "secret", "-n", NS, f"{RELEASE}-secrets")["data"]
    key = base64.b64decode(data["SMEPULSE_S3_ACCESS_KEY_ID"]).decode()
    secret = base64.b64decode(data["SMEPULSE_S3_SECRET_ACCESS_KEY"]).decode()
    return boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
    )  # fmt: skip


def _load_bronze(cluster: RealCluster, bronze: Path) -> int:
    with port_forward(cluster, NS, f"svc/{RELEASE}-minio", 9000) as port:
        s3 = _s3(cluster, port)
        # Only the generator's tables: external-sync's own bronze (ext_provinces, ...) stays.
        old = [
            {"Key": o["Key"]}
            for table in sorted(p.name for p in bronze.iterdir() if p.is_dir())
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket="smepulse", Prefix=f"bronze/{table}/"
            )
            for o in page.get("Contents", [])
        ]
        for i in range(0, len(old), 1000):
            s3.delete_objects(Bucket="smepulse", Delete={"Objects": old[i : i + 1000]})
        files = sorted(bronze.rglob("*.parquet"))
        for path in files:
            s3.upload_file(str(path), "smepulse", f"bronze/{path.relative_to(bronze).as_posix()}")
        return len(files)


def _run_on_cluster(
    cluster: RealCluster, name: str, pipeline: str, stages: list[str] | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"pipeline": pipeline, "logicalDate": DAY}
    if stages:
        spec["stages"] = stages
    doc = {
        "apiVersion": "smepulse.io/v1alpha1", "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": NS}, "spec": spec,
    }  # fmt: skip
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(doc))

    def done() -> dict[str, Any] | None:
        run = cluster.kubectl_json("get", "pipelinerun", "-n", NS, name)
        phase = (run.get("status") or {}).get("phase")
        return run if phase in ("Succeeded", "Failed", "Cancelled", "TimedOut") else None

    run = wait_for(done, timeout=3600, interval=2, what=f"run {name}")
    assert run is not None
    if run["status"]["phase"] != "Succeeded":
        raise SystemExit(f"{name}: {json.dumps(run['status'], indent=1)[-3000:]}")
    return run


def _stage_times(cluster: RealCluster, run: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Per stage: (Job created -> container started, container started -> finished), s."""
    name = run["metadata"]["name"]
    jobs = cluster.kubectl_json("get", "jobs", "-n", NS, "-l", f"smepulse.io/run={name}")["items"]
    pods = cluster.kubectl_json("get", "pods", "-n", NS, "-l", f"smepulse.io/run={name}")["items"]
    by_job = {p["metadata"]["labels"].get("job-name"): p for p in pods}
    out: dict[str, tuple[float, float]] = {}
    for job in jobs:
        stage = job["metadata"]["labels"].get("smepulse.io/stage", job["metadata"]["name"])
        pod = by_job.get(job["metadata"]["name"])
        if pod is None:
            continue
        term = pod["status"]["containerStatuses"][0]["state"].get("terminated") or {}
        created = _t(job["metadata"]["creationTimestamp"])
        out[stage] = (_t(term.get("startedAt")) - created,
                      _t(term.get("finishedAt")) - _t(term.get("startedAt")))  # fmt: skip
    return out


def _local(home: Path) -> tuple[float, dict[str, float]]:
    env = {"SMEPULSE_HOME": str(home), **OFFLINE}
    smepulse("run", "external-sync", "--logical-date", DAY, env=env, cwd=home)
    started = time.monotonic()
    smepulse("run", "daily-etl", "--logical-date", DAY, "--no-trigger", env=env, cwd=home,
             timeout=3600)  # fmt: skip
    wall = time.monotonic() - started
    record = runs_store.runs_for(home / "runs", "daily-etl", dt.date.fromisoformat(DAY))[-1]
    if record.status != "Succeeded":
        raise SystemExit(f"{record.run_id}: {record.status}: {record.failure_message}")
    stages = {s.name: s.duration_seconds for s in record.stages if s.duration_seconds is not None}
    return wall, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, action="append", help="default: 1 and 10")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    scales = args.scale or [1.0, 10.0]
    if os.geteuid() != 0:
        raise SystemExit("a real node needs root")
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    cluster = RealCluster(
        work / "node", bin_dir=find_bin_dir(), node_bin_dir=find_node_bin_dir(), docker=docker_env()
    )
    daily = [s.name for s in load_catalog().pipeline("daily-etl").stages if s.kind != "trigger"]
    results: list[dict[str, Any]] = []
    try:
        tags, data = _images(work)
        started = time.monotonic()
        cluster.start()
        print(f"node Ready in {time.monotonic() - started:.0f} s", flush=True)
        cluster.import_images(*tags.values(), *(i.ref for i in data.values()))
        cluster.kubectl("create", "namespace", NS)
        storage = local_storage(cluster, work / "volumes", CLASS, ("20Gi", "8Gi"))
        cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                "items": storage}))  # fmt: skip
        assert cluster.control_plane is not None
        repository, tag = tags["operator"].rsplit(":", 1)
        started = time.monotonic()
        cluster.control_plane.helm(
            "install", RELEASE, str(REPO / "charts" / "smepulse"), "-n", NS,
            "--set", f"image.operator.repository={repository}",
            "--set", f"image.stages.repository={tags['stages'].rsplit(':', 1)[0]}",
            "--set-string", f"image.tag={tag}", *chart_set_args(data),
            "--set", "trino.coordinator.resources.requests.cpu=250m",
            "--set", "trino.worker.resources.requests.cpu=250m",
            "--wait", "--timeout", "5m", timeout=420,
        )  # fmt: skip
        print(f"helm install --wait: {time.monotonic() - started:.0f} s", flush=True)
        _run_on_cluster(cluster, "external-sync-bench", "external-sync", None)
        for scale in scales:
            home = work / f"scale-{scale:g}"
            smepulse("generate-data", "--end-date", DAY, "--scale", str(scale),
                     env={"SMEPULSE_HOME": str(home)}, cwd=work, timeout=3600)  # fmt: skip
            files = _load_bronze(cluster, home / "bronze")
            print(f"scale {scale:g}: {files} bronze files in MinIO", flush=True)
            prefixes = {"trino coordinator": f"{RELEASE}-trino-coordinator",
                        "trino worker": f"{RELEASE}-trino-worker", "minio": f"{RELEASE}-minio"}  # fmt: skip
            with MemorySampler(cluster, prefixes) as memory:
                run = _run_on_cluster(cluster, f"daily-etl-bench-{scale:g}".replace(".", "-"),
                                      "daily-etl", daily)  # fmt: skip
            wall = _t(run["status"]["completionTime"]) - _t(run["metadata"]["creationTimestamp"])
            stages = _stage_times(cluster, run)
            local_wall, local_stages = _local(home)
            results.append({"scale": scale, "wall": wall, "stages": stages, "memory": memory.peak,
                            "local_wall": local_wall, "local_stages": local_stages})  # fmt: skip
            _print(results[-1], daily)
    finally:
        cluster.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nsummary: scale, cluster wall, embedded wall, ratio, Pod start overhead sum, "
          "stage work sum, Trino coord/worker peak, MinIO peak")  # fmt: skip
    for r in results:
        over = sum(v[0] for v in r["stages"].values())
        work_s = sum(v[1] for v in r["stages"].values())
        mib = {k: v / 2**20 for k, v in r["memory"].items()}
        print(f"  {r['scale']:g}: {r['wall']:.0f} s, {r['local_wall']:.0f} s, "
              f"{r['wall'] / r['local_wall']:.1f}x, {over:.0f} s, {work_s:.0f} s, "
              f"{mib['trino coordinator']:.0f}/{mib['trino worker']:.0f} MiB, "
              f"{mib['minio']:.0f} MiB")  # fmt: skip
    return 0


def _print(r: dict[str, Any], order: list[str]) -> None:
    print(f"\nscale {r['scale']:g}: daily-etl on the cluster {r['wall']:.0f} s "
          f"(run created -> completed), embedded {r['local_wall']:.0f} s")  # fmt: skip
    print(f"  {'stage':<18} {'Pod start':>9} {'cluster':>8} {'embedded':>9}")
    for stage in [*order, "notify"]:
        if stage in r["stages"]:
            start, work_s = r["stages"][stage]
            local = r["local_stages"].get(stage)
            shown = f"{local:.1f}" if local is not None else "-"
            print(f"  {stage:<18} {start:>8.1f}s {work_s:>7.1f}s {shown:>8}s")
    print("  peak working set: " + ", ".join(
        f"{k} {v / 2**20:.0f} MiB" for k, v in r["memory"].items()))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())

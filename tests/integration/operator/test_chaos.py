"""Chaos: the operator (a real ``smepulse operator`` subprocess) is killed with SIGKILL at random
moments while 50 runs are in flight, and stage Pods are deleted under running stages (at most
one per run). Afterwards every run must be terminal, with the outcome its spec asks for, no
stage may have more Jobs than attempts, and only a stage whose Pod was killed may have needed
a second attempt.

The node stand-in runs the scripted stages (``fake_stage.py``); odd runs fail
``refresh-metabase`` on purpose (params.fakeFail), so retries happen under fire too.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from kubernetes import client

from smepulse.catalog import load_catalog
from tests.integration.operator.conftest import TERMINAL, Runs, StageEnv, _ready
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

RUNS = 50
PIPELINE = load_catalog().pipeline("ml-predict")


def start_operator(env: dict[str, str], namespace: str, log: Path) -> subprocess.Popen[bytes]:
    smepulse = Path(sys.executable).with_name("smepulse")
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(smepulse), "operator", "--namespace", namespace],
            env={**os.environ, **env, "SMEPULSE_LOG_FORMAT": "json"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.stage_env(FAKE_SLEEP="*=1")
def test_sigkill_at_random_moments_never_duplicates_or_loses_a_run(
    operator_env: dict[str, str],
    kube_namespace: str,
    runs: Runs,
    stage_env: StageEnv,
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("SMEPULSE_CHAOS_SEED", str(time.time_ns() % 10_000)))
    rng = random.Random(seed)
    log = tmp_path / "operator.log"
    names = []
    for i in range(RUNS):
        day = dt.date(2025, 2, 1) + dt.timedelta(days=i)
        name = f"ml-predict-{day:%Y%m%d}"
        params = {"fakeFail": "refresh-metabase"} if i % 2 else {}
        runs.create(
            name,
            pipeline="ml-predict",
            logicalDate=day.isoformat(),
            retries={"limit": 1, "backoffSeconds": 1},
            params=params,
        )
        names.append(name)

    def unfinished() -> list[str]:
        return [n for n in names if runs.status(n).get("phase") not in TERMINAL]

    core = client.CoreV1Api(runs.api)
    pod_kills: set[tuple[str, str]] = set()  # (run, stage) whose running Pod was deleted

    def kill_a_pod() -> None:
        """Delete one live (Pending or Running) stage Pod of a run that has not lost one yet."""
        pods = core.list_namespaced_pod(runs.ns, label_selector="smepulse.io/run").items
        victims = [
            p for p in pods
            if p.status.phase in ("Pending", "Running") and p.metadata.deletion_timestamp is None
            and p.metadata.labels["smepulse.io/run"] not in {r for r, _ in pod_kills}
        ]  # fmt: skip
        if victims:
            pod = rng.choice(victims)
            labels = pod.metadata.labels
            pod_kills.add((labels["smepulse.io/run"], labels["smepulse.io/stage"]))
            core.delete_namespaced_pod(pod.metadata.name, runs.ns, grace_period_seconds=0)

    kills, deadline = 0, time.monotonic() + 180
    while unfinished() and time.monotonic() < deadline and kills < 15:
        proc = start_operator(operator_env, kube_namespace, log)
        time.sleep(rng.uniform(0.5, 5.0))  # startup, mid-reconcile, mid-patch: anywhere
        if rng.random() < 0.7:
            kill_a_pod()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    # A last operator, never SIGKILLed, finishes what is left while stage Pods still die
    # under it now and then; SIGTERM must end it cleanly.
    proc = start_operator(operator_env, kube_namespace, log)
    try:
        # Ready first: a SIGTERM before kopf installs its handlers would just kill it.
        wait_for(lambda: _ready(operator_env), timeout=60, what="the last operator to start")

        def settled() -> bool:
            if len(pod_kills) < 15:
                kill_a_pod()
            return not unfinished()

        wait_for(
            settled,
            timeout=240,
            interval=1,
            what=f"all runs terminal (seed {seed}, {kills} kills)",
            describe=lambda: str(unfinished()),
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-5000:]
    assert kills >= 5, f"only {kills} kills: the runs finished too fast to test anything"
    assert len(pod_kills) >= 5, f"only {len(pod_kills)} stage Pods killed (seed {seed})"

    limit = 2  # spec.retries.limit 1 -> at most 2 attempts per main stage
    for i, name in enumerate(names):
        killed = {stage for run, stage in pod_kills if run == name}
        status = runs.status(name)
        per_stage = Counter(j.metadata.labels["smepulse.io/stage"] for j in runs.jobs(name))
        recorded = {s["name"]: s for s in status["stages"]}
        for stage, count in per_stage.items():
            max_attempts = (
                limit if stage != "notify" else 1 + PIPELINE.stage("notify").retries.limit
            )
            assert count <= max_attempts, f"{name}/{stage}: {count} Jobs (seed {seed})"
            assert count == recorded[stage]["attempts"], (name, stage, recorded[stage], seed)
        if i % 2:
            assert status["phase"] == "Failed" and status["failedStage"] == "refresh-metabase", name
            assert per_stage["refresh-metabase"] == 2 and "invalidate-cache" not in per_stage
        else:
            assert status["phase"] == "Succeeded", (name, status.get("message"), seed)
            again = {s for s, n in per_stage.items() if n > 1}
            assert again <= killed, (name, per_stage, killed, seed)
        assert per_stage["notify"] == 1 or "notify" in killed
    print(
        f"chaos: seed {seed}, {kills} operator SIGKILLs, {len(pod_kills)} stage Pods killed, "
        f"{RUNS} runs all terminal"
    )

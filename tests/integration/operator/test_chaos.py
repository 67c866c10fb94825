"""Chaos: the operator (a real ``smepulse operator`` subprocess) is killed with SIGKILL at random
moments while 20 runs are in flight. Afterwards every run must be terminal, with the outcome
its spec asks for, and no stage may have more Jobs than attempts.

The node stand-in runs the scripted stages (``fake_stage.py``); odd runs fail
``refresh-metabase`` on purpose (params.fakeFail), so retries happen under fire too.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from smepulse.catalog import load_catalog
from tests.integration.operator.conftest import TERMINAL, Runs, StageEnv, _ready
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

RUNS = 20
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
        name = f"ml-predict-202502{i + 1:02d}"
        params = {"fakeFail": "refresh-metabase"} if i % 2 else {}
        runs.create(
            name,
            pipeline="ml-predict",
            logicalDate=f"2025-02-{i + 1:02d}",
            retries={"limit": 1, "backoffSeconds": 1},
            params=params,
        )
        names.append(name)

    def unfinished() -> list[str]:
        return [n for n in names if runs.status(n).get("phase") not in TERMINAL]

    kills, deadline = 0, time.monotonic() + 420
    while unfinished() and time.monotonic() < deadline and kills < 25:
        proc = start_operator(operator_env, kube_namespace, log)
        time.sleep(rng.uniform(0.5, 5.0))  # startup, mid-reconcile, mid-patch: anywhere
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    # A last, undisturbed operator finishes what is left; SIGTERM must end it cleanly.
    proc = start_operator(operator_env, kube_namespace, log)
    try:
        # Ready first: a SIGTERM before kopf installs its handlers would just kill it.
        wait_for(lambda: _ready(operator_env), timeout=60, what="the last operator to start")
        wait_for(
            lambda: not unfinished(),
            timeout=240,
            interval=1,
            what=f"all runs terminal (seed {seed}, {kills} kills)",
            describe=lambda: str(unfinished()),
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-5000:]
    assert kills >= 5, f"only {kills} kills: the runs finished too fast to test anything"

    limit = 2  # spec.retries.limit 1 -> at most 2 attempts per main stage
    for i, name in enumerate(names):
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
            assert set(per_stage.values()) == {1}, (name, per_stage, seed)
        assert per_stage["notify"] == 1
    print(f"chaos: seed {seed}, {kills} SIGKILLs, {RUNS} runs all terminal")

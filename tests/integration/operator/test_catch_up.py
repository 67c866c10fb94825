"""Catch-up against the real API server: after an outage, ``smepulse submit daily-etl
--catch-up`` (what the chart's daily CronJob runs) submits the missed days, which the real
operator then runs in date order, each exactly once, however often the CronJob fires.

Stages are the scripted ``fake_stage.py`` run by the node stand-in (real Jobs and Pods).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.operator.conftest import Operator, Runs, StageEnv
from tests.kube.controlplane import ControlPlane

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def submit(
    kube_cluster: ControlPlane, namespace: str, *args: str
) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("smepulse"))
    env = {**os.environ, "SMEPULSE_KUBECONFIG": str(kube_cluster.kubeconfig)}
    return subprocess.run(
        [exe, "submit", "daily-etl", "-n", namespace, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_three_missed_days_run_in_order_each_exactly_once(
    operator: Operator,
    runs: Runs,
    stage_env: StageEnv,
    kube_cluster: ControlPlane,
    kube_namespace: str,
) -> None:
    # 1 January ran and succeeded.
    first = submit(kube_cluster, kube_namespace, "--catch-up", "-d", "2025-01-01")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [f"pipelinerun {kube_namespace}/daily-etl-20250101 created"]
    with operator():
        assert runs.wait_phase("daily-etl-20250101", timeout=300)["phase"] == "Succeeded"

    # Outage: no operator, no CronJob firing on 2, 3 and 4 January. On the 5th the CronJob
    # fires, and fires again (a retried submission Pod): the second finds everything there.
    catch_up = submit(kube_cluster, kube_namespace, "--catch-up", "-d", "2025-01-05")
    again = submit(kube_cluster, kube_namespace, "--catch-up", "-d", "2025-01-05")
    assert (catch_up.returncode, again.returncode) == (0, 0), catch_up.stderr + again.stderr
    expected = [
        "daily-etl-20250102",
        "daily-etl-20250103",
        "daily-etl-20250104",
        "daily-etl-20250105",
    ]
    assert catch_up.stdout.splitlines() == [
        f"pipelinerun {kube_namespace}/{name} created" for name in expected
    ]
    assert again.stdout.splitlines() == [
        f"pipelinerun {kube_namespace}/{name} already exists: nothing to do" for name in expected
    ]
    for name in expected:
        run = runs.get(name)
        assert run is not None and run["spec"]["concurrencyPolicy"] == "Queue"

    with operator():
        statuses = [runs.wait_phase(name, timeout=600) for name in expected]
    assert [s["phase"] for s in statuses] == ["Succeeded"] * 4
    # In date order: each day started only after the previous one had finished (Queue).
    for earlier, later in itertools.pairwise(statuses):
        assert dt.datetime.fromisoformat(later["startTime"]) >= dt.datetime.fromisoformat(
            earlier["completionTime"]
        )
    # Each day exactly once: one run per date, and its first stage ran once.
    daily = sorted(
        r["metadata"]["name"] for r in runs.list() if r["spec"]["pipeline"] == "daily-etl"
    )
    assert daily == ["daily-etl-20250101", *expected]
    verify = [c["run"] for c in stage_env.calls() if c["stage"] == "verify-infra"]
    assert sorted(verify) == daily
    assert [c["date"] for c in stage_env.calls() if c["stage"] == "verify-infra"] == [
        "2025-01-01",
        "2025-01-02",
        "2025-01-03",
        "2025-01-04",
        "2025-01-05",
    ]


def test_an_outage_longer_than_the_bound_leaves_the_older_days_to_a_backfill(
    runs: Runs, kube_cluster: ControlPlane, kube_namespace: str, pipelinerun_crd: object
) -> None:
    # A succeeded run of 1 January, as the operator would have left it.
    runs.create("daily-etl-20250101", pipeline="daily-etl", logicalDate="2025-01-01")
    runs.custom.patch_namespaced_custom_object_status(
        "smepulse.io",
        "v1alpha1",
        kube_namespace,
        "pipelineruns",
        "daily-etl-20250101",
        {"status": {"phase": "Succeeded"}},
    )
    out = submit(
        kube_cluster, kube_namespace, "--catch-up", "-d", "2025-01-10", "--max-catch-up", "3"
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == (
        "catch-up of daily-etl: 6 missed day(s) 2025-01-02..2025-01-07 are beyond the bound of "
        "3 run(s); run them with `smepulse submit daily-etl -d <date>` for each"
    )
    assert sorted(r["metadata"]["name"] for r in runs.list()) == [
        "daily-etl-20250101",
        "daily-etl-20250108",
        "daily-etl-20250109",
        "daily-etl-20250110",
    ]

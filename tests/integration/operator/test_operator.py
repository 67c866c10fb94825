"""The operator against the real API server: the real Job controller runs the stage Jobs and
the node stand-in runs their Pods with the scripted ``smepulse`` of ``fake_stage.py``.

Every test runs its own operator (in-process, KopfRunner) on its own namespace; the fixture
asserts afterwards that it exited 0 with no traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from smepulse.catalog import load_catalog
from tests.integration.operator.conftest import Operator, Runs, StageEnv, settle
from tests.kube.controlplane import ControlPlane
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CATALOG = load_catalog()


def test_daily_etl_succeeds_in_dependency_order_and_triggers_one_ml_predict(
    operator: Operator,
    runs: Runs,
    stage_env: StageEnv,
    kube_cluster: ControlPlane,
    kube_namespace: str,
) -> None:
    with operator():
        runs.create(
            "daily-etl-20250101",
            pipeline="daily-etl",
            logicalDate="2025-01-01",
            params={"tenant": "acme"},
        )
        # kubectl wait returns once the Succeeded condition is True (what CI and Argo CD rely on).
        kube_cluster.kubectl(
            "-n",
            kube_namespace,
            "wait",
            "--for=condition=Succeeded",
            "pipelinerun/daily-etl-20250101",
            "--timeout=180s",
            timeout=200,
        )
        status = runs.status("daily-etl-20250101")
        assert status["phase"] == "Succeeded" and status["observedGeneration"] == 1
        assert runs.condition("daily-etl-20250101")["reason"] == "Succeeded"
        jobs = {j.metadata.labels["smepulse.io/stage"]: j for j in runs.jobs("daily-etl-20250101")}
        pipeline = CATALOG.pipeline("daily-etl")
        for stage in pipeline.stages:
            if stage.kind == "trigger":
                assert stage.name not in jobs  # a trigger creates a run, not a Job
                continue
            job = jobs[stage.name]
            for need in stage.needs:
                if need in jobs:  # created only after every need completed
                    assert job.metadata.creation_timestamp >= jobs[need].status.completion_time
            assert job.spec.backoff_limit == 0
            assert job.metadata.owner_references[0].kind == "PipelineRun"
            assert job.metadata.owner_references[0].controller is True
        assert (
            jobs["notify"].metadata.creation_timestamp
            >= jobs["dbt-ml-scores"].status.completion_time
        )
        # The trigger stage created exactly one ml-predict run for the same date and params.
        children = [r for r in runs.list() if r["spec"]["pipeline"] == "ml-predict"]
        assert [c["metadata"]["name"] for c in children] == ["ml-predict-20250101"]
        assert children[0]["spec"]["logicalDate"] == "2025-01-01"
        assert status["triggered"][0]["name"] == "ml-predict-20250101"
        runs.wait_phase("ml-predict-20250101", timeout=120)
        assert runs.status("ml-predict-20250101")["phase"] == "Succeeded"
        # Stages saw the run's settings in their environment.
        calls = [c for c in stage_env.calls() if c["run"] == "daily-etl-20250101"]
        assert {c["date"] for c in calls} == {"2025-01-01"}
        assert all('"tenant": "acme"' in c["params"] for c in calls)
        assert [c["outcome"] for c in calls if c["stage"] == "notify"] == ["Succeeded"]
        reasons = [
            r
            for _, r, _ in runs.wait_events(
                "daily-etl-20250101", "RunStarted", "RunTriggered", "RunSucceeded"
            )
        ]
        # 8 stage Jobs and notify start; the trigger succeeds without a Job (report is in ml-predict)
        assert reasons.count("StageStarted") == 9 and reasons.count("StageSucceeded") == 10
        # Printer columns.
        out = kube_cluster.kubectl("-n", kube_namespace, "get", "plr", "daily-etl-20250101").stdout
        header, row = out.splitlines()[:2]
        assert header.split() == [
            "NAME",
            "PIPELINE",
            "PHASE",
            "STAGE",
            "SUCCEEDED",
            "AGE",
            "DURATION",
        ]
        assert row.split()[1:3] == ["daily-etl", "Succeeded"] and row.split()[3] == "True"
        assert (
            kube_cluster.kubectl("get", "smepulse", "-n", kube_namespace).stdout.count(
                "ml-predict-20250101"
            )
            == 1  # this test's namespace: other tests (catch-up) leave runs of their own
        )


@pytest.mark.stage_env(FAKE_FAIL="validate-bronze")
def test_failing_stage_is_retried_then_fails_the_run_and_dependants_never_start(
    operator: Operator,
    runs: Runs,
    stage_env: StageEnv,
) -> None:
    with operator():
        runs.create(
            "daily-etl-20250102",
            pipeline="daily-etl",
            logicalDate="2025-01-02",
            retries={"limit": 1, "backoffSeconds": 1},
        )
        status = runs.wait_phase("daily-etl-20250102")
        cond = runs.condition("daily-etl-20250102")
        assert (status["phase"], cond["status"], cond["reason"]) == (
            "Failed",
            "False",
            "StageFailed",
        )
        assert status["failedStage"] == "validate-bronze"
        assert "validate-bronze failed after 2 attempt(s)" in cond["message"]
        assert runs.job_stages("daily-etl-20250102") == [
            "verify-infra",
            "validate-bronze",
            "validate-bronze",
            "notify",
        ]
        stages = {s["name"]: s for s in status["stages"]}
        assert stages["validate-bronze"]["attempts"] == 2
        assert stages["dbt-silver"]["phase"] == "Skipped"
        notify = [c for c in stage_env.calls() if c["stage"] == "notify"]
        assert [(c["outcome"], c["failed_stage"]) for c in notify] == [
            ("Failed", "validate-bronze")
        ]
        runs.wait_events(
            "daily-etl-20250102",
            "StageAttemptFailed",
            "StageRetrying",
            "StageFailed",
            "RunStageFailed",
        )


@pytest.mark.stage_env(FAKE_SLEEP="*=120,notify=0")
def test_timeout_deletes_running_jobs_and_runs_finally(
    operator: Operator,
    runs: Runs,
    stage_env: StageEnv,
) -> None:
    with operator():
        runs.create("train-timeout", pipeline="ml-training", timeoutSeconds=6)
        status = runs.wait_phase("train-timeout", timeout=90)
        assert (status["phase"], runs.condition("train-timeout")["reason"]) == (
            "Failed",
            "TimedOut",
        )
        stages = {s["name"]: s["phase"] for s in status["stages"]}
        assert stages == {
            "uc09-train": "Cancelled",
            "uc10-train": "Cancelled",
            "validate-models": "Skipped",
            "notify": "Succeeded",
        }
        assert sorted(runs.job_stages("train-timeout")) == ["notify"]  # the others were deleted
        assert [c["outcome"] for c in stage_env.calls() if c["stage"] == "notify"] == ["TimedOut"]


@pytest.mark.stage_env(FAKE_SLEEP="*=120,notify=0")
def test_cancel_deletes_running_jobs_and_ends_cancelled(
    operator: Operator,
    runs: Runs,
    stage_env: StageEnv,
) -> None:
    with operator():
        runs.create("train-cancel", pipeline="ml-training")
        wait_for(lambda: len(runs.jobs("train-cancel")) == 2, timeout=30, what="two training Jobs")
        runs.patch("train-cancel", cancel=True)
        status = runs.wait_phase("train-cancel", timeout=60)
        cond = runs.condition("train-cancel")
        assert (status["phase"], cond["status"], cond["reason"]) == (
            "Cancelled",
            "False",
            "Cancelled",
        )
        assert runs.job_stages("train-cancel") == ["notify"]
        assert [c["outcome"] for c in stage_env.calls() if c["stage"] == "notify"] == ["Cancelled"]
        runs.wait_events("train-cancel", "StageCancelled", "RunCancelled")


def test_suspend_holds_a_run_until_resumed(operator: Operator, runs: Runs) -> None:
    with operator():
        runs.create(
            "etl-suspended",
            pipeline="daily-etl",
            suspend=True,
            stages=["verify-infra", "validate-bronze"],
        )
        runs.wait_phase("etl-suspended", "Pending")
        assert runs.condition("etl-suspended")["reason"] == "Suspended"
        settle(4)
        assert runs.jobs("etl-suspended") == []
        runs.patch("etl-suspended", suspend=False)
        status = runs.wait_phase("etl-suspended")
        assert status["phase"] == "Succeeded"
        assert runs.job_stages("etl-suspended") == ["verify-infra", "validate-bronze", "notify"]


@pytest.mark.stage_env(FAKE_SLEEP="validate-models=6")
def test_concurrency_forbid_fails_fast_and_queue_waits(operator: Operator, runs: Runs) -> None:
    with operator():
        only = ["validate-models"]
        runs.create("train-a", pipeline="ml-training", stages=only)
        runs.wait_phase("train-a", "Running")
        runs.create("train-forbid", pipeline="ml-training", stages=only, concurrencyPolicy="Forbid")
        runs.create("train-queue", pipeline="ml-training", stages=only, concurrencyPolicy="Queue")
        status = runs.wait_phase("train-forbid")
        cond = runs.condition("train-forbid")
        assert (status["phase"], cond["reason"]) == ("Failed", "ConcurrencyForbidden")
        assert "train-a" in cond["message"]
        assert runs.jobs("train-forbid") == []
        queued = runs.wait_phase("train-queue", "Pending")
        assert (
            runs.condition("train-queue")["reason"] == "Queued" and "train-a" in queued["message"]
        )
        assert runs.jobs("train-queue") == []
        a_done = runs.wait_phase("train-a", timeout=60)
        assert a_done["phase"] == "Succeeded"
        assert runs.wait_phase("train-queue", timeout=60)["phase"] == "Succeeded"
        first_job = min(j.metadata.creation_timestamp for j in runs.jobs("train-queue"))
        assert first_job >= dt.datetime.fromisoformat(
            a_done["completionTime"].replace("Z", "+00:00")
        )


def test_ttl_deletes_finished_runs_and_their_jobs(operator: Operator, runs: Runs) -> None:
    with operator():
        runs.create(
            "train-ttl",
            pipeline="ml-training",
            stages=["validate-models"],
            ttlSecondsAfterFinished=3,
        )
        runs.wait_phase("train-ttl", timeout=60)
        wait_for(lambda: runs.get("train-ttl") is None, timeout=30, what="the run to be deleted")
        # The garbage collector (kube-controller-manager) removes the owned Jobs.
        wait_for(lambda: runs.jobs("train-ttl") == [], timeout=60, what="its Jobs to be collected")


def test_bad_specs_are_refused_at_admission(
    kube_cluster: ControlPlane,
    pipelinerun_crd: object,
    kube_namespace: str,
) -> None:
    def create(spec: str) -> subprocess.CompletedProcess[str]:
        doc = (
            "apiVersion: smepulse.io/v1alpha1\nkind: PipelineRun\n"
            f"metadata: {{name: r{abs(hash(spec)) % 10**8}}}\nspec: {spec}\n"
        )
        return kube_cluster.kubectl(
            "-n", kube_namespace, "create", "-f", "-", input=doc, check=False
        )

    cases = {
        "{pipeline: nightly}": 'Unsupported value: "nightly"',
        "{pipeline: daily-etl, logicalDate: 2025-1-1}": "spec.logicalDate",
        "{pipeline: daily-etl, logicalDate: '2025-02-30'}": "must be of type date",
        "{pipeline: daily-etl, retries: {limit: -1}}": "should be greater than or equal to 0",
        "{pipeline: ml-predict, stages: [dbt-silver]}": "unknown stage for pipeline ml-predict",
        "{pipeline: ml-predict, fromStage: dbt-gold-kpis}": "unknown stage for pipeline ml-predict",
        "{pipeline: daily-etl, concurrencyPolicy: Sometimes}": 'Unsupported value: "Sometimes"',
    }
    for spec, message in cases.items():
        proc = create(spec)
        assert proc.returncode != 0, f"{spec} was accepted"
        assert message in proc.stderr, (spec, proc.stderr)
    assert create("{pipeline: ml-predict, suspend: true}").returncode == 0
    name = kube_cluster.kubectl("-n", kube_namespace, "get", "plr", "-o", "name").stdout.strip()
    for patch, message in (
        ('{"spec":{"pipeline":"daily-etl"}}', "spec.pipeline is immutable"),
        ('{"spec":{"logicalDate":"2025-01-01"}}', "spec.logicalDate is immutable"),
        ('{"spec":{"params":{"a":"b"}}}', "spec.params is immutable"),
    ):
        proc = kube_cluster.kubectl(
            "-n", kube_namespace, "patch", name, "--type=merge", "-p", patch, check=False
        )
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    # The control fields stay mutable.
    kube_cluster.kubectl(
        "-n",
        kube_namespace,
        "patch",
        name,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false,"cancel":true,"ttlSecondsAfterFinished":60}}',
    )


def test_submit_is_idempotent(
    kube_cluster: ControlPlane,
    pipelinerun_crd: object,
    kube_namespace: str,
    runs: Runs,
) -> None:
    exe = str(Path(sys.executable).with_name("smepulse"))
    env = {**os.environ, "SMEPULSE_KUBECONFIG": str(kube_cluster.kubeconfig)}
    argv = [exe, "submit", "daily-etl", "-d", "2025-01-05", "-n", kube_namespace, "-p", "k=v"]
    first = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    second = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert "daily-etl-20250105 created" in first.stdout
    assert "already exists" in second.stdout
    run = runs.get("daily-etl-20250105")
    assert run is not None and run["spec"]["params"] == {"k": "v"}
    assert len(runs.list()) == 1
    bad = subprocess.run(
        [exe, "submit", "nightly", "-n", kube_namespace],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "unknown pipeline 'nightly'" in bad.stderr


def test_metrics_and_probes(operator: Operator, runs: Runs, operator_env: dict[str, str]) -> None:
    with operator():
        runs.create("probe-run", pipeline="ml-training", stages=["validate-models"])
        runs.wait_phase("probe-run", timeout=60)
        base = "http://127.0.0.1:"
        health = operator_env["SMEPULSE_OPERATOR_HEALTH_PORT"]
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"{base}{health}{path}", timeout=5) as resp:
                assert resp.status == 200
        port = operator_env["SMEPULSE_OPERATOR_METRICS_PORT"]
        with urllib.request.urlopen(f"{base}{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert (
            'smepulse_stage_jobs_created_total{pipeline="ml-training",stage="validate-models"}'
            in text
        )
        assert "smepulse_stage_duration_seconds_bucket" in text
        assert 'phase="Succeeded",pipeline="ml-training"' in text

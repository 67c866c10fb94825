"""Operator correctness gaps of issue #14, each against the real API server (real Job
controller, scripted stage Pods run by the node stand-in, the real operator in-process)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from smepulse.catalog import load_catalog
from smepulse.settings import Settings
from smepulse_operator.actions import JobRequest
from smepulse_operator.model import RunRef, parse_spec
from smepulse_operator.render import job_template, render_job
from tests.integration.operator.conftest import Operator, Runs, StageEnv, settle
from tests.kube.controlplane import ControlPlane
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CATALOG = load_catalog()


def test_gap1_ttl_set_after_the_run_finished_still_deletes_it(
    operator: Operator, runs: Runs
) -> None:
    """The daemon of a run finished without a TTL has returned; setting the TTL afterwards
    must still delete the run on time, without an operator restart."""
    with operator():
        runs.create("train-late-ttl", pipeline="ml-training", stages=["validate-models"])
        assert runs.wait_phase("train-late-ttl", timeout=60)["phase"] == "Succeeded"
        settle(3)  # the run's daemon has returned by now
        assert runs.get("train-late-ttl") is not None
        runs.patch("train-late-ttl", ttlSecondsAfterFinished=2)
        wait_for(
            lambda: runs.get("train-late-ttl") is None,
            timeout=30,
            what="the run to be deleted after its late TTL",
        )


def test_gap2_a_job_the_api_rejects_fails_the_run_and_frees_the_queue(
    operator: Operator, runs: Runs
) -> None:
    """requests above limits pass the CRD's admission but the API refuses the Job (422):
    the run fails at once with reason JobRejected, and a Queue run behind it proceeds."""
    with operator():
        runs.create(
            "train-bad-resources",
            pipeline="ml-training",
            stages=["validate-models"],
            resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
        )
        status = runs.wait_phase("train-bad-resources", timeout=30)
        cond = runs.condition("train-bad-resources")
        assert (status["phase"], cond["reason"]) == ("Failed", "JobRejected")
        assert "422" in cond["message"] and "validate-models" in cond["message"]
        assert runs.jobs("train-bad-resources") == []
        runs.create(
            "train-after", pipeline="ml-training", stages=["validate-models"],
            concurrencyPolicy="Queue",
        )  # fmt: skip
        assert runs.wait_phase("train-after", timeout=60)["phase"] == "Succeeded"
        runs.wait_events("train-bad-resources", "JobRejected")


def test_gap3_a_rerun_of_the_parent_triggers_its_own_child_with_the_parents_params(
    operator: Operator, runs: Runs, stage_env: StageEnv
) -> None:
    """Trigger idempotency is per parent run: the scheduled parent triggers
    ml-predict-<date>; a re-run of the same date (examples/pipelinerun-rerun-from-stage.yaml)
    triggers a new child carrying the re-run's params; a duplicate delivery does not."""
    with operator():
        runs.create("daily-etl-20250101", pipeline="daily-etl", logicalDate="2025-01-01")
        assert runs.wait_phase("daily-etl-20250101", timeout=180)["phase"] == "Succeeded"
        runs.create(
            "daily-etl-20250101-rerun", pipeline="daily-etl", logicalDate="2025-01-01",
            fromStage="dbt-ml-scores", params={"reason": "late-bank-feed"},
        )  # fmt: skip
        assert runs.wait_phase("daily-etl-20250101-rerun", timeout=90)["phase"] == "Succeeded"
        children = {
            r["metadata"]["name"]: r for r in runs.list() if r["spec"]["pipeline"] == "ml-predict"
        }
        assert sorted(children) == ["ml-predict-20250101", "ml-predict-20250101-rerun"]
        rerun_child = children["ml-predict-20250101-rerun"]
        assert rerun_child["spec"]["params"] == {"reason": "late-bank-feed"}
        assert rerun_child["spec"]["logicalDate"] == "2025-01-01"
        assert (
            "params" not in children["ml-predict-20250101"]["spec"]
            or not children["ml-predict-20250101"]["spec"]["params"]
        )
        # Issue #15 point 5: a fromStage run of a date whose upstream another date published
        # last is refused before any Job, naming the stage to start from.
        runs.create(
            "daily-etl-20241231-fix", pipeline="daily-etl", logicalDate="2024-12-31",
            fromStage="dbt-gold-kpis",
        )  # fmt: skip
        refused = runs.wait_phase("daily-etl-20241231-fix", timeout=60)
        assert refused["phase"] == "Failed"
        assert not any(s.get("jobName") for s in refused.get("stages") or [])
        assert refused["message"] == (
            "cannot start daily-etl at dbt-gold-kpis for 2024-12-31: upstream stage "
            "verify-infra last published for 2025-01-01, not 2024-12-31; "
            "run --from-stage verify-infra first"
        )


@pytest.mark.stage_env(FAKE_SLEEP="*=120,notify=0")
def test_gap5_cancel_before_the_start_patch_landed_deletes_the_jobs_and_runs_finally(
    operator: Operator, runs: Runs, stage_env: StageEnv, kube_api: client.ApiClient
) -> None:
    """The state an operator killed between creating the first Job and patching the status
    leaves behind (a Job, no startTime), plus a cancel: the next operator must delete that
    Job and still run the finally stage, not just mark the run Cancelled."""
    body = runs.create("train-cancel-early", pipeline="ml-training", stages=["validate-models"])
    ref = RunRef.from_body(body)
    spec = parse_spec(body["spec"], "test")
    stage = CATALOG.pipeline("ml-training").stage("validate-models")
    job = render_job(ref, job_template(Settings(), spec, dt.date.today()), JobRequest(stage, 1))
    client.BatchV1Api(kube_api).create_namespaced_job(runs.ns, job)
    wait_for(
        lambda: any(c["stage"] == "validate-models" for c in stage_env.calls()),
        timeout=30,
        what="the orphan Job's Pod to start",
    )
    runs.patch("train-cancel-early", cancel=True)
    assert "startTime" not in runs.status("train-cancel-early")
    with operator():
        status = runs.wait_phase("train-cancel-early", timeout=60)
        assert status["phase"] == "Cancelled"
        stages = {s["name"]: s for s in status["stages"]}
        assert stages["validate-models"]["phase"] == "Cancelled"
        assert stages["notify"]["phase"] == "Succeeded"
        wait_for(
            lambda: "validate-models" not in runs.job_stages("train-cancel-early"),
            timeout=30,
            what="the stage Job to be deleted",
        )
    told = [c["outcome"] for c in stage_env.calls() if c["stage"] == "notify"]
    assert told == ["Cancelled"]


def _images(runs: Runs, run: str) -> set[str]:
    return {c.image for j in runs.jobs(run) for c in j.spec.template.spec.containers}


@pytest.mark.stage_env(FAKE_SLEEP="*=3,notify=0")
def test_gap4_a_run_keeps_the_image_it_started_with_across_an_upgrade(
    operator: Operator, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator restarted with a new default image (what `helm upgrade` does) must not
    switch the later stages of a run already going; runs started afterwards get the new one."""
    with operator():
        runs.create("train-pinned", pipeline="ml-training")
        wait_for(
            lambda: (
                runs.status("train-pinned").get("image") == "smepulse:test"
                and runs.jobs("train-pinned")
            ),
            timeout=30,
            what="the run to start and record its image",
        )
    assert runs.status("train-pinned")["phase"] == "Running"  # stopped mid-run
    monkeypatch.setenv("SMEPULSE_JOB_IMAGE", "smepulse:v2")
    with operator():
        assert runs.wait_phase("train-pinned", timeout=90)["phase"] == "Succeeded"
        runs.create("train-next", pipeline="ml-training", stages=["validate-models"])
        assert runs.wait_phase("train-next", timeout=60)["phase"] == "Succeeded"
    assert set(runs.job_stages("train-pinned")) == {
        "uc09-train",
        "uc10-train",
        "validate-models",
        "notify",
    }
    assert _images(runs, "train-pinned") == {"smepulse:test"}
    assert _images(runs, "train-next") == {"smepulse:v2"}


@pytest.mark.stage_env(FAKE_SLEEP="*=3,notify=0")
def test_gap6_scheduled_runs_queue_instead_of_overlapping(operator: Operator, runs: Runs) -> None:
    """Two days' runs as the CronJob creates them (render_run, what `smepulse submit` sends):
    the second waits until the first has finished instead of running beside it."""
    from smepulse_operator.model import GROUP, PLURAL, VERSION, run_name
    from smepulse_operator.render import render_run

    names = []
    with operator():
        for day in (dt.date(2025, 1, 1), dt.date(2025, 1, 2)):
            name = run_name("ml-training", day)
            body = render_run(name, runs.ns, "ml-training", day)
            runs.custom.create_namespaced_custom_object(GROUP, VERSION, runs.ns, PLURAL, body)
            names.append(name)
        wait_for(
            lambda: runs.condition(names[1]).get("reason") == "Queued",
            timeout=30,
            what="the second day's run to queue",
        )
        first = runs.wait_phase(names[0], timeout=90)
        assert runs.wait_phase(names[1], timeout=90)["phase"] == "Succeeded"
    ended = dt.datetime.fromisoformat(first["completionTime"].replace("Z", "+00:00"))
    assert min(j.metadata.creation_timestamp for j in runs.jobs(names[1])) >= ended


def _running_pod(kube_api: client.ApiClient, ns: str, run: str, stage: str) -> str:
    core = client.CoreV1Api(kube_api)

    def probe() -> str | None:
        pods = core.list_namespaced_pod(ns, label_selector=f"smepulse.io/run={run}").items
        for pod in pods:
            labels = pod.metadata.labels
            if labels["smepulse.io/stage"] == stage and pod.status.phase == "Running":
                return str(pod.metadata.name)
        return None

    return wait_for(probe, timeout=30, what=f"a running Pod of {run}/{stage}")


# A Pod that cannot start is not Ready, as the kubelet reports it (the Pod patched here was
# running: its Ready condition is replaced, conditions merge by type). The Job controller's
# count of Ready Pods drops to 0, the operator's cue to look at the Pods.
_NOT_READY = {
    "type": "Ready",
    "status": "False",
    "reason": "ContainersNotReady",
    "lastTransitionTime": "2025-01-01T00:00:00Z",
}
STUCK = {
    "ImagePullBackOff": {
        "phase": "Pending",
        "conditions": [_NOT_READY],
        "containerStatuses": [
            {
                "name": "stage",
                "image": "registry.invalid/smepulse:missing",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "registry.invalid/smepulse:missing"',
                    }
                },
            }
        ],
    },
    "Unschedulable": {
        "phase": "Pending",
        "conditions": [
            _NOT_READY,
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient memory.",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            },
        ],
    },
}


def _slow_training_run(runs: Runs, kube_api: client.ApiClient, name: str) -> str:
    """A one-stage ml-training run whose first attempt runs for two minutes (the second ends
    at once), one retry without backoff; returns the running Pod's name."""
    runs.create(
        name, pipeline="ml-training", stages=["validate-models"],
        retries={"limit": 1, "backoffSeconds": 0},
        params={"fakeAttempts": '{"validate-models": ["ok:120", "ok:0.5"]}'},
    )  # fmt: skip
    return _running_pod(kube_api, runs.ns, name, "validate-models")


@pytest.mark.parametrize("reason", sorted(STUCK))
def test_gap8_a_pod_that_cannot_start_is_reported_and_fails_its_attempt_early(
    reason: str,
    operator: Operator,
    runs: Runs,
    kube_api: client.ApiClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ImagePullBackOff / Unschedulable are written into the Pod's status the way kubelet /
    the scheduler write them (this control plane's node stand-in has no image puller and no
    scheduler): the operator must report them (Event StagePodStuck) and, after
    operator_image_pull_seconds / operator_stuck_pod_seconds, fail the attempt with that
    reason so the retry runs -- not wait for the stage's 30-minute activeDeadlineSeconds."""
    monkeypatch.setenv("SMEPULSE_OPERATOR_STUCK_POD_SECONDS", "3")
    monkeypatch.setenv("SMEPULSE_OPERATOR_IMAGE_PULL_SECONDS", "3")
    name = f"train-stuck-{reason.lower()}"
    with operator():
        pod = _slow_training_run(runs, kube_api, name)
        core = client.CoreV1Api(kube_api)

        def report() -> bool:
            # As kubelet/the scheduler do, keep reporting: the node stand-in may publish its
            # own (Running) status right after our first write.
            try:
                core.patch_namespaced_pod_status(pod, runs.ns, {"status": STUCK[reason]})
            except client.ApiException:
                return True  # the Pod is gone: the operator deleted its Job
            return "StagePodStuck" in {r for _, r, _ in runs.events(name)}

        wait_for(report, timeout=30, interval=1, what=f"the operator to report {reason}")
        status = runs.wait_phase(name, timeout=60)
        events = runs.wait_events(name, "StagePodStuck")
    assert status["phase"] == "Succeeded"
    stage = next(s for s in status["stages"] if s["name"] == "validate-models")
    assert stage["attempts"] == 2
    assert any(reason in msg for _, r, msg in events if r == "StagePodStuck")
    assert "StageRetrying" in {r for _, r, _ in events}, events


def test_gap7_a_run_without_a_ttl_gets_the_operators_default(
    operator: Operator, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No run piles up: without spec.ttlSecondsAfterFinished the operator's default TTL
    (SMEPULSE_OPERATOR_DEFAULT_TTL_SECONDS, 7 days unless set) deletes the finished run, and
    the garbage collector its Jobs."""
    monkeypatch.setenv("SMEPULSE_OPERATOR_DEFAULT_TTL_SECONDS", "2")
    with operator():
        runs.create("train-default-ttl", pipeline="ml-training", stages=["validate-models"])
        assert runs.wait_phase("train-default-ttl", timeout=60)["phase"] == "Succeeded"
        wait_for(lambda: runs.get("train-default-ttl") is None, timeout=30, what="deletion")
        wait_for(lambda: runs.jobs("train-default-ttl") == [], timeout=60, what="its Jobs gone")


def _evict(core: client.CoreV1Api, ns: str, pod: str) -> None:
    """A node drain's request (``kubectl drain`` uses the Eviction API): the API server marks
    the Pod DisruptionTarget=True (reason EvictionByEvictionAPI) and deletes it gracefully."""
    body = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": pod, "namespace": ns},
    }
    core.create_namespaced_pod_eviction(pod, ns, body, _preload_content=False)


def _delete(core: client.CoreV1Api, ns: str, pod: str) -> None:
    """A plain deletion: the Pod fails (SIGTERM, exit 143) with no DisruptionTarget."""
    core.delete_namespaced_pod(pod, ns)


# How the stage's Pod is ended -> (operator attempts, a StageRetrying Event, Jobs of the stage).
DISRUPTIONS = {"evicted": (_evict, 1, False, 1), "deleted": (_delete, 1, False, 1)}


@pytest.mark.parametrize("how", sorted(DISRUPTIONS))
def test_gap8_an_evicted_pod_is_replaced_without_spending_a_retry(
    how: str, operator: Operator, runs: Runs, stage_env: StageEnv, kube_api: client.ApiClient
) -> None:
    """backoffLimit 0 + podFailurePolicy Ignore on DisruptionTarget and on exit code 143: a
    drain's eviction of a running stage Pod, or the Pod simply deleted (no DisruptionTarget;
    its stage exits 143 on SIGTERM), makes the real Job controller start a replacement Pod in
    the SAME Job (attempts stays 1, no StageRetrying)."""
    end_pod, attempts, retried, jobs = DISRUPTIONS[how]
    name = f"train-{how}"
    core = client.CoreV1Api(kube_api)
    with operator():
        pod = _slow_training_run(runs, kube_api, name)
        # The fake stage counts its runs in FAKE_LOG: wait until the first one has counted,
        # so the next Pod (replacement or retry) is its second run and ends at once.
        wait_for(
            lambda: any(c["run"] == name for c in stage_env.calls()),
            timeout=30,
            what=f"the first Pod of {name} to start the stage",
        )
        end_pod(core, runs.ns, pod)
        if how == "evicted":
            try:
                conds = core.read_namespaced_pod(pod, runs.ns).status.conditions or []
            except client.ApiException as exc:
                assert exc.status == 404, exc
            else:  # still terminating: the API server has marked it as a disruption
                assert any(
                    (c.type, c.status, c.reason)
                    == ("DisruptionTarget", "True", "EvictionByEvictionAPI")
                    for c in conds
                ), conds
        status = runs.wait_phase(name, timeout=90)
        # Events are posted asynchronously; a StageRetrying would precede the success.
        events = runs.wait_events(name, "StageRetrying") if retried else runs.events(name)
    assert status["phase"] == "Succeeded", status
    stage = next(s for s in status["stages"] if s["name"] == "validate-models")
    assert stage["attempts"] == attempts, stage
    assert ("StageRetrying" in {r for _, r, _ in events}) is retried, events
    assert runs.job_stages(name).count("validate-models") == jobs
    # Two Pods ran the stage either way: the evicted/deleted one and the one that succeeded.
    assert [c["stage"] for c in stage_env.calls() if c["run"] == name].count("validate-models") == 2
    # Either way one Job, which succeeded and counts no failure.
    (job,) = [
        j for j in runs.jobs(name) if j.metadata.labels["smepulse.io/stage"] == "validate-models"
    ]
    assert (job.status.succeeded, job.status.failed or 0) == (1, 0), job.status


def test_gap9_the_operator_asks_the_api_server_only_for_stage_jobs(
    operator: Operator, runs: Runs, kube_cluster: ControlPlane
) -> None:
    """The Job watch filters server-side: every list/watch of Jobs the operator's kopf client
    sends carries ``labelSelector=smepulse.io/run``, as the API server's own audit log
    records the request (kopf's ``labels=`` on a handler alone filters on the client, after
    the server has sent every Job of the namespace)."""

    def kopf_job_requests() -> list[dict[str, Any]]:
        return [
            e
            for e in kube_cluster.audit_events()
            if str(e.get("userAgent", "")).startswith("kopf/")
            and e.get("objectRef", {}).get("resource") == "jobs"
            and e.get("objectRef", {}).get("namespace") == runs.ns
        ]

    def listed_and_watched() -> list[dict[str, Any]] | None:
        seen = kopf_job_requests()
        return seen if {"list", "watch"} <= {e["verb"] for e in seen} else None

    with operator():
        runs.create("train-watched", pipeline="ml-training", stages=["validate-models"])
        assert runs.wait_phase("train-watched", timeout=60)["phase"] == "Succeeded"
        requests = wait_for(
            listed_and_watched,
            timeout=30,
            what="the operator's list and watch of Jobs in the audit log",
            describe=lambda: str(kopf_job_requests())[:2000],
        )
    for event in requests:
        query = parse_qs(urlsplit(event["requestURI"]).query)
        assert query.get("labelSelector") == ["smepulse.io/run"], event["requestURI"]

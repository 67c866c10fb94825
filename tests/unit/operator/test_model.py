"""What the operator reads from the cluster's objects: a failed stage Pod's reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from smepulse_operator.model import (
    CONTAINER_FAILED,
    JobState,
    JobView,
    pod_failure_reason,
    with_pod_failures,
)

pytestmark = pytest.mark.unit


def pod(
    job: str, phase: str, terminated: dict[str, Any] | None, memory: str = "64Mi"
) -> dict[str, Any]:
    """A stage Pod as the API returns it (the fields the kubelet fills in)."""
    state = {"terminated": terminated} if terminated is not None else {"running": {}}
    return {
        "metadata": {"name": f"{job}-abcde", "labels": {"job-name": job}},
        "spec": {"containers": [{"name": "stage", "resources": {"limits": {"memory": memory}}}]},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "stage", "state": state}],
        },
    }


def job(name: str, state: JobState = "failed", message: str = CONTAINER_FAILED) -> JobView:
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return JobView(name, "ingest", 1, state, when, when, message)


def test_oomkilled_pod_says_so_with_its_limit() -> None:
    p = pod("r-ingest", "Failed", {"reason": "OOMKilled", "exitCode": 137})
    assert pod_failure_reason(p) == (
        "OOMKilled: the container went over its memory limit of 64Mi and the kernel killed it "
        "(exit code 137)"
    )


def test_other_kubelet_reasons_are_named_and_a_plain_error_adds_nothing() -> None:
    cannot = pod(
        "r-ingest",
        "Failed",
        {"reason": "StartError", "exitCode": 128, "message": "exec: no such file\n"},
    )
    assert pod_failure_reason(cannot) == "StartError (exit code 128): exec: no such file"
    assert pod_failure_reason(pod("r", "Failed", {"reason": "Error", "exitCode": 1})) is None
    assert pod_failure_reason(pod("r", "Running", None)) is None


def test_a_plain_exit_takes_the_stages_own_error_line_from_the_termination_message() -> None:
    """What the real node showed as "the stage's container exited with an error" while the
    log's last line named the unreachable MLflow server."""
    tail = (
        '{"level": "warning", "message": "Retrying (Retry(total=0)) ..."}\n'
        "error: MLflow at http://smepulse-mlflow.sp.svc:5000 failed: timed out\n"
    )
    p = pod("r", "Failed", {"reason": "Error", "exitCode": 1, "message": tail})
    assert pod_failure_reason(p) == (
        "exit code 1: MLflow at http://smepulse-mlflow.sp.svc:5000 failed: timed out"
    )
    long = pod("r", "Failed", {"reason": "Error", "exitCode": 2, "message": "error: " + "x" * 900})
    assert pod_failure_reason(long) == "exit code 2: " + "x" * 399 + "…"


def test_only_failed_jobs_with_the_generic_message_take_their_pods_reason() -> None:
    oom = {"reason": "OOMKilled", "exitCode": 137}
    jobs = [
        job("r-a"),
        job("r-b", message="timed out (activeDeadlineSeconds exceeded)"),
        job("r-c", state="active", message=""),
        job("r-d"),
    ]
    pods = [
        pod("r-a", "Failed", oom),
        pod("r-b", "Failed", oom),
        pod("r-c", "Failed", oom),
        pod("r-d", "Failed", {"reason": "Error", "exitCode": 1}),
    ]
    out = {j.name: j.message for j in with_pod_failures(jobs, pods)}
    assert out["r-a"].startswith("OOMKilled: ")
    assert out["r-b"] == "timed out (activeDeadlineSeconds exceeded)"
    assert out["r-c"] == ""
    assert out["r-d"] == CONTAINER_FAILED

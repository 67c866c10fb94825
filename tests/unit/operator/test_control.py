"""The pure parts of ``smepulse retry`` and ``smepulse watch`` (the commands themselves are
tested against the real API server in tests/integration/operator/test_cli_follow.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from smepulse.errors import ConfigError
from smepulse_operator.control import retry_body, retry_name
from smepulse_operator.follow import exit_code, run_record

pytestmark = pytest.mark.unit


def run(phase: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "daily-etl-20250101", "namespace": "prod"},
        "spec": {
            "pipeline": "daily-etl",
            "logicalDate": "2025-01-01",
            "params": {"tenant": "acme"},
            "image": "registry.example/smepulse:1.2.3",
            "cancel": True,
            "stages": ["dbt-silver"],
        },
        "status": {"phase": phase, **status},
    }


def test_retry_names_count_up_and_stay_dns_labels() -> None:
    assert retry_name("daily-etl-20250101") == "daily-etl-20250101-retry1"
    assert retry_name("daily-etl-20250101-retry1") == "daily-etl-20250101-retry2"
    assert retry_name("daily-etl-20250101-retry9") == "daily-etl-20250101-retry10"
    long = retry_name("x" * 70)
    assert len(long) == 63 and retry_name("x" * 70) == long


def test_retry_body_reruns_from_the_failed_stage_with_the_same_settings() -> None:
    body = retry_body(run("Failed", failedStage="dbt-gold-facts"))
    assert body["metadata"]["name"] == "daily-etl-20250101-retry1"
    assert body["metadata"]["namespace"] == "prod"
    assert body["metadata"]["labels"]["smepulse.io/retry-of"] == "daily-etl-20250101"
    assert body["spec"] == {
        "pipeline": "daily-etl",
        "logicalDate": "2025-01-01",
        "params": {"tenant": "acme"},
        "image": "registry.example/smepulse:1.2.3",
        "fromStage": "dbt-gold-facts",
    }


def test_retry_after_failures_on_separate_branches_reruns_the_whole_pipeline() -> None:
    """ml-predict's uc09-forecast and uc10-detect are both roots: a run from either would be
    refused (the other never succeeded). Seen on the real node when MLflow was down."""
    doc = run("Failed", failedStage="uc09-forecast", stages=[
        {"name": "uc09-forecast", "phase": "Failed"}, {"name": "uc10-detect", "phase": "Failed"},
        {"name": "report", "phase": "Skipped"}, {"name": "notify", "phase": "Succeeded"},
    ])  # fmt: skip
    doc["spec"]["pipeline"] = "ml-predict"
    body = retry_body(doc)
    assert "fromStage" not in body["spec"] and body["spec"]["pipeline"] == "ml-predict"
    # One of them failed, the other was skipped for it: from the failed one, as before.
    doc["status"]["stages"][1]["phase"] = "Succeeded"
    assert retry_body(doc)["spec"]["fromStage"] == "uc09-forecast"
    # A chain (dbt-silver failed, a later gold stage too, on a retry of it): the upstream one.
    chain = run("Failed", failedStage="dbt-gold-facts", stages=[
        {"name": "dbt-silver", "phase": "Failed"}, {"name": "dbt-gold-facts", "phase": "Failed"},
    ])  # fmt: skip
    assert retry_body(chain)["spec"]["fromStage"] == "dbt-silver"


@pytest.mark.parametrize(
    ("phase", "status", "message"),
    [
        ("Succeeded", {}, "pipelinerun prod/daily-etl-20250101 is Succeeded, not Failed"),
        ("Running", {}, "is Running, not Failed: nothing to retry"),
        (
            "Failed",
            {"message": "queued behind x"},
            "failed before any stage (queued behind x): fix the cause and submit it again",
        ),
    ],
)
def test_retry_refuses_runs_that_did_not_fail_at_a_stage(
    phase: str, status: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        retry_body(run(phase, **status))


def test_watch_record_from_status_and_exit_codes() -> None:
    doc = run(
        "Failed",
        failedStage="dbt-silver",
        message="stage dbt-silver failed",
        logicalDate="2025-01-01",
        startTime="2025-01-02T02:00:00Z",
        completionTime="2025-01-02T02:01:30Z",
        stages=[
            {
                "name": "dbt-silver",
                "phase": "Failed",
                "attempts": 2,
                "startTime": "2025-01-02T02:00:00Z",
                "completionTime": "2025-01-02T02:01:00Z",
                "message": "exit 1",
            },
            {"name": "notify", "phase": "Succeeded", "attempts": 1},
        ],
    )
    rec = run_record(doc)
    assert (rec.run_id, rec.pipeline, rec.logical_date) == (
        "daily-etl-20250101",
        "daily-etl",
        dt.date(2025, 1, 1),
    )
    assert rec.status == "Failed" and rec.failed_stage == "dbt-silver"
    assert rec.duration_seconds == 90.0
    silver, notify = rec.stages
    assert (silver.state, silver.attempts, silver.duration_seconds) == ("Failed", 2, 60.0)
    assert notify.is_finally and not silver.is_finally
    # Before the operator wrote any stage: the selected stages from the catalog, Pending.
    pending = run_record({**doc, "status": {}})
    assert pending.status == "Running"
    assert [(s.name, s.state) for s in pending.stages] == [
        ("dbt-silver", "Pending"),
        ("notify", "Pending"),
    ]
    assert [exit_code(p) for p in ("Succeeded", "Failed", "Cancelled")] == [0, 1, 1]

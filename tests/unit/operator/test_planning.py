"""The pure planner: DAG order, retries, failure, timeout, cancel, suspend, concurrency, TTL."""

from __future__ import annotations

import datetime as dt

import pytest

from smepulse.catalog import load_catalog
from smepulse_operator.model import InvalidSpec, JobView
from smepulse_operator.planning import Peer
from tests.unit.operator.sim import T0, SimRun

pytestmark = pytest.mark.unit

DAILY = [s.name for s in load_catalog().pipeline("daily-etl").stages]


def drive_to_end(sim: SimRun, fail: dict[str, int] | None = None, limit: int = 200) -> None:
    """Finish every running Job (failing the first N attempts of stages in ``fail``)."""
    fail = dict(fail or {})
    for _ in range(limit):
        plan = sim.step(1)
        if sim.status.get("phase") in ("Succeeded", "Failed", "Cancelled"):
            return
        for stage in sim.running():
            if fail.get(stage, 0) > 0:
                fail[stage] -= 1
                sim.finish(stage, ok=False)
            else:
                sim.finish(stage)
        if plan.requeue_after:
            sim.step(plan.requeue_after)
    raise AssertionError(f"run did not finish: {sim.status}")


def test_new_run_starts_the_first_stage_only() -> None:
    sim = SimRun({"pipeline": "daily-etl", "logicalDate": "2025-01-01"})
    plan = sim.step()
    assert [r.stage.name for r in plan.create_jobs] == ["verify-infra"]
    assert sim.status["phase"] == "Running"
    assert sim.status["currentStage"] == "verify-infra"
    assert sim.condition()["status"] == "Unknown"
    assert sim.reasons() == ["RunStarted", "StageStarted"]
    assert sim.status["startTime"] == "2025-01-02T03:00:00Z"


def test_daily_etl_runs_in_dependency_order_and_triggers_once() -> None:
    sim = SimRun({"pipeline": "daily-etl", "logicalDate": "2025-01-01"})
    drive_to_end(sim)
    job_stages = [name.removeprefix("daily-etl-20250101-") for name in sim.created]
    assert job_stages == [s for s in DAILY if s != "trigger-ml-predict"] + ["notify"]
    triggers = [c for p in sim.plans for c in p.trigger_runs]
    assert [(c.pipeline, c.name) for c in triggers] == [("ml-predict", "ml-predict-20250101")]
    assert sim.status["phase"] == "Succeeded"
    assert sim.condition() | {"lastTransitionTime": ""} == {
        "type": "Succeeded",
        "status": "True",
        "reason": "Succeeded",
        "message": "9 stage(s) succeeded",
        "lastTransitionTime": "",
        "observedGeneration": 1,
    }
    assert sim.status["triggered"][0]["name"] == "ml-predict-20250101"
    assert sim.status["completionTime"] and sim.status["duration"]
    assert "RunSucceeded" in sim.reasons()


def test_failing_stage_is_retried_with_backoff_then_fails_the_run() -> None:
    sim = SimRun(
        {
            "pipeline": "daily-etl",
            "logicalDate": "2025-01-01",
            "retries": {"limit": 1, "backoffSeconds": 30},
        }
    )
    sim.step()
    sim.finish("verify-infra")
    sim.step(1)
    sim.finish("validate-bronze", ok=False, message="bad file")
    plan = sim.step(1)
    assert plan.create_jobs == []
    assert sim.stage("validate-bronze")["phase"] == "Retrying"
    assert plan.requeue_after == pytest.approx(29, abs=1.5)
    assert sim.step(10).create_jobs == []
    plan = sim.step(20)
    assert [(r.stage.name, r.attempt) for r in plan.create_jobs] == [("validate-bronze", 2)]
    assert "daily-etl-20250101-validate-bronze-2" in sim.jobs
    sim.finish("validate-bronze", ok=False, message="bad file again")
    plan = sim.step(1)
    # Dependants never start; notify (finally) runs with the outcome in its environment.
    assert [(r.stage.name, r.finally_ctx) for r in plan.create_jobs] == [
        ("notify", plan.create_jobs[0].finally_ctx)
    ]
    ctx = plan.create_jobs[0].finally_ctx
    assert ctx is not None and ctx.outcome == "Failed" and ctx.failed_stage == "validate-bronze"
    assert "bad file again" in ctx.message
    assert sim.stage("dbt-silver")["phase"] == "Skipped"
    sim.finish("notify")
    sim.step(1)
    assert sim.status["phase"] == "Failed"
    assert sim.condition()["reason"] == "StageFailed"
    assert sim.status["failedStage"] == "validate-bronze"
    assert not any(name.startswith("daily-etl-20250101-dbt") for name in sim.created)
    assert sim.reasons().count("StageAttemptFailed") == 1
    assert "StageFailed" in sim.reasons()


def test_catalog_retry_limit_bounds_the_attempts() -> None:
    sim = SimRun({"pipeline": "daily-etl", "logicalDate": "2025-01-01"})
    drive_to_end(sim, fail={"verify-infra": 99})
    # verify-infra allows 2 retries in the catalog: 3 Jobs, never more.
    assert sum(n.startswith("daily-etl-20250101-verify-infra") for n in sim.created) == 3
    assert sim.status["phase"] == "Failed"


def test_timeout_deletes_running_jobs_and_runs_finally() -> None:
    sim = SimRun(
        {"pipeline": "ml-predict", "logicalDate": "2025-01-01", "timeoutSeconds": 60},
        name="ml-predict-20250101",
    )
    sim.step()
    assert sim.running() == ["uc09-forecast", "uc10-detect"]
    plan = sim.step(61)
    assert sorted(plan.delete_jobs) == [
        "ml-predict-20250101-uc09-forecast",
        "ml-predict-20250101-uc10-detect",
    ]
    assert [r.stage.name for r in plan.create_jobs] == ["notify"]
    assert plan.create_jobs[0].finally_ctx.outcome == "TimedOut"  # type: ignore[union-attr]
    assert sim.stage("uc09-forecast")["phase"] == "Cancelled"
    assert sim.stage("refresh-metabase")["phase"] == "Skipped"
    sim.finish("notify")
    sim.step(1)
    assert (sim.status["phase"], sim.condition()["reason"]) == ("Failed", "TimedOut")


def test_cancel_deletes_running_jobs_and_ends_cancelled() -> None:
    sim = SimRun(
        {"pipeline": "ml-training", "logicalDate": "2025-01-01"}, name="ml-training-20250101"
    )
    sim.step()
    sim.spec["cancel"] = True
    plan = sim.step(5)
    assert sorted(plan.delete_jobs) == [
        "ml-training-20250101-uc09-train",
        "ml-training-20250101-uc10-train",
    ]
    assert plan.create_jobs[0].finally_ctx.outcome == "Cancelled"  # type: ignore[union-attr]
    sim.finish("notify")
    sim.step(1)
    assert (sim.status["phase"], sim.condition()["status"], sim.condition()["reason"]) == (
        "Cancelled",
        "False",
        "Cancelled",
    )


def test_cancel_before_start_creates_nothing() -> None:
    sim = SimRun({"pipeline": "ml-training", "cancel": True})
    plan = sim.step()
    assert plan.create_jobs == [] and plan.finished
    assert sim.status["phase"] == "Cancelled"


def test_suspend_starts_nothing_new_until_resumed() -> None:
    sim = SimRun({"pipeline": "daily-etl", "logicalDate": "2025-01-01"})
    sim.step()
    sim.spec["suspend"] = True
    sim.finish("verify-infra")
    for _ in range(3):
        assert sim.step(30).create_jobs == []
    assert sim.condition()["reason"] == "Suspended"
    assert sim.stage("verify-infra")["phase"] == "Succeeded"
    sim.spec["suspend"] = False
    assert [r.stage.name for r in sim.step(1).create_jobs] == ["validate-bronze"]


def test_suspended_new_run_stays_pending() -> None:
    sim = SimRun({"pipeline": "daily-etl", "suspend": True})
    assert sim.step().create_jobs == []
    assert (sim.status["phase"], sim.condition()["reason"]) == ("Pending", "Suspended")
    assert "startTime" not in sim.status or sim.status["startTime"] is None


@pytest.mark.parametrize(
    ("policy", "phase", "reason"),
    [
        ("Allow", "Running", "Running"),
        ("Forbid", "Failed", "ConcurrencyForbidden"),
        ("Queue", "Pending", "Queued"),
        ("Replace", "Pending", "Replacing"),
    ],
)
def test_concurrency_policy_against_an_older_active_run(
    policy: str, phase: str, reason: str
) -> None:
    sim = SimRun({"pipeline": "daily-etl", "concurrencyPolicy": policy})
    sim.peers = [Peer("daily-etl-older", T0 - dt.timedelta(minutes=5), "Running")]
    plan = sim.step()
    assert (sim.status["phase"], sim.condition()["reason"]) == (phase, reason)
    assert bool(plan.create_jobs) == (policy == "Allow")
    assert plan.cancel_runs == (["daily-etl-older"] if policy == "Replace" else [])
    if policy != "Allow":
        assert "daily-etl-older" in sim.status["message"]


def test_queued_run_starts_when_the_older_one_finishes() -> None:
    sim = SimRun({"pipeline": "daily-etl", "concurrencyPolicy": "Queue"})
    sim.peers = [Peer("daily-etl-older", T0 - dt.timedelta(minutes=5), "Running")]
    sim.step()
    sim.step(10)
    assert sim.reasons().count("RunQueued") == 1  # one Event, not one per reconcile
    sim.peers = [Peer("daily-etl-older", T0 - dt.timedelta(minutes=5), "Succeeded")]
    assert [r.stage.name for r in sim.step(1).create_jobs] == ["verify-infra"]


def test_newer_or_finished_peers_do_not_block() -> None:
    sim = SimRun({"pipeline": "daily-etl", "concurrencyPolicy": "Forbid"})
    sim.peers = [
        Peer("daily-etl-newer", T0 + dt.timedelta(seconds=1), "Running"),
        Peer("daily-etl-old", T0 - dt.timedelta(days=1), "Failed"),
    ]
    assert sim.step().create_jobs


def test_ttl_deletes_a_finished_run_after_its_time() -> None:
    sim = SimRun(
        {"pipeline": "ml-training", "stages": ["validate-models"], "ttlSecondsAfterFinished": 60}
    )
    drive_to_end(sim)
    assert sim.plans[-1].finished and sim.plans[-1].requeue_after == 60
    plan = sim.step(30)
    assert not plan.delete_run and plan.requeue_after == pytest.approx(30, abs=2)
    assert sim.step(31).delete_run


DAY = dt.date(2025, 1, 1)
DAILY_BEFORE_ML_SCORES = [
    "verify-infra", "validate-bronze", "dbt-silver", "dbt-gold-dims", "dbt-gold-facts",
    "dbt-gold-links", "dbt-gold-kpis",
]  # fmt: skip


def test_stages_and_from_stage_select_part_of_the_dag() -> None:
    sim = SimRun(
        {"pipeline": "daily-etl", "fromStage": "dbt-ml-scores", "logicalDate": "2025-01-01"},
        last_success=dict.fromkeys(DAILY_BEFORE_ML_SCORES, DAY),
    )
    drive_to_end(sim)
    assert [n.removeprefix("daily-etl-20250101-") for n in sim.created] == [
        "dbt-ml-scores",
        "notify",
    ]
    sim = SimRun({"pipeline": "ml-predict", "stages": ["invalidate-cache"]})
    drive_to_end(sim)
    assert [s["name"] for s in sim.status["stages"]] == ["invalidate-cache", "notify"]


def test_unknown_stage_is_an_invalid_spec() -> None:
    sim = SimRun({"pipeline": "ml-predict", "stages": ["dbt-silver"]})
    with pytest.raises(InvalidSpec, match="no stage 'dbt-silver'"):
        sim.step()


def test_replanning_with_a_lost_status_never_duplicates_jobs() -> None:
    """The operator died after creating Jobs but before writing status: Jobs are the truth."""
    sim = SimRun(
        {"pipeline": "ml-predict", "logicalDate": "2025-01-01"}, name="ml-predict-20250101"
    )
    sim.step()
    sim.finish("uc09-forecast", ok=False)
    sim.status = {}
    plan = sim.step(1)  # SimRun.step asserts that no existing Job name is created again
    assert plan.create_jobs == []
    assert sim.stage("uc09-forecast")["phase"] == "Retrying"
    assert sim.stage("uc10-detect")["phase"] == "Running"


def test_a_vanished_job_counts_as_a_failed_attempt() -> None:
    sim = SimRun(
        {"pipeline": "ml-training", "stages": ["validate-models"], "retries": {"limit": 0}}
    )
    sim.step()
    sim.jobs.clear()
    sim.step(1)
    assert sim.stage("validate-models")["phase"] == "Failed"
    assert "deleted" in sim.stage("validate-models")["message"]


def test_failed_finally_stage_fails_a_successful_run() -> None:
    sim = SimRun({"pipeline": "ml-training", "stages": ["validate-models"]})
    drive_to_end(sim, fail={"notify": 99})
    assert (sim.status["phase"], sim.condition()["reason"]) == ("Failed", "StageFailed")
    assert sim.status["failedStage"] == "notify"
    assert sim.status["outcome"] == "Succeeded"


def test_job_view_reads_conditions() -> None:
    from smepulse_operator.model import job_view

    job = {
        "metadata": {
            "name": "r-s",
            "labels": {"smepulse.io/stage": "s", "smepulse.io/attempt": "2"},
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "status": {
            "conditions": [
                {
                    "type": "FailureTarget",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "lastTransitionTime": "2025-01-01T00:05:00Z",
                },
            ]
        },
    }
    view = job_view(job)
    assert view == JobView(
        "r-s",
        "s",
        2,
        "failed",
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2025, 1, 1, 0, 5, tzinfo=dt.UTC),
        "timed out (activeDeadlineSeconds exceeded)",
    )
    assert job_view({"metadata": {"name": "x", "labels": {}}}) is None


def test_from_stage_on_an_upstream_not_published_for_that_date_fails_before_any_job() -> None:
    """Silver was last rebuilt for 2 January: gold for 1 January must not be published on it."""
    spec = {"pipeline": "daily-etl", "fromStage": "dbt-gold-facts", "logicalDate": "2025-01-01"}
    published = dict.fromkeys(DAILY_BEFORE_ML_SCORES, DAY)
    sim = SimRun(spec, last_success={**published, "dbt-silver": dt.date(2025, 1, 2)})
    sim.step()
    assert sim.created == []
    assert sim.status["phase"] == "Failed"
    assert sim.status["message"] == (
        "cannot start daily-etl at dbt-gold-facts for 2025-01-01: upstream stage dbt-silver "
        "last published for 2025-01-02, not 2025-01-01; run --from-stage dbt-silver first"
    )
    never = SimRun(spec)
    never.step()
    assert never.created == [] and never.status["phase"] == "Failed"
    assert "upstream stage verify-infra has never succeeded" in never.status["message"]


def test_a_failed_attempt_retried_at_once_still_gets_its_warning_event() -> None:
    """backoffSeconds 0: the next attempt starts in the reconcile that sees the failure, so
    the stage never shows Retrying; the Warning saying why the attempt failed is still
    posted, before the StageRetrying of the next attempt."""
    sim = SimRun(
        {
            "pipeline": "daily-etl",
            "logicalDate": "2025-01-01",
            "stages": ["verify-infra"],
            "retries": {"limit": 1, "backoffSeconds": 0},
        }
    )
    sim.step()
    sim.finish("verify-infra", ok=False, message="OOMKilled: over its memory limit")
    plan = sim.step(1)
    assert [(r.stage.name, r.attempt) for r in plan.create_jobs] == [("verify-infra", 2)]
    assert [(e.type, e.reason, e.message) for e in plan.events] == [
        (
            "Warning",
            "StageAttemptFailed",
            "stage verify-infra attempt 1 failed: OOMKilled: over its memory limit; "
            "it will be retried",
        ),
        (
            "Normal",
            "StageRetrying",
            "stage verify-infra attempt 2 started (Job daily-etl-20250101-verify-infra-2)",
        ),
    ]
    # Posted once: the next reconcile (attempt 2 running) says nothing more.
    assert sim.step(1).events == []

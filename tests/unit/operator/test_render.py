"""Pure object builders: the stage Job and the PipelineRun."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from smepulse.catalog import load_catalog
from smepulse.settings import Settings
from smepulse_operator.model import RunRef, job_name, parse_spec
from smepulse_operator.planning import FinallyContext, JobRequest
from smepulse_operator.render import job_template, render_child_run, render_job, render_run

pytestmark = pytest.mark.unit

REF = RunRef("daily-etl-20250101", "prod", "uid-7", 1, dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
PIPELINE = load_catalog().pipeline("daily-etl")


def job(
    spec: dict[str, object] | None = None,
    stage: str = "dbt-silver",
    attempt: int = 1,
    ctx: FinallyContext | None = None,
) -> dict[str, object]:
    settings = Settings(
        job_image="img:1", job_config_map="cm", job_secret="sec", job_service_account="runner"
    )
    run_spec = parse_spec({"pipeline": "daily-etl", **(spec or {})}, "test")
    tpl = job_template(settings, run_spec, dt.date(2025, 1, 1))
    return render_job(REF, tpl, JobRequest(PIPELINE.stage(stage), attempt, ctx))


def test_job_identity_ownership_and_labels() -> None:
    doc = job(attempt=2)
    meta = doc["metadata"]
    assert meta["name"] == "daily-etl-20250101-dbt-silver-2"  # type: ignore[index]
    assert meta["labels"]["smepulse.io/run"] == REF.name  # type: ignore[index]
    assert meta["labels"]["smepulse.io/stage"] == "dbt-silver"  # type: ignore[index]
    assert meta["labels"]["smepulse.io/attempt"] == "2"  # type: ignore[index]
    assert meta["ownerReferences"] == [
        {  # type: ignore[index]
            "apiVersion": "smepulse.io/v1alpha1",
            "kind": "PipelineRun",
            "name": REF.name,
            "uid": "uid-7",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_job_spec_hardening_and_configuration() -> None:
    spec = job()["spec"]
    assert spec["backoffLimit"] == 0  # type: ignore[index]
    assert spec["activeDeadlineSeconds"] == PIPELINE.stage("dbt-silver").timeout_seconds  # type: ignore[index]
    assert "ttlSecondsAfterFinished" not in spec  # type: ignore[operator]
    pod = spec["template"]["spec"]  # type: ignore[index]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "runner"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # No <SERVICE>_PORT=tcp://... variables: they collide with the stages' SMEPULSE_* settings.
    assert pod["enableServiceLinks"] is False
    (c,) = pod["containers"]
    assert c["image"] == "img:1" and c["args"] == ["smepulse", "stage", "dbt-silver"]
    assert "command" not in c  # the image's entrypoint (tini) stays PID 1
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert c["envFrom"] == [
        {"configMapRef": {"name": "cm", "optional": False}},
        {"secretRef": {"name": "sec", "optional": True}},
    ]
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["SMEPULSE_LOGICAL_DATE"] == "2025-01-01" and env["SMEPULSE_RUN_ID"] == REF.name
    assert env["SMEPULSE_PIPELINE"] == "daily-etl" and json.loads(env["SMEPULSE_PARAMS"]) == {}
    assert "SMEPULSE_RUN_OUTCOME" not in env


def test_spec_overrides_image_resources_and_params() -> None:
    doc = job(
        {
            "image": "mine:2",
            "params": {"k": "v"},
            "resources": {"limits": {"memory": "8Gi"}, "requests": {"cpu": 2}},
        }
    )
    (c,) = doc["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    assert c["image"] == "mine:2"
    catalog = PIPELINE.stage("dbt-silver").resources
    assert c["resources"]["limits"] == {**catalog.limits, "memory": "8Gi"}
    assert c["resources"]["requests"] == {**catalog.requests, "cpu": "2"}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert json.loads(env["SMEPULSE_PARAMS"]) == {"k": "v"}


def test_the_shared_warehouse_claim_is_mounted_in_every_stage() -> None:
    """SMEPULSE_JOB_WAREHOUSE_CLAIM: the embedded warehouse's volume in each stage Pod."""
    assert "warehouse" not in json.dumps(job()["spec"])  # off by default: /tmp only
    settings = Settings(
        job_image="img:1",
        job_config_map="cm",
        job_secret="sec",
        job_warehouse_claim="smepulse-warehouse",
        job_warehouse_mount_path="/data/smepulse",
    )
    tpl = job_template(settings, parse_spec({"pipeline": "daily-etl"}, "t"), dt.date(2025, 1, 1))
    for stage in ("verify-infra", "dbt-silver", "notify"):
        doc = render_job(REF, tpl, JobRequest(PIPELINE.stage(stage), 1, None))
        pod = doc["spec"]["template"]["spec"]  # type: ignore[index]
        (c,) = pod["containers"]
        assert c["volumeMounts"] == [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "warehouse", "mountPath": "/data/smepulse"},
        ]
        assert {
            "name": "warehouse",
            "persistentVolumeClaim": {"claimName": "smepulse-warehouse"},
        } in pod["volumes"]


def test_finally_stage_gets_the_outcome() -> None:
    doc = job(stage="notify", ctx=FinallyContext("Failed", "dbt-silver", "stage dbt-silver failed"))
    (c,) = doc["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert (env["SMEPULSE_RUN_OUTCOME"], env["SMEPULSE_FAILED_STAGE"]) == ("Failed", "dbt-silver")
    assert env["SMEPULSE_FAILURE_MESSAGE"] == "stage dbt-silver failed"


def test_long_job_names_are_truncated_with_a_hash() -> None:
    run = "backfill-external-sync-2025-01-01-with-a-very-long-suffix-xyz"
    a, b = job_name(run, "dbt-external-silver", 1), job_name(run, "dbt-external-silver", 2)
    assert len(a) <= 63 and len(b) <= 63 and a != b
    assert a.startswith("backfill-external-sync") and a == job_name(run, "dbt-external-silver", 1)
    assert job_name("r", "s", 1) == "r-s"


def test_runs_and_child_runs() -> None:
    doc = render_run("daily-etl-20250101", "prod", "daily-etl", dt.date(2025, 1, 1), {"a": "b"})
    assert doc["spec"] == {
        "pipeline": "daily-etl",
        "logicalDate": "2025-01-01",
        "params": {"a": "b"},
        "concurrencyPolicy": "Queue",  # runs the system creates never overlap (gap 6)
    }
    spec = parse_spec(
        {
            "pipeline": "daily-etl",
            "image": "x:1",
            "ttlSecondsAfterFinished": 60,
            "params": {"a": "b"},
            "retries": {"limit": 3},
        },
        "t",
    )
    child = render_child_run(REF, spec, "ml-predict", "ml-predict-20250101", dt.date(2025, 1, 1))
    assert child["metadata"]["labels"]["smepulse.io/triggered-by"] == REF.name
    assert "ownerReferences" not in child["metadata"]  # a run of its own, outlives the parent
    assert child["spec"] == {
        "pipeline": "ml-predict",
        "logicalDate": "2025-01-01",
        "concurrencyPolicy": "Queue",
        "params": {"a": "b"},
        "image": "x:1",
        "ttlSecondsAfterFinished": 60,
    }


def test_an_evicted_pod_does_not_spend_an_attempt() -> None:
    """Gap 8: backoffLimit 0 (the operator owns retries) with a podFailurePolicy that ignores
    disruptions (drain, preemption, taint eviction: the control plane's DisruptionTarget
    condition) and a Pod deleted by hand (SIGTERM: exit 143), so the Job replaces such a Pod
    instead of failing the attempt."""
    spec = parse_spec({"pipeline": "ml-training"}, "t")
    stage = load_catalog().pipeline("ml-training").stage("validate-models")
    job = render_job(REF, job_template(Settings(), spec, dt.date(2025, 1, 1)), JobRequest(stage, 1))
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["podFailurePolicy"] == {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [143]}},
        ]
    }
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # required by the API

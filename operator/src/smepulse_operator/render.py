"""Pure builders: one function per Kubernetes object the operator writes.

* :func:`render_job` - a stage's Job (one per attempt);
* :func:`render_run` - a PipelineRun (``smepulse submit`` and trigger stages).

Objects are plain dicts in the API's JSON shape, so tests compare them directly and the
client sends them as they are.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from smepulse.catalog import Stage
from smepulse.settings import Settings
from smepulse_operator.model import (
    ANNOTATION_LOGICAL_DATE,
    API_VERSION,
    KIND,
    LABEL_ATTEMPT,
    LABEL_PIPELINE,
    LABEL_RUN,
    LABEL_STAGE,
    LABEL_TRIGGERED_BY,
    MANAGER,
    RunRef,
    RunSpec,
    job_name,
)
from smepulse_operator.planning import FinallyContext, JobRequest

RUN_AS_USER = 10001


@dataclass(frozen=True)
class JobTemplate:
    """What every Job of one run shares (from the run's spec and the operator's settings)."""

    pipeline: str
    logical_date: dt.date
    image: str
    config_map: str
    secret: str
    service_account: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    #: PersistentVolumeClaim mounted at ``warehouse_mount_path`` in every stage Pod (the
    #: embedded warehouse the stages share), or None.
    warehouse_claim: str | None = None
    warehouse_mount_path: str = "/var/lib/smepulse"


def job_template(
    settings: Settings, spec: RunSpec, logical_date: dt.date, image: str | None = None
) -> JobTemplate:
    """Spec overrides (image, resources) over the operator's defaults; ``image``, when given,
    is the one the run is pinned to."""
    return JobTemplate(
        pipeline=spec.pipeline,
        logical_date=logical_date,
        image=image or spec.image or settings.job_image,
        config_map=settings.job_config_map,
        secret=settings.job_secret,
        service_account=settings.job_service_account,
        params=dict(spec.params),
        requests=dict(spec.resources.requests) if spec.resources else {},
        limits=dict(spec.resources.limits) if spec.resources else {},
        warehouse_claim=settings.job_warehouse_claim,
        warehouse_mount_path=settings.job_warehouse_mount_path,
    )


def job_labels(run: str, pipeline: str, stage: str, attempt: int) -> dict[str, str]:
    return {
        LABEL_RUN: run,
        LABEL_PIPELINE: pipeline,
        LABEL_STAGE: stage,
        LABEL_ATTEMPT: str(attempt),
        "app.kubernetes.io/name": "smepulse",
        "app.kubernetes.io/component": "stage",
        "app.kubernetes.io/part-of": "smepulse",
        "app.kubernetes.io/managed-by": MANAGER,
    }


def owner_reference(ref: RunRef) -> dict[str, Any]:
    """The run controls its Jobs: deleting the run (TTL, kubectl) garbage-collects them."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": ref.name,
        "uid": ref.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def stage_env(ref: RunRef, tpl: JobTemplate, ctx: FinallyContext | None) -> list[dict[str, str]]:
    """Per-run settings as SMEPULSE_* variables (they win over the ConfigMap's envFrom)."""
    env = {
        "SMEPULSE_LOGICAL_DATE": tpl.logical_date.isoformat(),
        "SMEPULSE_RUN_ID": ref.name,
        "SMEPULSE_PIPELINE": tpl.pipeline,
        "SMEPULSE_PARAMS": json.dumps(dict(tpl.params), sort_keys=True),
        # Read-only root filesystem: tools that write under $HOME (dbt) use the /tmp volume.
        "HOME": "/tmp",
    }
    if ctx is not None:
        env["SMEPULSE_RUN_OUTCOME"] = ctx.outcome
        if ctx.failed_stage:
            env["SMEPULSE_FAILED_STAGE"] = ctx.failed_stage
        if ctx.message:
            env["SMEPULSE_FAILURE_MESSAGE"] = ctx.message[:2000]
    return [{"name": k, "value": v} for k, v in env.items()]


def render_job(ref: RunRef, tpl: JobTemplate, req: JobRequest) -> dict[str, Any]:
    """The Job for one attempt of one stage (``backoffLimit: 0``: the operator owns retries)."""
    stage: Stage = req.stage
    labels = job_labels(ref.name, tpl.pipeline, stage.name, req.attempt)
    resources = {
        "requests": {**stage.resources.requests, **tpl.requests},
        "limits": {**stage.resources.limits, **tpl.limits},
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # Stages never call the Kubernetes API: no token in the Pod.
        "automountServiceAccountToken": False,
        # No Service-link variables: Kubernetes would inject <SERVICE>_PORT=tcp://... for every
        # Service in the namespace, and the chart's smepulse-operator-metrics Service arrives as
        # SMEPULSE_OPERATOR_METRICS_PORT, which the stages' settings reject (issue #13).
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "stage",
                "image": tpl.image,
                "imagePullPolicy": "IfNotPresent",
                # args, not command: the image's entrypoint (tini) stays PID 1 and forwards
                # SIGTERM, so deleting the Job stops the stage at once.
                "args": stage.command,
                "env": stage_env(ref, tpl, req.finally_ctx),
                "envFrom": [
                    # The chart's ConfigMap is required (settings for every stage); the Secret
                    # is optional so a stack without credentials (dev, tests) still starts.
                    {"configMapRef": {"name": tpl.config_map, "optional": False}},
                    {"secretRef": {"name": tpl.secret, "optional": True}},
                ],
                "resources": {k: v for k, v in resources.items() if v},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}],
    }
    if tpl.warehouse_claim:
        # The embedded warehouse on one volume: every stage of every run sees what the
        # previous one wrote. DuckDB writers take turns through the advisory lock beside the
        # file (smepulse.warehouse.duckdb_lock), which holds across Pods on one node (POSIX
        # locks on the same inode); see the chart's embeddedWarehouse for the limits.
        pod_spec["containers"][0]["volumeMounts"].append(
            {"name": "warehouse", "mountPath": tpl.warehouse_mount_path}
        )
        pod_spec["volumes"].append(
            {"name": "warehouse", "persistentVolumeClaim": {"claimName": tpl.warehouse_claim}}
        )
    if tpl.service_account:
        pod_spec["serviceAccountName"] = tpl.service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(ref.name, stage.name, req.attempt),
            "namespace": ref.namespace,
            "labels": labels,
            "annotations": {ANNOTATION_LOGICAL_DATE: tpl.logical_date.isoformat()},
            "ownerReferences": [owner_reference(ref)],
        },
        "spec": {
            "backoffLimit": 0,
            # A Pod evicted by a node drain, preemption or the taint manager (the control
            # plane marks it DisruptionTarget), or simply deleted (`kubectl delete pod`: its
            # container gets SIGTERM and exits 143 under tini), is replaced in the same Job
            # without counting as a failure: an attempt (the operator's retries) is spent only
            # on the stage's own errors. Cancel and run timeouts delete the Job itself, so
            # nothing is replaced then; a stage's own deadline fails its Job regardless.
            "podFailurePolicy": {"rules": POD_FAILURE_RULES},
            "activeDeadlineSeconds": stage.timeout_seconds,
            # No ttlSecondsAfterFinished: the run's TTL deletes its Jobs through ownership.
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


POD_FAILURE_RULES = [
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
    {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [143]}},
]


def render_run(
    name: str,
    namespace: str,
    pipeline: str,
    logical_date: dt.date,
    params: Mapping[str, str] | None = None,
    triggered_by: str | None = None,
    extra_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A PipelineRun; ``triggered_by`` labels a child run with its parent's name."""
    labels = {LABEL_PIPELINE: pipeline, "app.kubernetes.io/part-of": "smepulse"}
    if triggered_by:
        labels[LABEL_TRIGGERED_BY] = triggered_by
    # Runs the system creates (CronJobs via `smepulse submit`, trigger stages) queue behind an
    # active run of the same pipeline: an overrunning daily-etl must not overlap the next
    # day's on the same warehouse. People choose otherwise in their own PipelineRuns.
    spec: dict[str, Any] = {
        "pipeline": pipeline,
        "logicalDate": logical_date.isoformat(),
        "concurrencyPolicy": "Queue",
    }
    if params:
        spec["params"] = dict(params)
    spec.update(extra_spec or {})
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def render_child_run(
    ref: RunRef, spec: RunSpec, pipeline: str, name: str, logical_date: dt.date
) -> dict[str, Any]:
    """The run a trigger stage starts: same date, params, image and TTL as its parent.

    No owner reference: the child is a run of its own and outlives its parent's TTL.
    """
    extra: dict[str, Any] = {}
    if spec.image:
        extra["image"] = spec.image
    if spec.ttl_seconds_after_finished is not None:
        extra["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    return render_run(
        name,
        ref.namespace,
        pipeline,
        logical_date,
        spec.params,
        triggered_by=ref.name,
        extra_spec=extra,
    )

"""One reconcile of one PipelineRun: load state from the API, plan, apply. Blocking I/O (it runs
in a worker thread of the operator; see :mod:`smepulse_operator.runtime`).

Order of effects, chosen so that dying between any two of them is harmless:

1. runs to cancel (concurrencyPolicy Replace): an idempotent patch;
2. Jobs to delete (cancel/timeout): deleting a gone Job is a no-op;
3. Jobs to create and child runs to trigger: deterministic names, 409 = already done;
4. the status patch, last: until it lands, the next reconcile re-derives the same plan from
   the Jobs that now exist, so nothing is created twice and nothing is lost;
5. deleting the run after its TTL.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from smepulse.catalog import Catalog
from smepulse.settings import Settings
from smepulse_operator import metrics
from smepulse_operator.kube import ApiRejected, ApiUnavailable, Kube
from smepulse_operator.model import (
    CONTAINER_FAILED,
    IMAGE_PULL_REASONS,
    TERMINAL_PHASES,
    InvalidSpec,
    JobView,
    Note,
    RunRef,
    RunSpec,
    job_view,
    parse_spec,
    parse_time,
    pod_stuck_reason,
    utcnow,
    with_pod_failures,
)
from smepulse_operator.planning import Peer, Plan, RunInput, logical_date, plan_run
from smepulse_operator.render import job_template, render_child_run, render_job
from smepulse_operator.status import RunStatus, build_status, stage_records, status_changed

log = logging.getLogger(__name__)


@dataclass
class Result:
    """What the caller needs after a reconcile: the body (for Events) and the plan."""

    body: Mapping[str, Any] | None
    plan: Plan = field(default_factory=Plan)
    pipeline: str = ""
    notes: list[Note] = field(default_factory=list)

    @property
    def gone(self) -> bool:
        return self.body is None or self.plan.delete_run

    @property
    def terminal(self) -> bool:
        status = (self.body or {}).get("status") or {}
        phase = (self.plan.status or status).get("phase")
        return phase in TERMINAL_PHASES


class Reconciler:
    def __init__(self, kube: Kube, settings: Settings, catalog: Catalog) -> None:
        self.kube, self.settings, self.catalog = kube, settings, catalog
        self.tracker = metrics.RunTracker()
        self.reported: set[tuple[str, str]] = set()  # (Job, reason) already posted as an Event

    def reconcile(self, namespace: str, name: str) -> Result:
        """Bring one run one step forward; InvalidSpec after recording it in the status."""
        started = time.monotonic()
        try:
            return self._reconcile(namespace, name)
        except ApiUnavailable:
            metrics.RECONCILE_ERRORS.labels("api").inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)

    def _reconcile(self, namespace: str, name: str) -> Result:
        body = self.kube.get_run(namespace, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return Result(None)
        ref = RunRef.from_body(body)
        status: Mapping[str, Any] = body.get("status") or {}
        spec = self._spec(body, ref, status)
        pipeline = self.catalog.pipelines[spec.pipeline]
        jobs, job_images = self._jobs(ref, status)
        if status.get("phase") not in TERMINAL_PHASES and any(
            j.state == "failed" and j.message == CONTAINER_FAILED for j in jobs
        ):
            # A failed Job says only BackoffLimitExceeded; its Pod says OOMKilled & co.
            jobs = with_pod_failures(jobs, self.kube.list_pods(ref.namespace, ref.name))
        jobs, stuck, stuck_notes, stuck_wake = self._stuck(ref, jobs)
        peers: list[Peer] = []
        last_success: dict[str, dt.date] = {}
        # Other runs matter only before the start, and only to the concurrency gate (not for
        # Allow, the default) and to fromStage: a list of every run in the namespace per new
        # run costs the API server O(runs) for nothing otherwise.
        if not status.get("startTime") and (spec.concurrency_policy != "Allow" or spec.from_stage):
            others = self.kube.list_runs(ref.namespace)
            peers = self._peers(ref, spec.pipeline, others)
            if spec.from_stage:
                last_success = newest_successes(others)
        run = RunInput(
            ref, spec, status, jobs, peers, self.settings.timezone, last_success=last_success
        )
        try:
            plan = plan_run(pipeline, run, utcnow())
        except InvalidSpec as exc:
            self._record_invalid(ref, status, spec, str(exc))
            raise
        # One image per run: the one it started with (status.image, else its Jobs' image, in
        # case the status patch that records it was lost), so a `helm upgrade` mid-run does
        # not switch later stages to another image. A run that has not started yet takes the
        # operator's current default.
        image = str(
            status.get("image")
            or next(iter(job_images), None)
            or spec.image
            or self.settings.job_image
        )
        if plan.status is not None and plan.status.get("startTime"):
            plan.status["image"] = image
        plan.delete_jobs.extend(j for j in stuck if j not in plan.delete_jobs)
        plan.events.extend(stuck_notes)
        if stuck_wake is not None:
            plan.wake_in(stuck_wake)
        try:
            self._apply(ref, spec, plan, {j.name for j in jobs}, logical_date(run), image)
        except ApiRejected as exc:
            if not exc.invalid:
                raise
            return self._job_rejected(body, ref, status, spec, jobs, str(exc))
        if plan.status is not None and status_changed(status, plan.status):
            self.kube.patch_run_status(namespace, name, plan.status)
            metrics.observe_stage_changes(spec.pipeline, status, plan.status)
            self.tracker.update(ref.uid, namespace, spec.pipeline, plan.status)
            if plan.finished:
                cond = plan.status["conditions"][0]
                metrics.FINISHED.labels(spec.pipeline, plan.status["phase"], cond["reason"]).inc()
        elif plan.status is None:
            self.tracker.update(ref.uid, namespace, spec.pipeline, status)
        if plan.delete_run:
            log.info("deleting %s/%s: ttlSecondsAfterFinished passed", namespace, name)
            self.kube.delete_run(namespace, name)
            self.tracker.forget(ref.uid)
        return Result(body, plan, spec.pipeline, list(plan.events))

    def _spec(self, body: Mapping[str, Any], ref: RunRef, status: Mapping[str, Any]) -> RunSpec:
        where = f"PipelineRun {ref.namespace}/{ref.name}"
        try:
            spec = parse_spec(body.get("spec") or {}, where)
            if spec.ttl_seconds_after_finished is None:
                # Runs never pile up: the operator's default TTL when the spec sets none.
                spec = spec.model_copy(
                    update={
                        "ttl_seconds_after_finished": self.settings.operator_default_ttl_seconds
                    }
                )
            if spec.pipeline not in self.catalog.pipelines:
                raise InvalidSpec(
                    f"{where}: unknown pipeline {spec.pipeline!r}; this operator knows "
                    f"{', '.join(self.catalog.pipelines)}"
                )
            return spec
        except InvalidSpec as exc:
            self._record_invalid(ref, status, None, str(exc))
            raise

    def _jobs(
        self, ref: RunRef, status: Mapping[str, Any] | None = None
    ) -> tuple[list[JobView], list[str]]:
        """Jobs owned by this very run (a same-named earlier run's leftovers do not count),
        and the images they run, oldest Job first.

        With ``status``, the API server's watch cache is read first, as informers do; if it is
        behind what the status already records (see :func:`_behind`), the Jobs are read again
        consistently. A cache behind a Job's newest state otherwise only delays a step until
        the Job's next event or the resync.
        """
        views, images = self._owned(
            ref, self.kube.list_jobs(ref.namespace, ref.name, cached=status is not None)
        )
        if status is not None and _behind(status, views):
            views, images = self._owned(ref, self.kube.list_jobs(ref.namespace, ref.name))
        return views, [image for _, image in sorted(images)]

    def _owned_names(self, ref: RunRef) -> set[str]:
        """Names of the Jobs this run owns, read consistently (the watch cache may not have a
        Job this operator created just before a crash, before it could record it)."""
        return {
            view.name for view in self._owned(ref, self.kube.list_jobs(ref.namespace, ref.name))[0]
        }

    @staticmethod
    def _owned(
        ref: RunRef, items: list[dict[str, Any]]
    ) -> tuple[list[JobView], list[tuple[str, str]]]:
        """The Jobs of ``items`` this very run owns, and (creationTimestamp, image) of each of
        their containers."""
        views: list[JobView] = []
        images: list[tuple[str, str]] = []
        for job in items:
            meta = job.get("metadata") or {}
            owners = meta.get("ownerReferences") or []
            view = job_view(job)
            if view is not None and any(o.get("uid") == ref.uid for o in owners):
                views.append(view)
                containers = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
                for c in containers.get("containers") or []:
                    if c.get("image"):
                        images.append((str(meta.get("creationTimestamp") or ""), c["image"]))
        return views, images

    def _stuck(
        self, ref: RunRef, jobs: list[JobView]
    ) -> tuple[list[JobView], list[str], list[Note], float | None]:
        """Active Jobs whose Pod cannot start (ImagePullBackOff, Unschedulable, ...).

        Reported at once as a Warning Event; once the Pod has been stuck for
        ``operator_image_pull_seconds`` (its image cannot be pulled) or
        ``operator_stuck_pod_seconds`` (anything else) the attempt counts as failed with that reason (so the
        planner retries or fails the stage) and its Job is deleted, instead of the stage
        burning its whole activeDeadlineSeconds. Returns the jobs (stuck ones turned failed),
        the names of the Jobs to delete, the Events to post and when to look again.
        """
        # A Job with a Ready Pod has started: only the others can be stuck, and when none is,
        # the Pod list (the costliest call of a reconcile under load) is not needed at all.
        active = {j.name: j for j in jobs if j.state == "active" and not j.deleting and not j.ready}
        if not active:
            return jobs, [], [], None
        notes: list[Note] = []
        wake: float | None = None
        now = utcnow()
        stuck_grace = self.settings.operator_stuck_pod_seconds
        pull_grace = self.settings.operator_image_pull_seconds
        failed: dict[str, JobView] = {}
        for pod in self.kube.list_pods(ref.namespace, ref.name):
            meta = pod.get("metadata") or {}
            job = active.get(str((meta.get("labels") or {}).get("job-name") or ""))
            why = pod_stuck_reason(pod)
            if job is None or why is None:
                continue
            if (job.name, why.split(":")[0]) not in self.reported:
                self.reported.add((job.name, why.split(":")[0]))
                notes.append(
                    Note("Warning", "StagePodStuck", f"stage {job.stage} (Job {job.name}): {why}")
                )
            since = parse_time(meta.get("creationTimestamp")) or now
            grace = pull_grace if why.split(":")[0] in IMAGE_PULL_REASONS else stuck_grace
            if (now - since).total_seconds() >= grace:
                failed[job.name] = replace(
                    job, state="failed", finished=now, message=f"the Pod could not start: {why}"
                )
            else:
                left = grace - (now - since).total_seconds()
                wake = left if wake is None else min(wake, left)
        return [failed.get(j.name, j) for j in jobs], list(failed), notes, wake

    def _peers(self, ref: RunRef, pipeline: str, others: list[dict[str, Any]]) -> list[Peer]:
        peers = []
        for other in others:
            meta, spec = other.get("metadata") or {}, other.get("spec") or {}
            if meta.get("uid") == ref.uid or spec.get("pipeline") != pipeline:
                continue
            peers.append(
                Peer(
                    name=meta.get("name", ""),
                    created=parse_time(meta.get("creationTimestamp")) or ref.created,
                    phase=str((other.get("status") or {}).get("phase") or "Pending"),
                    cancel=bool(spec.get("cancel")),
                )
            )
        return peers

    def _apply(
        self,
        ref: RunRef,
        spec: RunSpec,
        plan: Plan,
        existing: set[str],
        date: dt.date,
        image: str,
    ) -> None:
        for other in plan.cancel_runs:
            log.info("cancelling %s/%s (concurrencyPolicy Replace)", ref.namespace, other)
            self.kube.patch_run(ref.namespace, other, {"spec": {"cancel": True}})
        for job in plan.delete_jobs:
            self.kube.delete_job(ref.namespace, job)
        tpl = job_template(self.settings, spec, date, image=image)
        for req in plan.create_jobs:
            body = render_job(ref, tpl, req)
            job = body["metadata"]["name"]
            if self.kube.create_job(body):
                metrics.JOBS_CREATED.labels(spec.pipeline, req.stage.name).inc()
            elif job not in existing and job not in self._owned_names(ref):
                # A Job of that name exists but is not ours: an earlier run with the same name
                # whose Jobs the garbage collector has not removed yet. Wait for it.
                raise ApiUnavailable(
                    f"Job {ref.namespace}/{job} exists but belongs to another run; "
                    "waiting for the garbage collector to remove it"
                )
        for child in plan.trigger_runs:
            created = self.kube.create_run(
                render_child_run(ref, spec, child.pipeline, child.name, child.logical_date)
            )
            verb = "created" if created else "already existed:"
            plan.events.append(
                Note("Normal", "RunTriggered", f"{verb} {child.name} ({child.pipeline})")
            )

    def _job_rejected(
        self,
        body: Mapping[str, Any],
        ref: RunRef,
        status: Mapping[str, Any],
        spec: RunSpec,
        jobs: list[JobView],
        message: str,
    ) -> Result:
        """The API refused a stage Job as invalid (422: e.g. requests above limits).

        Retrying cannot help and the run would never end (a Queue behind it would wait
        forever): stop its running Jobs and fail it now, reason JobRejected.
        """
        for job in jobs:
            if job.state == "active":
                self.kube.delete_job(ref.namespace, job.name)
        now = utcnow()
        doc = build_status(
            status,
            RunStatus(
                phase="Failed",
                reason="JobRejected",
                message=message,
                generation=ref.generation,
                logical_date=spec.logical_date or now.date(),
                start=parse_time(status.get("startTime")) or now,
                end=now,
            ),
            list(stage_records(status).values()),
            now,
        )
        self.kube.patch_run_status(ref.namespace, ref.name, doc)
        note = Note("Warning", "JobRejected", message)
        plan = Plan(status=doc, events=[note], finished=True)
        if spec.ttl_seconds_after_finished is not None:
            plan.wake_in(spec.ttl_seconds_after_finished)
        return Result(body, plan, spec.pipeline, [note])

    def _record_invalid(
        self, ref: RunRef, status: Mapping[str, Any], spec: RunSpec | None, message: str
    ) -> None:
        """Fail the run with reason InvalidSpec (once) so users see why in kubectl."""
        if status.get("phase") == "Failed":
            return
        now = utcnow()
        doc = build_status(
            status,
            RunStatus(
                phase="Failed",
                reason="InvalidSpec",
                message=message,
                generation=ref.generation,
                logical_date=(spec.logical_date if spec and spec.logical_date else now.date()),
                end=now,
            ),
            [],
            now,
        )
        self.kube.patch_run_status(ref.namespace, ref.name, doc)


def newest_successes(runs: list[dict[str, Any]]) -> dict[str, dt.date]:
    """Per stage name, the logical date of its newest successful attempt among ``runs``
    (PipelineRun bodies): the operator's record of what each stage last published."""
    newest: dict[str, tuple[dt.datetime, dt.date]] = {}
    for run in runs:
        status = run.get("status") or {}
        day = status.get("logicalDate") or (run.get("spec") or {}).get("logicalDate")
        if not day:
            continue
        try:
            logical = dt.date.fromisoformat(str(day))
        except ValueError:
            continue
        for stage in status.get("stages") or []:
            ended = parse_time(stage.get("completionTime"))
            if stage.get("phase") != "Succeeded" or ended is None:
                continue
            name = str(stage.get("name"))
            if name not in newest or ended > newest[name][0]:
                newest[name] = (ended, logical)
    return {name: day for name, (_, day) in newest.items()}


def _behind(status: Mapping[str, Any], views: list[JobView]) -> bool:
    """Whether Jobs read from the watch cache are older than what ``status`` records: a Job
    the status names is missing (the operator created it a moment ago), or the Job of a stage
    recorded as finished still looks active (another API server's cache, in an HA control
    plane, can be behind the one that served the earlier read)."""
    by_name = {view.name: view for view in views}
    for rec in stage_records(status).values():
        if not rec.job_name:
            continue
        view = by_name.get(rec.job_name)
        if view is None or (rec.phase in ("Succeeded", "Failed") and view.state == "active"):
            return True
    return False

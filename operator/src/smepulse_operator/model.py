"""The PipelineRun resource as the operator sees it: names, labels, the typed spec, and the
compact view of a stage Job. Pure: no API calls.

The CRD (``charts/smepulse/files/crds/pipelineruns.smepulse.io.yaml``) already rejects bad specs
at admission; :func:`parse_spec` validates again so that a resource written while an older
CRD was installed fails with a readable ``InvalidSpec`` instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

GROUP = "smepulse.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PipelineRun"
PLURAL = "pipelineruns"

LABEL_RUN = "smepulse.io/run"
LABEL_PIPELINE = "smepulse.io/pipeline"
LABEL_STAGE = "smepulse.io/stage"
LABEL_ATTEMPT = "smepulse.io/attempt"
LABEL_TRIGGERED_BY = "smepulse.io/triggered-by"
ANNOTATION_LOGICAL_DATE = "smepulse.io/logical-date"
FINALIZER = "smepulse.io/operator"
MANAGER = "smepulse-operator"

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
TERMINAL_PHASES: frozenset[str] = frozenset({"Succeeded", "Failed", "Cancelled"})
ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace", "Queue"]


class InvalidSpec(Exception):
    """The run's spec can never work (unknown pipeline or stage, bad field): fail the run."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class RetriesSpec(_Spec):
    limit: int = Field(ge=0, le=10)
    backoff_seconds: int = Field(0, ge=0, le=3600, alias="backoffSeconds")


class ResourcesSpec(_Spec):
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class RunSpec(_Spec):
    """``PipelineRun.spec``; field names follow the resource (camelCase aliases)."""

    pipeline: str
    logical_date: dt.date | None = Field(None, alias="logicalDate")
    params: dict[str, str] = Field(default_factory=dict)
    stages: tuple[str, ...] | None = None
    from_stage: str | None = Field(None, alias="fromStage")
    retries: RetriesSpec | None = None
    timeout_seconds: int | None = Field(None, gt=0, alias="timeoutSeconds")
    ttl_seconds_after_finished: int | None = Field(None, ge=0, alias="ttlSecondsAfterFinished")
    suspend: bool = False
    cancel: bool = False
    concurrency_policy: ConcurrencyPolicy = Field("Allow", alias="concurrencyPolicy")
    image: str | None = None
    resources: ResourcesSpec | None = None


def parse_spec(spec: Mapping[str, Any], where: str) -> RunSpec:
    """Typed spec, or :class:`InvalidSpec` naming the resource and the fields at fault."""
    raw = dict(spec)
    # Quantities may arrive as integers (x-kubernetes-int-or-string): make them strings.
    res = raw.get("resources")
    if isinstance(res, Mapping):
        raw["resources"] = {
            k: {n: str(v) for n, v in (res.get(k) or {}).items()} for k in ("requests", "limits")
        }
    try:
        return RunSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidSpec(f"{where}: {problems}") from None


@dataclass(frozen=True)
class RunRef:
    """Identity of one PipelineRun (what owner references and events need)."""

    name: str
    namespace: str
    uid: str
    generation: int
    created: dt.datetime

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> RunRef:
        meta = body["metadata"]
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            generation=int(meta.get("generation") or 1),
            created=parse_time(meta.get("creationTimestamp")) or utcnow(),
        )


@dataclass(frozen=True)
class Note:
    """A Kubernetes Event to post on the run."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


JobState = Literal["active", "succeeded", "failed"]


@dataclass(frozen=True)
class JobView:
    """One stage Job reduced to what planning needs (never the whole object)."""

    name: str
    stage: str
    attempt: int
    state: JobState
    started: dt.datetime | None
    finished: dt.datetime | None
    message: str
    deleting: bool = False
    ready: int = 0  # the Job controller's count of its Ready Pods: those have started


def job_view(job: Mapping[str, Any]) -> JobView | None:
    """Read a Job dict (API JSON); None when it lacks our stage/attempt labels."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    try:
        stage, attempt = labels[LABEL_STAGE], int(labels[LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None
    status = job.get("status") or {}
    state: JobState = "active"
    finished: dt.datetime | None = None
    message = ""
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        # SuccessCriteriaMet / FailureTarget come first (1.31+): the outcome is already decided.
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            state = "succeeded"
        elif cond.get("type") in ("Failed", "FailureTarget"):
            state = "failed"
            message = _failure_message(cond)
        else:
            continue
        finished = parse_time(cond.get("lastTransitionTime")) or finished
    if state == "succeeded":
        finished = parse_time(status.get("completionTime")) or finished
    return JobView(
        name=meta.get("name", ""),
        stage=stage,
        attempt=attempt,
        state=state,
        started=parse_time(status.get("startTime")) or parse_time(meta.get("creationTimestamp")),
        finished=finished,
        message=message,
        deleting=bool(meta.get("deletionTimestamp")),
        ready=int(status.get("ready") or 0),
    )


# What a failed Job's own condition tells (backoffLimit 0: BackoffLimitExceeded); the Pod can
# say more (see :func:`with_pod_failures`).
CONTAINER_FAILED = "the stage's container exited with an error"


def _failure_message(cond: Mapping[str, Any]) -> str:
    reason = cond.get("reason") or "Failed"
    if reason == "DeadlineExceeded":
        return "timed out (activeDeadlineSeconds exceeded)"
    if reason in ("BackoffLimitExceeded", "PodFailurePolicy"):
        return CONTAINER_FAILED
    return f"{reason}: {cond.get('message') or ''}".strip(": ")


def parse_time(value: Any) -> dt.datetime | None:
    """RFC 3339 (as the API writes it) to an aware datetime; None for missing/garbage."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_time(value: dt.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes timestamps."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_name(pipeline: str, logical_date: dt.date) -> str:
    """Deterministic run name (DESIGN.md "Naming runs"): ``<pipeline>-<YYYYMMDD>``."""
    return f"{pipeline}-{logical_date:%Y%m%d}"


def child_run_name(parent: str, parent_pipeline: str, child: str, logical_date: dt.date) -> str:
    """The run a trigger stage of run ``parent`` starts: named after that parent run.

    The parent ``<pipeline>-<YYYYMMDD>`` (what CronJobs and ``smepulse submit`` create)
    triggers ``<child>-<YYYYMMDD>``; any other parent name -- a re-run, a backfill, a
    ``generateName`` -- keeps its own suffix (``daily-etl-20250101-rerun`` triggers
    ``ml-predict-20250101-rerun``) or, if it does not start with the deterministic name, adds
    a hash of it. So a duplicate delivery of the same parent is a no-op (409) while a re-run
    of the parent triggers a new child.
    """
    base = run_name(child, logical_date)
    own = run_name(parent_pipeline, logical_date)
    if parent == own:
        return base
    if parent.startswith(own + "-"):
        return dns_label(base + parent[len(own) :])
    return dns_label(f"{base}-{hashlib.sha256(parent.encode()).hexdigest()[:8]}")


def job_name(run: str, stage: str, attempt: int) -> str:
    """``<run>-<stage>`` for the first attempt, ``<run>-<stage>-<n>`` after; at most 63 chars.

    Job names become the ``job-name`` label of their Pods, and label values stop at 63
    characters: longer names keep a readable prefix and end in a hash of the full name, so
    they stay deterministic and distinct.
    """
    full = f"{run}-{stage}" if attempt <= 1 else f"{run}-{stage}-{attempt}"
    return dns_label(full)


def dns_label(full: str, limit: int = 63) -> str:
    """``full`` if it fits, else ``<prefix>-<10 hex of sha256(full)>`` (deterministic)."""
    if len(full) <= limit:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:10]
    return f"{full[: limit - 11].rstrip('-.')}-{digest}"


# Container waiting reasons that mean "this Pod will not start by itself".
# The kubelet's reasons for an image it cannot pull: a wrong tag or a missing pull secret will
# not fix itself, so these fail sooner (settings.operator_image_pull_seconds).
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
STUCK_WAITING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


def pod_stuck_reason(pod: Mapping[str, Any]) -> str | None:
    """Why a stage Pod cannot start, as kubelet and the scheduler report it; None if it can.

    Unschedulable: the scheduler's ``PodScheduled=False`` condition with reason Unschedulable.
    Image or config problems: a container ``waiting`` with one of STUCK_WAITING_REASONS.
    """
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return f"Unschedulable: {cond.get('message') or 'no node fits the Pod'}"
    for cs in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_WAITING_REASONS:
            return f"{waiting['reason']}: {waiting.get('message') or cs.get('image') or ''}".rstrip(
                ": "
            )
    return None


def pod_failure_reason(pod: Mapping[str, Any]) -> str | None:
    """Why a failed stage Pod's container ended, when the kubelet says more than "Error":
    ``OOMKilled`` (over its memory limit), ``ContainerCannotRun``, ``StartError``, ...; for
    a plain non-zero exit, the stage's own ``error: ...`` line (the CLI's one-line error, found
    in the termination message, which ``FallbackToLogsOnError`` fills with the log's tail);
    None for a Pod that did not fail or that said nothing more."""
    status = pod.get("status") or {}
    if status.get("phase") != "Failed":
        return None
    limits = {
        c.get("name"): ((c.get("resources") or {}).get("limits") or {}).get("memory")
        for c in (pod.get("spec") or {}).get("containers") or []
    }
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or {}
        reason, code = term.get("reason"), term.get("exitCode")
        if reason == "OOMKilled":
            limit = limits.get(cs.get("name"))
            return (
                "OOMKilled: the container went over its memory limit"
                + (f" of {limit}" if limit else "")
                + f" and the kernel killed it (exit code {code})"
            )
        detail = str(term.get("message") or "").strip().splitlines()
        if reason and reason not in ("Error", "Completed"):
            return f"{reason} (exit code {code})" + (f": {detail[-1]}" if detail else "")
        said = [line for line in detail if line.startswith("error: ")]
        if reason == "Error" and said:
            line = said[-1].removeprefix("error: ")
            return f"exit code {code}: " + (line if len(line) <= 400 else line[:399] + "…")
    return None


def with_pod_failures(jobs: Sequence[JobView], pods: Sequence[Mapping[str, Any]]) -> list[JobView]:
    """``jobs`` with the generic failure message of a failed Job replaced by its Pod's reason
    (:func:`pod_failure_reason`; the Pod is found by its ``job-name`` label)."""
    failed = {j.name for j in jobs if j.state == "failed" and j.message == CONTAINER_FAILED}
    reasons: dict[str, str] = {}
    for pod in pods:
        name = str(((pod.get("metadata") or {}).get("labels") or {}).get("job-name") or "")
        why = pod_failure_reason(pod) if name in failed else None
        if why:
            reasons[name] = why
    return [
        dataclasses.replace(j, message=reasons[j.name]) if j.name in reasons else j for j in jobs
    ]

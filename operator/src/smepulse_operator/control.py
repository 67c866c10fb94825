"""Steering a cluster run from the terminal: ``smepulse cancel|suspend|resume|retry``.

``cancel``, ``suspend`` and ``resume`` set the run's control fields with a merge patch (the
CRD lets only those change after creation); the operator reacts on its next reconcile.

``retry`` re-runs a Failed run from its failed stage: a new PipelineRun with the failed run's
spec (pipeline, logical date, params, image, retries, resources, ...) and ``spec.fromStage =
status.failedStage``. When stages on separate branches failed (ml-predict's uc09-forecast and
uc10-detect, say), no one stage has them all downstream and a run from one would be refused
(the other never succeeded): the re-run is then of the whole pipeline. Its name is deterministic, ``<run>-retry<n>`` (``n`` one more than the
failed run's own, 1 for a first retry), so a second ``retry`` of the same run finds it and
creates nothing, like ``smepulse submit``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import typer

from smepulse.catalog import load_catalog
from smepulse.errors import ConfigError, StageError
from smepulse.settings import Settings
from smepulse_operator.kube import (
    ApiRejected,
    ApiUnavailable,
    Kube,
    default_namespace,
    get_run_or_fail,
)
from smepulse_operator.model import LABEL_PIPELINE, dns_label
from smepulse_operator.render import render_run

LABEL_RETRY_OF = "smepulse.io/retry-of"
CONTROL = {
    "cancel": {"cancel": True},
    "suspend": {"suspend": True},
    "resume": {"suspend": False},
}
# Fields of a spec that a retry does not copy: it has its own start point and controls.
_NOT_COPIED = {"cancel", "suspend", "fromStage", "stages", "pipeline", "logicalDate", "params"}
_RETRY = re.compile(r"^(?P<base>.+)-retry(?P<n>\d+)$")


def set_control(settings: Settings, name: str, action: str) -> dict[str, bool]:
    """Patch the control field of ``action`` (cancel/suspend/resume); returns what was set."""
    fields = CONTROL[action]
    kube = Kube.connect(settings)
    namespace = default_namespace(settings, kube.creds)
    try:
        run = get_run_or_fail(kube, namespace, name)
        phase = (run.get("status") or {}).get("phase") or "Pending"
        kube.patch_run(namespace, name, {"spec": fields})
    except (ApiRejected, ApiUnavailable) as exc:
        raise StageError(f"could not {action} {namespace}/{name}: {exc}") from None
    finally:
        kube.close()
    what = ", ".join(f"spec.{k}={str(v).lower()}" for k, v in fields.items())
    typer.echo(f"pipelinerun {namespace}/{name}: {what} (phase was {phase})")
    return fields


def retry_name(name: str) -> str:
    """``<run>-retry1`` for a first retry, ``<base>-retry<n+1>`` for a retry of a retry."""
    m = _RETRY.match(name)
    if m:
        return dns_label(f"{m['base']}-retry{int(m['n']) + 1}")
    return dns_label(f"{name}-retry1")


def retry_body(run: dict[str, Any]) -> dict[str, Any]:
    """The re-run from the failed stage; ConfigError when ``run`` did not fail at a stage."""
    meta, spec = run["metadata"], dict(run.get("spec") or {})
    status = run.get("status") or {}
    where = f"{meta['namespace']}/{meta['name']}"
    phase = status.get("phase") or "Pending"
    if phase != "Failed":
        raise ConfigError(f"pipelinerun {where} is {phase}, not Failed: nothing to retry")
    failed = status.get("failedStage")
    if not failed:
        raise ConfigError(
            f"pipelinerun {where} failed before any stage ({status.get('message') or 'no message'}):"
            " fix the cause and submit it again"
        )
    logical_date = status.get("logicalDate") or spec.get("logicalDate")
    extra = {k: v for k, v in spec.items() if k not in _NOT_COPIED}
    start = _start_stage(spec["pipeline"], failed, status.get("stages") or [])
    if start:
        extra["fromStage"] = start
    body = render_run(
        retry_name(meta["name"]),
        meta["namespace"],
        spec["pipeline"],
        dt.date.fromisoformat(str(logical_date)),
        spec.get("params") or {},
        extra_spec=extra,
    )
    body["metadata"]["labels"][LABEL_RETRY_OF] = meta["name"]
    body["metadata"]["labels"][LABEL_PIPELINE] = spec["pipeline"]
    if "concurrencyPolicy" not in extra:  # the failed run's (the CRD default), not Queue
        body["spec"].pop("concurrencyPolicy", None)
    return body


def _start_stage(pipeline_name: str, failed: str, stages: list[dict[str, Any]]) -> str | None:
    """The one failed stage with every failed main stage downstream of it (``failed`` first),
    or None: the failures are on separate branches and the whole pipeline must run again."""
    pipeline = load_catalog().pipeline(pipeline_name)
    main = {s.name for s in pipeline.stages}
    failures = {str(s.get("name")) for s in stages if s.get("phase") == "Failed"} & main
    for candidate in [failed, *sorted(failures)]:
        if candidate in main and failures <= pipeline.downstream(candidate):
            return candidate
    return None


def retry_run(settings: Settings, name: str) -> str:
    """Create (or find) the re-run of failed run ``name`` from its failed stage; its name."""
    kube = Kube.connect(settings)
    namespace = default_namespace(settings, kube.creds)
    try:
        body = retry_body(get_run_or_fail(kube, namespace, name))
        new = body["metadata"]["name"]
        created = kube.create_run(body)
    except (ApiRejected, ApiUnavailable) as exc:
        raise StageError(f"could not retry {namespace}/{name}: {exc}") from None
    finally:
        kube.close()
    stage = body["spec"].get("fromStage")
    where = (
        f"from stage {stage}" if stage else "from the start (stages on separate branches failed)"
    )
    if created:
        typer.echo(f"pipelinerun {namespace}/{new} created: {name} again {where}")
    else:
        typer.echo(f"pipelinerun {namespace}/{new} already exists: nothing to do")
    return str(new)

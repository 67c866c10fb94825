"""The kopf handlers: thin, each hands over to :class:`~smepulse_operator.runtime.Runtime`.

Run with ``kopf run -m smepulse_operator.handlers`` (tests) or ``smepulse operator``.
"""

from __future__ import annotations

from typing import Any

import kopf

from smepulse_operator import main as _main  # noqa: F401  (registers the startup handler)
from smepulse_operator.model import GROUP, KIND, LABEL_RUN, PLURAL, VERSION


@kopf.daemon(GROUP, VERSION, PLURAL, backoff=5, cancellation_timeout=10)
async def follow_run(
    name: str,
    namespace: str | None,
    uid: str,
    body: kopf.Body,
    stopped: kopf.DaemonStopped,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """One daemon per run: reconcile until the run is finished (and past its TTL)."""
    await memo.runtime.follow(namespace or "", name, uid, body, stopped)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def run_event(
    event: kopf.RawEvent,
    body: kopf.Body,
    uid: str,
    name: str,
    namespace: str | None,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A spec change (cancel, suspend, TTL) wakes the run's daemon, or follows a finished run
    again; a deletion drops its metrics."""
    if event.get("type") == "DELETED":
        memo.runtime.reconciler.tracker.forget(uid)
    elif body.get("metadata", {}).get("generation") != body.get("status", {}).get(
        "observedGeneration"
    ):
        memo.runtime.changed(namespace or "", name, uid, body)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_RUN: kopf.PRESENT})
async def job_event(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A stage Job changed: wake the daemon of the run that owns it.

    The API server sends only stage Jobs (the label selector set in
    :func:`smepulse_operator.main.configure`); ``labels=`` repeats the filter on this side.
    """
    for owner in body.get("metadata", {}).get("ownerReferences") or []:
        if owner.get("kind") == KIND:
            memo.runtime.wake(owner.get("uid", ""))

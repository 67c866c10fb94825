"""The operator's process-wide state, built once at startup and kept in kopf's ``memo``.

Each PipelineRun is followed by ONE kopf daemon (:meth:`Runtime.follow`), so there is exactly
one reconciler per run and no two reconciles of the same run ever overlap. The daemon
reconciles, then sleeps until the earliest of: a wake-up (an owned Job changed, the run's spec
changed, a run of the same pipeline finished), the plan's own deadline (retry backoff, run
timeout, TTL), or the safety-net interval (``operator_reconcile_interval_seconds``). The
blocking API calls run in a small thread pool so that a hundred runs need no hundred threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf

from smepulse.catalog import load_catalog
from smepulse.settings import Settings
from smepulse_operator.kube import ApiRejected, ApiUnavailable, Kube
from smepulse_operator.model import TERMINAL_PHASES, InvalidSpec
from smepulse_operator.reconciler import Reconciler, Result

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kube = Kube.connect(settings)
        self.reconciler = Reconciler(self.kube, settings, load_catalog())
        self.pool = ThreadPoolExecutor(settings.operator_workers, thread_name_prefix="reconcile")
        self.wakeups: dict[str, asyncio.Event] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # followers started outside kopf daemons
        self.pipelines: dict[str, tuple[str, str]] = {}  # uid -> (namespace, pipeline)
        self.ready = False
        self.last_api_ok = 0.0

    def wake(self, uid: str) -> None:
        event = self.wakeups.get(uid)
        if event is not None:
            event.set()

    def changed(self, namespace: str, name: str, uid: str, body: Any) -> None:
        """The run's spec changed: wake its daemon, or follow a finished run again.

        A run that finished without ``ttlSecondsAfterFinished`` has no daemon any more (kopf
        does not restart a daemon that returned). When the TTL is set afterwards, follow the
        run again here, so it is deleted on time and not only after an operator restart.
        """
        if uid in self.wakeups:
            self.wake(uid)
            return
        status, spec = body.get("status") or {}, body.get("spec") or {}
        if (
            status.get("phase") in TERMINAL_PHASES
            and spec.get("ttlSecondsAfterFinished") is not None
        ):
            task = asyncio.create_task(self.follow(namespace, name, uid, body, _NeverStopped()))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def wake_pipeline(self, namespace: str, pipeline: str) -> None:
        """A run ended: its queued/forbidden peers may proceed now, not at the next resync."""
        for uid, key in list(self.pipelines.items()):
            if key == (namespace, pipeline):
                self.wake(uid)

    async def follow(self, namespace: str, name: str, uid: str, body: Any, stopped: Any) -> None:
        """The daemon body for one run; returns when the run is gone (every run has a TTL:
        its own or the operator's default, so a finished run is followed until deleted).

        Transient API failures (kopf.TemporaryError) end a follower started by
        :meth:`changed`; the next change of the run, or a restart, follows it again.
        """
        wake = self.wakeups.setdefault(uid, asyncio.Event())
        loop = asyncio.get_running_loop()
        try:
            while not stopped:
                wake.clear()
                result = await loop.run_in_executor(
                    self.pool, self._reconcile_once, namespace, name
                )
                self._post(result)
                if result.gone:
                    return
                self.pipelines[uid] = (namespace, result.pipeline)
                if result.plan.finished:
                    self.wake_pipeline(namespace, result.pipeline)
                if result.terminal and result.plan.requeue_after is None:
                    return
                delay = self.settings.operator_reconcile_interval_seconds
                if result.terminal and result.plan.requeue_after is not None:
                    # Finished: nothing changes but its TTL (or its spec, which wakes us), so
                    # no safety-net resyncs of finished runs for days.
                    delay = result.plan.requeue_after + 0.05
                elif result.plan.requeue_after is not None:
                    delay = min(delay, result.plan.requeue_after + 0.05)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(delay, 0.05))
        finally:
            self.wakeups.pop(uid, None)
            self.pipelines.pop(uid, None)

    def _reconcile_once(self, namespace: str, name: str) -> Result:
        try:
            result = self.reconciler.reconcile(namespace, name)
        except ApiUnavailable as exc:
            raise kopf.TemporaryError(f"{exc}; retrying", delay=5) from exc
        except ApiRejected as exc:
            # RBAC or validation: retrying soon will not help, but a fixed Role might.
            raise kopf.TemporaryError(f"{exc}; retrying in 30s", delay=30) from exc
        except InvalidSpec as exc:
            raise kopf.PermanentError(
                f"{exc} (the run is marked Failed, reason InvalidSpec)"
            ) from exc
        self.last_api_ok = time.monotonic()
        return result

    @staticmethod
    def _post(result: Result) -> None:
        if result.body is None:
            return
        for note in result.notes:
            kopf.event(
                cast(kopf.Body, result.body),
                type=note.type,
                reason=note.reason,
                message=note.message,
            )

    def api_ok(self) -> bool:
        """Readiness: the API answered recently (a reconcile, or a ping now)."""
        if time.monotonic() - self.last_api_ok < 30:
            return True
        try:
            self.kube.ping()
        except (ApiUnavailable, ApiRejected) as exc:
            log.warning("readiness: %s", exc)
            return False
        self.last_api_ok = time.monotonic()
        return True

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.kube.close()


class _NeverStopped:
    """``stopped`` for followers outside kopf's daemons: falsy; they end by returning."""

    def __bool__(self) -> bool:
        return False

"""Following a cluster run from the terminal: ``smepulse watch`` and ``smepulse logs``.

``watch`` turns the PipelineRun's status into the local runner's run record and shows it with
the runner's own view (:mod:`smepulse.runner.view`): the live stage table on a terminal, one
line per stage change otherwise, and the runner's summary at the end. Updates come from a
watch on the one PipelineRun (``metadata.name`` field selector), re-opened from the last
resourceVersion when the server ends it, re-listed when that version is too old (410).
Exit codes are ``smepulse run``'s: 0 Succeeded, 1 Failed or Cancelled, 2 no such run.

``logs`` reads the stage Pods' logs, found by the operator's labels (``smepulse.io/run``,
``smepulse.io/stage``, ``smepulse.io/attempt``); lines are prefixed with the stage (and the
attempt after the first) when more than one Pod is shown. ``--follow`` streams every Pod of
the run as it starts until the run is terminal and every stream has ended.
"""

from __future__ import annotations

import datetime as dt
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from rich.console import Console

from smepulse.catalog import load_catalog
from smepulse.errors import ConfigError, StageError
from smepulse.runner.history import RunRecord
from smepulse.runner.history import StageRecord as ViewStage
from smepulse.runner.view import RunView, print_summary
from smepulse.settings import Settings
from smepulse_operator.kube import (
    ApiRejected,
    ApiUnavailable,
    Kube,
    api_client,
    default_namespace,
    get_run_or_fail,
)
from smepulse_operator.model import (
    GROUP,
    LABEL_ATTEMPT,
    LABEL_RUN,
    LABEL_STAGE,
    PLURAL,
    TERMINAL_PHASES,
    VERSION,
    parse_time,
)

WATCH_SECONDS = 60  # the server ends each watch after this; it is re-opened from where it was
_RECONNECTS = 5  # consecutive failed (re)connections before giving up


def exit_code(phase: str) -> int:
    """``smepulse run``'s codes: 0 Succeeded, 1 anything else terminal."""
    return 0 if phase == "Succeeded" else 1


# -- status -> the runner's record ---------------------------------------------------------


def run_record(doc: Mapping[str, Any], now: dt.datetime | None = None) -> RunRecord:
    """The local runner's record for a PipelineRun (what :mod:`smepulse.runner.view` draws).

    Stages not yet in ``status.stages`` (a run still Pending) are listed from the catalog.
    """
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    status = doc.get("status") or {}
    now = now or dt.datetime.now(dt.UTC)
    pipeline = str(spec.get("pipeline") or "")
    finally_names: set[str] = set()
    catalog_stages: list[str] = []
    catalog = load_catalog()
    if pipeline in catalog.pipelines:
        p = catalog.pipeline(pipeline)
        finally_names = {s.name for s in p.finally_}
        catalog_stages = [
            *p.select(
                only=list(spec["stages"]) if spec.get("stages") else None,
                from_stage=spec.get("fromStage"),
            ),
            *finally_names,
        ]
    stages: list[ViewStage] = []
    for item in status.get("stages") or []:
        start, end = parse_time(item.get("startTime")), parse_time(item.get("completionTime"))
        stages.append(
            ViewStage(
                name=str(item.get("name") or ""),
                state=str(item.get("phase") or "Pending"),
                attempts=int(item.get("attempts") or 0),
                is_finally=item.get("name") in finally_names,
                started_at=start,
                finished_at=end,
                duration_seconds=(end - start).total_seconds() if start and end else None,
                message=item.get("message") or None,
            )
        )
    if not stages:
        stages = [ViewStage(name=n, is_finally=n in finally_names) for n in catalog_stages]
    date_text = status.get("logicalDate") or spec.get("logicalDate")
    created = parse_time(meta.get("creationTimestamp")) or now
    start = parse_time(status.get("startTime"))
    end = parse_time(status.get("completionTime"))
    phase = str(status.get("phase") or "Pending")
    return RunRecord(
        run_id=str(meta.get("name") or ""),
        pipeline=pipeline,
        logical_date=dt.date.fromisoformat(str(date_text)) if date_text else created.date(),
        status=phase if phase in TERMINAL_PHASES else "Running",
        started_at=start or created,
        finished_at=end,
        duration_seconds=(end - start).total_seconds() if start and end else None,
        from_stage=spec.get("fromStage"),
        params=dict(spec.get("params") or {}),
        triggered=[str(t.get("name")) for t in status.get("triggered") or []],
        failed_stage=status.get("failedStage"),
        failure_message=(status.get("message") or None) if phase == "Failed" else None,
        stages=stages,
    )


# -- watch ---------------------------------------------------------------------------------


def _events(
    custom: client.CustomObjectsApi, namespace: str, name: str, version: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """One watch of the run from ``version``; ends when the server closes it."""
    w = watch.Watch()
    try:
        for event in w.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=version,
            timeout_seconds=WATCH_SECONDS,
            allow_watch_bookmarks=True,
            _request_timeout=(5, WATCH_SECONDS + 15),
        ):
            yield str(event["type"]), event["object"]
    finally:
        w.stop()


def follow_run(
    kube: Kube,
    api: client.ApiClient,
    namespace: str,
    name: str,
    deliver: Callable[[dict[str, Any] | None], bool],
) -> None:
    """Call ``deliver(doc)`` with the run now and at every change (``None`` = deleted) until
    it returns True. Runs in a thread of its own; errors go to ``deliver`` as exceptions by
    the caller's wrapper."""
    custom = client.CustomObjectsApi(api)
    doc = get_run_or_fail(kube, namespace, name)
    if deliver(doc):
        return
    version = str(doc["metadata"]["resourceVersion"])
    failures = 0
    while True:
        try:
            for kind, obj in _events(custom, namespace, name, version):
                failures = 0
                if kind == "ERROR":
                    if int(obj.get("code") or 0) == 410:  # too old: read it again
                        raise ApiException(status=410)
                    continue
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                if deliver(None if kind == "DELETED" else obj):
                    return
        except ApiException as exc:
            if exc.status != 410:
                failures += 1
                if failures > _RECONNECTS:
                    raise StageError(f"watch of pipelinerun {namespace}/{name}: {exc}") from None
                time.sleep(min(2.0**failures, 10.0))
                continue
            doc = get_run_or_fail(kube, namespace, name)
            version = str(doc["metadata"]["resourceVersion"])
            if deliver(doc):
                return
        except OSError as exc:  # urllib3's errors are OSErrors too: connection lost
            failures += 1
            if failures > _RECONNECTS:
                raise StageError(f"watch of pipelinerun {namespace}/{name}: {exc}") from None
            time.sleep(min(2.0**failures, 10.0))


def watch_run(settings: Settings, name: str, console: Console | None = None) -> int:
    """``smepulse watch``: the runner's stage table until the run is terminal; the exit code."""
    from smepulse.runner import _console

    console = console or _console()
    kube = Kube.connect(settings)
    namespace = default_namespace(settings, kube.creds)
    api = api_client(settings, kube.creds)
    updates: queue.Queue[tuple[str, Any]] = queue.Queue()

    def deliver(doc: dict[str, Any] | None) -> bool:
        updates.put(("doc", doc))
        phase = ((doc or {}).get("status") or {}).get("phase")
        return doc is None or phase in TERMINAL_PHASES

    def worker() -> None:
        try:
            follow_run(kube, api, namespace, name, deliver)
        except BaseException as exc:  # handed to the main thread, which raises it
            updates.put(("error", exc))

    thread = threading.Thread(target=worker, name=f"watch-{name}", daemon=True)
    thread.start()
    try:
        kind, first = updates.get()
        if kind == "error":
            raise first
        record = run_record(first)
        seen = {s.name: (s.state, s.attempts) for s in record.stages}
        with RunView(console, record) as view:
            for st in record.stages:
                if st.state != "Pending":
                    view.changed(st.name, st.state, st.attempts, st.message)
            while record.status not in TERMINAL_PHASES:
                try:
                    kind, doc = updates.get(timeout=0.25)
                except queue.Empty:
                    view.tick()
                    continue
                if kind == "error":
                    raise doc
                if doc is None:
                    raise StageError(f"pipelinerun {namespace}/{name} was deleted")
                record = view.record = run_record(doc)
                for st in record.stages:
                    if seen.get(st.name) != (st.state, st.attempts):
                        seen[st.name] = (st.state, st.attempts)
                        view.changed(st.name, st.state, st.attempts, st.message)
        print_summary(console, record, f"smepulse logs {name} -n {namespace}")
        return exit_code(record.status)
    finally:
        kube.close()
        api.close()


# -- logs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagePod:
    """A stage Pod of a run, as ``smepulse logs`` needs it."""

    name: str
    stage: str
    attempt: int
    phase: str
    created: dt.datetime | None
    container: str

    @property
    def started(self) -> bool:
        """Whether its container has logs to read (it ran or runs)."""
        return self.phase in ("Running", "Succeeded", "Failed")

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def label(self) -> str:
        return self.stage if self.attempt <= 1 else f"{self.stage}#{self.attempt}"


def stage_pod(pod: Mapping[str, Any]) -> StagePod | None:
    """The Pod's stage identity from its labels; None for a Pod without them."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if LABEL_STAGE not in labels:
        return None
    try:
        attempt = int(labels.get(LABEL_ATTEMPT) or 1)
    except ValueError:
        attempt = 1
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return StagePod(
        name=str(meta.get("name") or ""),
        stage=str(labels[LABEL_STAGE]),
        attempt=attempt,
        phase=str((pod.get("status") or {}).get("phase") or "Pending"),
        created=parse_time(meta.get("creationTimestamp")),
        container=str(containers[0].get("name") or "stage"),
    )


def stage_pods(kube: Kube, namespace: str, run: str, stage: str | None = None) -> list[StagePod]:
    """The run's stage Pods (of ``stage`` only, when given), oldest first."""
    pods = [p for p in (stage_pod(item) for item in kube.list_pods(namespace, run, stage)) if p]
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(pods, key=lambda p: (p.created or epoch, p.stage, p.attempt))


class _Printer:
    """Whole lines to ``out`` from several streams at once, each with its prefix."""

    def __init__(self, out: TextIO, prefixed: bool) -> None:
        self.out, self.prefixed = out, prefixed
        self.lock = threading.Lock()

    def line(self, pod: StagePod, text: str) -> None:
        with self.lock:
            self.out.write(f"[{pod.label()}] {text}\n" if self.prefixed else f"{text}\n")
            self.out.flush()


def _stream(core: client.CoreV1Api, namespace: str, pod: StagePod, follow: bool) -> Iterator[str]:
    resp = core.read_namespaced_pod_log(
        pod.name,
        namespace,
        container=pod.container,
        follow=follow,
        _preload_content=False,
        _request_timeout=(5, None) if follow else (5, 60),
    )
    try:
        pending = b""
        for chunk in resp.stream(4096):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                yield raw.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")
    finally:
        resp.release_conn()


def _print_pod(
    core: client.CoreV1Api, namespace: str, pod: StagePod, follow: bool, printer: _Printer
) -> None:
    try:
        for text in _stream(core, namespace, pod, follow):
            printer.line(pod, text)
    except ApiException as exc:
        reason = (exc.reason or "").strip() or str(exc.status)
        printer.line(pod, f"(no logs from pod {namespace}/{pod.name}: {exc.status} {reason})")


def print_logs(
    settings: Settings,
    run: str,
    stage: str | None = None,
    follow: bool = False,
    out: TextIO | None = None,
) -> int:
    """``smepulse logs``: print (or ``follow``) the stage Pods' logs; the exit code."""
    out = out or sys.stdout
    kube = Kube.connect(settings)
    namespace = default_namespace(settings, kube.creds)
    api = api_client(settings, kube.creds)
    core = client.CoreV1Api(api)
    try:
        doc = get_run_or_fail(kube, namespace, run)
        if stage is not None:
            known = {s.name for s in run_record(doc).stages}
            if known and stage not in known:
                raise ConfigError(
                    f"run {namespace}/{run} has no stage {stage!r}; its stages: "
                    + ", ".join(sorted(known))
                )
        try:
            if not follow:
                pods = [p for p in stage_pods(kube, namespace, run, stage) if p.started]
                if not pods:
                    print(f"no stage Pod of {namespace}/{run} has started yet", file=sys.stderr)
                    return 0
                printer = _Printer(out, prefixed=len(pods) > 1)
                for pod in pods:
                    _print_pod(core, namespace, pod, False, printer)
                return 0
            return _follow_logs(kube, core, namespace, run, stage, out)
        except (ApiRejected, ApiUnavailable) as exc:
            raise StageError(str(exc)) from None
    finally:
        kube.close()
        api.close()


def _follow_logs(
    kube: Kube,
    core: client.CoreV1Api,
    namespace: str,
    run: str,
    stage: str | None,
    out: TextIO,
) -> int:
    """Stream each stage Pod once it has started; stop when the run is terminal and every
    stream has ended. Pods are found by a watch (ended every few seconds to check the run)."""
    printer = _Printer(out, prefixed=stage is None)
    streams: dict[str, threading.Thread] = {}
    selector = f"{LABEL_RUN}={run}" + (f",{LABEL_STAGE}={stage}" if stage else "")

    def start(pod: StagePod) -> None:
        if pod.name in streams or not pod.started:
            return
        t = threading.Thread(
            target=_print_pod, args=(core, namespace, pod, True, printer), daemon=True
        )
        streams[pod.name] = t
        t.start()

    while True:
        for pod in stage_pods(kube, namespace, run, stage):
            start(pod)
        phase = ((get_run_or_fail(kube, namespace, run).get("status") or {}).get("phase")) or ""
        if phase in TERMINAL_PHASES:
            # Pods of the last moments have started by now; take them, then drain.
            for pod in stage_pods(kube, namespace, run, stage):
                start(pod)
            for t in streams.values():
                t.join()
            return 0
        w = watch.Watch()
        try:
            for event in w.stream(
                core.list_namespaced_pod,
                namespace,
                label_selector=selector,
                timeout_seconds=5,
                _request_timeout=(5, 20),
            ):
                seen = stage_pod(core.api_client.sanitize_for_serialization(event["object"]))
                if seen is not None:
                    start(seen)
        except ApiException as exc:
            if exc.status != 410:
                raise StageError(f"watch of the Pods of {namespace}/{run}: {exc}") from None
        finally:
            w.stop()

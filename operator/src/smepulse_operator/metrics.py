"""Prometheus metrics of the operator, served on ``settings.operator_metrics_port``.

* ``smepulse_pipelineruns{namespace,pipeline,phase}`` - runs the operator follows, by phase;
* ``smepulse_pipelineruns_queued{namespace,pipeline}`` - runs waiting (concurrencyPolicy Queue);
* ``smepulse_pipelineruns_finished_total{pipeline,phase,reason}`` - runs that ended;
* ``smepulse_stage_jobs_created_total{pipeline,stage}`` - stage Jobs created (retries included);
* ``smepulse_stage_duration_seconds{pipeline,stage,outcome}`` - stage start to end;
* ``smepulse_reconcile_seconds`` / ``smepulse_reconcile_errors_total{kind}`` - the loop itself.

One registry per process (not the global default), so importing this module twice in tests
does not collide and the endpoint shows only the operator's own series.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from smepulse_operator.model import parse_time

REGISTRY = CollectorRegistry(auto_describe=True)

RUNS = Gauge(
    "smepulse_pipelineruns",
    "PipelineRuns by phase",
    ["namespace", "pipeline", "phase"],
    registry=REGISTRY,
)
QUEUED = Gauge(
    "smepulse_pipelineruns_queued",
    "PipelineRuns waiting behind another run of their pipeline",
    ["namespace", "pipeline"],
    registry=REGISTRY,
)
FINISHED = Counter(
    "smepulse_pipelineruns_finished_total",
    "PipelineRuns that reached a terminal phase",
    ["pipeline", "phase", "reason"],
    registry=REGISTRY,
)
JOBS_CREATED = Counter(
    "smepulse_stage_jobs_created_total",
    "Stage Jobs created (one per attempt)",
    ["pipeline", "stage"],
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "smepulse_stage_duration_seconds",
    "Stage duration from first start to end",
    ["pipeline", "stage", "outcome"],
    registry=REGISTRY,
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
RECONCILE_SECONDS = Histogram(
    "smepulse_reconcile_seconds",
    "Time of one reconcile of one run",
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter(
    "smepulse_reconcile_errors_total",
    "Reconciles that failed",
    ["kind"],
    registry=REGISTRY,
)


class RunTracker:
    """The phase of every run this process follows; feeds the RUNS and QUEUED gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[str, str, str, bool]] = {}

    def update(self, uid: str, namespace: str, pipeline: str, status: Mapping[str, Any]) -> None:
        reason = next(
            (
                c.get("reason")
                for c in status.get("conditions") or []
                if c.get("type") == "Succeeded"
            ),
            None,
        )
        phase = str(status.get("phase") or "Pending")
        with self._lock:
            self._runs[uid] = (namespace, pipeline, phase, reason == "Queued")
            self._publish()

    def forget(self, uid: str) -> None:
        with self._lock:
            if self._runs.pop(uid, None) is not None:
                self._publish()

    def _publish(self) -> None:
        phases = Tally((ns, p, ph) for ns, p, ph, _ in self._runs.values())
        queued = Tally((ns, p) for ns, p, _, q in self._runs.values() if q)
        RUNS.clear()
        QUEUED.clear()
        for (ns, pipeline, phase), n in phases.items():
            RUNS.labels(ns, pipeline, phase).set(n)
        for (ns, pipeline), n in queued.items():
            QUEUED.labels(ns, pipeline).set(n)


def observe_stage_changes(
    pipeline: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> None:
    """Record durations of stages that finished between two status documents."""
    old = {s.get("name"): s.get("phase") for s in before.get("stages") or []}
    for stage in after.get("stages") or []:
        phase = stage.get("phase")
        if phase in ("Succeeded", "Failed") and old.get(stage.get("name")) != phase:
            start, end = parse_time(stage.get("startTime")), parse_time(stage.get("completionTime"))
            if start and end:
                STAGE_SECONDS.labels(pipeline, stage["name"], phase).observe(
                    max(0.0, (end - start).total_seconds())
                )

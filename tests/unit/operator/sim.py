"""A tiny in-memory stand-in for the API server's view of one run, to drive the pure planner.

Only for unit tests of planning: Jobs are JobView records the test flips to succeeded/failed,
and the status is whatever the last plan wrote (as the operator's status patch would).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from smepulse.catalog import load_catalog
from smepulse_operator.model import JobView, RunRef, job_name, parse_spec
from smepulse_operator.planning import Peer, Plan, RunInput, plan_run

T0 = dt.datetime(2025, 1, 2, 3, 0, tzinfo=dt.UTC)


@dataclass
class SimRun:
    spec: dict[str, Any]
    name: str = "daily-etl-20250101"
    now: dt.datetime = T0
    status: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, JobView] = field(default_factory=dict)
    peers: list[Peer] = field(default_factory=list)
    last_success: dict[str, dt.date] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)

    @property
    def pipeline(self) -> Any:
        return load_catalog().pipeline(self.spec["pipeline"])

    def step(self, seconds: float = 0) -> Plan:
        """Advance the clock, plan once, and apply the plan like the reconciler would."""
        self.now += dt.timedelta(seconds=seconds)
        ref = RunRef(self.name, "ns", "uid-1", 1, T0)
        run = RunInput(
            ref,
            parse_spec(self.spec, self.name),
            self.status,
            tuple(self.jobs.values()),
            tuple(self.peers),
            last_success=self.last_success,
        )
        plan = plan_run(self.pipeline, run, self.now)
        for name in plan.delete_jobs:
            self.jobs.pop(name, None)
            self.deleted.append(name)
        for req in plan.create_jobs:
            name = job_name(self.name, req.stage.name, req.attempt)
            assert name not in self.jobs, f"duplicate Job {name}"
            self.jobs[name] = JobView(
                name, req.stage.name, req.attempt, "active", self.now, None, ""
            )
            self.created.append(name)
        if plan.status is not None:
            self.status = plan.status
        self.plans.append(plan)
        return plan

    def finish(self, stage: str, ok: bool = True, message: str = "boom") -> None:
        """Mark the newest active Job of ``stage`` as succeeded or failed."""
        job = max((j for j in self.jobs.values() if j.stage == stage), key=lambda j: j.attempt)
        assert job.state == "active", f"{job.name} is not running"
        self.jobs[job.name] = replace(
            job,
            state="succeeded" if ok else "failed",
            finished=self.now,
            message="" if ok else message,
        )

    def running(self) -> list[str]:
        return sorted(j.stage for j in self.jobs.values() if j.state == "active")

    def stage(self, name: str) -> dict[str, Any]:
        return next(s for s in self.status["stages"] if s["name"] == name)

    def condition(self) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == "Succeeded")

    def reasons(self) -> list[str]:
        return [e.reason for p in self.plans for e in p.events]

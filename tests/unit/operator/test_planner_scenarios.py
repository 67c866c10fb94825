"""The scenario table (tests/scenarios/planner_cases.yaml) through the operator's planning, on
the in-memory API stand-in (:mod:`tests.unit.operator.sim`) and a virtual clock. The same table
runs against the real API server in tests/integration/operator/test_scenarios.py."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.scenarios.cases import CASES, IDS, Case
from tests.unit.operator.sim import SimRun

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_operator_planning_plays_the_scenario(case: Case) -> None:
    sim = SimRun(
        {
            "pipeline": case.pipeline,
            "logicalDate": "2025-01-01",
            "retries": {"limit": case.retry_limit, "backoffSeconds": case.backoff_seconds},
        },
        name=f"{case.pipeline}-20250101",
    )
    ends: dict[str, tuple[float, bool]] = {}  # Job name -> (virtual end, succeeds)
    clock = 0.0
    for _ in range(500):
        plan = sim.step()
        if sim.status.get("phase") in ("Succeeded", "Failed", "Cancelled"):
            break
        for req in plan.create_jobs:
            job = next(
                j
                for j in sim.jobs.values()
                if (j.stage, j.attempt) == (req.stage.name, req.attempt)
            )
            act = case.attempt(req.stage.name, req.attempt)
            ends[job.name] = (clock + act.seconds, act.ok)
        wake = clock + plan.requeue_after if plan.requeue_after is not None else None
        nxt = min([e for e, _ in ends.values()] + ([wake] if wake is not None else []))
        sim.now += dt.timedelta(seconds=nxt - clock)
        clock = nxt
        for name, (end, ok) in list(ends.items()):
            if end <= clock:
                del ends[name]
                sim.finish(sim.jobs[name].stage, ok=ok)
    else:
        raise AssertionError(f"{case.name}: never finished: {sim.status}")
    got = {s["name"]: (s["phase"], s["attempts"]) for s in sim.status["stages"]}
    assert got == case.stages
    phase = sim.status["phase"]
    assert phase == case.outcome
    assert sim.status.get("failedStage") == case.failed_stage
    told = "Succeeded" if sim.status.get("outcome") == "Succeeded" else "Failed"
    assert told == case.finally_told

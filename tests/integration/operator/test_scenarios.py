"""The scenario table (tests/scenarios/planner_cases.yaml) through the real operator, the real
API server and Job controller, and scripted stage Pods run by the node stand-in.

The pure planner and the local runner play the same table in
tests/unit/runner/test_planner_scenarios.py; all three must end every case the same way,
including the case that split the two old planners (uc09 out of retries while uc10 waits to
retry: uc10 still retries and succeeds).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.operator.conftest import Operator, Runs, StageEnv
from tests.scenarios.cases import CASES, IDS, Case

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_operator_plays_the_scenario(
    case: Case, operator: Operator, runs: Runs, stage_env: StageEnv
) -> None:
    name = f"{case.pipeline}-20250101"
    with operator():
        runs.create(
            name,
            pipeline=case.pipeline,
            logicalDate="2025-01-01",
            retries={"limit": case.retry_limit, "backoffSeconds": case.backoff_seconds},
            params={"fakeAttempts": json.dumps(case.script())},
        )
        status = runs.wait_phase(name, timeout=180)
    got = {s["name"]: (s["phase"], s["attempts"]) for s in status["stages"]}
    assert got == case.stages
    assert status["phase"] == case.outcome
    assert status.get("failedStage") == case.failed_stage
    told = [c["outcome"] for c in stage_env.calls() if c["stage"] == "notify"]
    assert told == [case.finally_told]
    # One Job per attempt, never more: the attempts the table expects, stage by stage.
    jobs = runs.job_stages(name)
    assert {s: jobs.count(s) for s in set(jobs)} == {s: n for s, (_, n) in case.stages.items() if n}

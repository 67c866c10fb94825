"""The scenario table (tests/scenarios/planner_cases.yaml) through the pure planner and
through the local runner with fake stage commands; the operator plays the same table against
the real API server in tests/integration/operator/test_scenarios.py.

The planner is driven on a virtual clock: attempts take the time the table gives them, a
retry waits for its backoff, and the planner is asked what to do after every change.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from smepulse import planner
from smepulse.catalog import Catalog, Pipeline, RetryPolicy, load_catalog, parse_catalog
from smepulse.planner import StageState, StageView
from smepulse.runner import history as runs_store
from smepulse.runner import run_pipeline
from smepulse.runner.execute import StageCommand
from smepulse.settings import Settings
from tests.scenarios.cases import CASES, IDS, Case

pytestmark = pytest.mark.unit

DAY = dt.date(2025, 3, 14)


def _main_policy(case: Case) -> RetryPolicy:
    return RetryPolicy(limit=case.retry_limit, backoff_seconds=case.backoff_seconds)


def simulate(case: Case) -> dict[str, Any]:
    """Play ``case`` through :func:`planner.plan_step` on a virtual clock."""
    p = load_catalog().pipeline(case.pipeline)
    selected = [s.name for s in p.stages]
    finally_names = {s.name for s in p.finally_}
    states = {s.name: StageState.PENDING for s in p.all_stages}
    attempts = dict.fromkeys(states, 0)
    ends: dict[str, tuple[float, bool]] = {}
    retry_at: dict[str, float] = {}
    order: list[str] = []
    told: str | None = None
    now = 0.0
    for _ in range(1000):
        views = {
            n: StageView(s, retry_due=retry_at.get(n, math.inf) <= now) for n, s in states.items()
        }
        step = planner.plan_step(p, selected, views, failure_order=order)
        for name in step.skip:
            states[name] = StageState.SKIPPED
        for name in step.start:
            retry_at.pop(name, None)
            attempts[name] += 1
            if name in finally_names:
                told = planner.outcome(p, selected, states, order, include_finally=False)[0]
            plan = case.attempt(name, attempts[name])
            ends[name] = (now + plan.seconds, plan.ok)
            states[name] = StageState.RUNNING
        if step.finished:
            return {"outcome": step.final_outcome, "failed_stage": step.final_failed_stage,
                    "told": told, "stages": {n: (states[n].value, attempts[n]) for n in states}}  # fmt: skip
        if step.start or step.skip:
            continue
        now = min([e for e, _ in ends.values()] + list(retry_at.values()))
        for name, (end, ok) in list(ends.items()):
            if end > now:
                continue
            del ends[name]
            if ok:
                states[name] = StageState.SUCCEEDED
                continue
            policy = p.stage(name).retries if name in finally_names else _main_policy(case)
            states[name], delay = planner.after_failed_attempt(policy, attempts[name])
            if delay is not None:
                retry_at[name] = now + delay
            else:
                order.append(name)
    raise AssertionError(f"{case.name}: the planner never finished")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_planner_plays_the_scenario(case: Case) -> None:
    got = simulate(case)
    assert got["stages"] == case.stages
    assert (got["outcome"], got["failed_stage"]) == (case.outcome, case.failed_stage)
    assert got["told"] == case.finally_told


def test_the_uc09_uc10_case_really_has_uc10_waiting_when_uc09_runs_out() -> None:
    """The table's timings put uc10 in Retrying at the moment uc09 fails for good."""
    p = load_catalog().pipeline("ml-predict")
    selected = [s.name for s in p.stages]
    views = {
        "uc09-forecast": StageView(StageState.FAILED),
        "uc10-detect": StageView(StageState.RETRYING, retry_due=False),
    }
    step = planner.plan_step(p, selected, views)
    assert step.skip == ["refresh-metabase", "report", "invalidate-cache"]
    assert not step.settled and step.start == [] and step.cancel == []
    views["uc10-detect"] = StageView(StageState.RETRYING, retry_due=True)
    assert planner.plan_step(p, selected, views).start == ["uc10-detect"]


# -- the local runner ---------------------------------------------------------------------


def runner_catalog(case: Case) -> Catalog:
    """The real catalog with the case's retry policy on every main stage."""
    doc = yaml.safe_load(resources.files("smepulse").joinpath("catalog.yaml").read_text())
    for pipeline in doc["pipelines"].values():
        for stage in pipeline["stages"]:
            stage["retries"] = {"limit": case.retry_limit, "backoffSeconds": case.backoff_seconds}
    return parse_catalog(doc)


def scripted(case: Case, marks: Path) -> StageCommand:
    """Each stage counts its attempts in ``marks`` and does what the table says."""
    script = json.dumps(case.script())

    def command(name: str, logical_date: dt.date) -> list[str]:
        code = (
            "import json, os, pathlib, sys, time\n"
            f"marks = pathlib.Path({str(marks)!r}); marks.mkdir(exist_ok=True)\n"
            f"counter = marks / {name + '.n'!r}\n"
            "n = int(counter.read_text()) + 1 if counter.exists() else 1\n"
            "counter.write_text(str(n))\n"
            f"if {name!r} == 'notify': (marks / 'told').write_text(os.environ.get('SMEPULSE_RUN_OUTCOME', ''))\n"
            f"plans = json.loads({script!r}).get({name!r}, [])\n"
            "verdict, _, secs = (plans[n - 1] if n <= len(plans) else 'ok:0.5').partition(':')\n"
            "time.sleep(float(secs))\n"
            "sys.exit(0 if verdict == 'ok' else 1)\n"
        )
        return [sys.executable, "-c", code]

    return command


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_local_runner_plays_the_scenario(case: Case, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", runner_max_parallel=2)
    marks = tmp_path / "marks"
    ok = run_pipeline(
        settings,
        case.pipeline,
        DAY,
        catalog=runner_catalog(case),
        command=scripted(case, marks),
        console=Console(file=io.StringIO(), width=200),
    )
    rec = runs_store.runs_for(settings.runs_dir, case.pipeline, DAY)[-1]
    assert {s.name: (s.state, s.attempts) for s in rec.stages} == case.stages
    assert (rec.status, rec.failed_stage) == (case.outcome, case.failed_stage)
    assert ok is (case.outcome == "Succeeded")
    assert (marks / "told").read_text() == case.finally_told


def test_pipelines_of_the_table_exist() -> None:
    pipelines: dict[str, Pipeline] = load_catalog().pipelines
    for case in CASES:
        stages = {s.name for s in pipelines[case.pipeline].all_stages}
        assert set(case.stages) == stages, case.name

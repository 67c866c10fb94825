"""The planner scenario table (``planner_cases.yaml``), read into typed cases.

Every executor's test reads the same file; see the comment at its top for the fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TABLE = Path(__file__).with_name("planner_cases.yaml")
DEFAULT_SECONDS = 0.5


@dataclass(frozen=True)
class AttemptPlan:
    ok: bool
    seconds: float


@dataclass(frozen=True)
class Case:
    name: str
    pipeline: str
    retry_limit: int
    backoff_seconds: int
    attempts: dict[str, tuple[AttemptPlan, ...]]
    outcome: str
    failed_stage: str | None
    finally_told: str
    stages: dict[str, tuple[str, int]]

    def attempt(self, stage: str, number: int) -> AttemptPlan:
        """What attempt ``number`` (1-based) of ``stage`` does: past the list, a success."""
        plans = self.attempts.get(stage, ())
        if number <= len(plans):
            return plans[number - 1]
        return AttemptPlan(True, DEFAULT_SECONDS)

    def script(self) -> dict[str, list[str]]:
        """The attempts as plain strings, for fake stages in other processes."""
        return {
            stage: [f"{'ok' if a.ok else 'fail'}:{a.seconds}" for a in plans]
            for stage, plans in self.attempts.items()
        }


def _attempt(text: str, where: str) -> AttemptPlan:
    verdict, _, seconds = str(text).partition(":")
    if verdict not in ("ok", "fail"):
        raise ValueError(f"{TABLE}: {where}: attempt {text!r} is neither ok nor fail")
    return AttemptPlan(verdict == "ok", float(seconds) if seconds else DEFAULT_SECONDS)


def _case(doc: dict[str, Any]) -> Case:
    name = doc["name"]
    expect = doc["expect"]
    return Case(
        name=name,
        pipeline=doc["pipeline"],
        retry_limit=int(doc["retries"]["limit"]),
        backoff_seconds=int(doc["retries"]["backoffSeconds"]),
        attempts={
            stage: tuple(_attempt(a, f"case {name}, stage {stage}") for a in plans)
            for stage, plans in (doc.get("attempts") or {}).items()
        },
        outcome=expect["outcome"],
        failed_stage=expect["failed_stage"],
        finally_told=expect["finally_told"],
        stages={stage: (phase, int(n)) for stage, (phase, n) in expect["stages"].items()},
    )


def load_cases() -> list[Case]:
    return [_case(doc) for doc in yaml.safe_load(TABLE.read_text(encoding="utf-8"))["cases"]]


CASES = load_cases()
IDS = [c.name for c in CASES]

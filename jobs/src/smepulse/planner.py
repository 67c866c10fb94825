"""The one planner of both executors: given where every stage of a run stands, what to do next.

Pure: standard library and :mod:`smepulse.catalog` only, no processes, no clocks, no API
calls. The local runner (``smepulse.runner.run``) and the operator
(``smepulse_operator.planning``) observe their stages (subprocesses / Jobs), call
:func:`plan_step`, and carry out the :class:`Step` it returns. The operator's image imports
this module, so it must never import dbt, ML or other heavy libraries.

Stage states (one set, also the ``status.stages[].phase`` values of a PipelineRun):

``Pending``   not started yet;
``Running``   an attempt is running;
``Retrying``  an attempt failed and another one is allowed (waiting for its backoff);
``Succeeded`` the last attempt succeeded (a stage that had nothing to do also succeeded);
``Failed``    the attempts ran out (a timed-out attempt is a failed attempt);
``Skipped``   never ran: a stage it needs did not succeed, or the run was cancelled first;
``Cancelled`` was running or waiting to retry when the run was cancelled or timed out.

Failure semantics:

- a main stage starts when it is ``Pending`` and every stage it ``needs`` that is part of
  the run has ``Succeeded`` (needs outside the selection -- ``--only``/``spec.stages``,
  ``--from-stage`` -- count as done);
- a ``Pending`` stage whose need is ``Failed``/``Skipped``/``Cancelled`` becomes ``Skipped``,
  transitively; every other branch keeps running, and keeps *retrying*: a failure in one
  branch never stops or fails a stage of an independent branch;
- the main stages are *settled* when none is ``Running`` or ``Retrying`` and none can start;
  then the run's outcome is decided (``Cancelled`` if a stage was cancelled, else ``Failed``
  naming the first failed stage, else ``Succeeded``) and the ``finally`` stages start, always,
  whatever the outcome; they retry under their own policy;
- the run is finished when every stage is in a final state; a failed finally stage turns a
  ``Succeeded`` outcome into ``Failed``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from smepulse.catalog import Pipeline, RetryPolicy, topo_order

__all__ = [
    "ACTIVE",
    "BLOCKING",
    "FINAL",
    "Outcome",
    "StageState",
    "StageView",
    "Step",
    "after_failed_attempt",
    "outcome",
    "plan_step",
    "unpublished_upstream",
]

Outcome = Literal["Succeeded", "Failed", "Cancelled"]


class StageState(StrEnum):
    """Where one stage of a run stands (see the module docstring)."""

    PENDING = "Pending"
    RUNNING = "Running"
    RETRYING = "Retrying"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"


ACTIVE = frozenset({StageState.RUNNING, StageState.RETRYING})
BLOCKING = frozenset({StageState.FAILED, StageState.SKIPPED, StageState.CANCELLED})
FINAL = BLOCKING | {StageState.SUCCEEDED}


@dataclass(frozen=True)
class StageView:
    """One stage as the executor observed it. ``retry_due``: a Retrying stage's backoff is over."""

    state: StageState = StageState.PENDING
    retry_due: bool = False


@dataclass
class Step:
    """What to do now. Stage names are in the order to act on them."""

    start: list[str] = field(default_factory=list)  # start the next attempt (or trigger)
    skip: list[str] = field(default_factory=list)  # Pending -> Skipped (never runs)
    cancel: list[str] = field(default_factory=list)  # Running/Retrying -> Cancelled (stop it)
    settled: bool = False  # the main stages can make no more progress
    outcome: Outcome | None = None  # of the main stages, once settled
    failed_stage: str | None = None  # the first failed main stage
    finished: bool = False  # every stage (main and finally) is final
    final_outcome: Outcome | None = None  # of the whole run, once finished
    final_failed_stage: str | None = None


def after_failed_attempt(policy: RetryPolicy, attempts: int) -> tuple[StageState, int | None]:
    """State after attempt number ``attempts`` failed, and the backoff before the next one."""
    if attempts < policy.limit + 1:
        return StageState.RETRYING, policy.delay(attempts + 1)
    return StageState.FAILED, None


def plan_step(
    pipeline: Pipeline,
    selected: Sequence[str],
    stages: Mapping[str, StageView],
    *,
    hold: bool = False,
    cancel: bool = False,
    slots: int | None = None,
    failure_order: Iterable[str] = (),
) -> Step:
    """The next step of a run of ``pipeline`` whose selected main stages are ``selected``.

    ``stages`` holds the selected main stages and every finally stage (missing = Pending).
    ``hold`` (suspend) starts nothing new; ``cancel`` stops every main stage that is not final
    (finally stages still run, and ``hold`` does not hold them back then). ``slots`` bounds how
    many stages ``start`` names (None: no bound). ``failure_order`` names stages in the order
    they failed, when the executor knows it; else the catalog order decides which failure is
    reported first. The returned lists are decisions: ``stages`` itself is not changed.
    """
    chosen = set(selected)
    main = [s for s in topo_order(list(pipeline.stages)) if s.name in chosen]
    state = {s.name: stages.get(s.name, StageView()).state for s in pipeline.all_stages}
    state = {n: v for n, v in state.items() if n in chosen or n in _finally(pipeline)}
    step = Step()

    if cancel:
        for s in main:
            if state[s.name] in ACTIVE:
                step.cancel.append(s.name)
                state[s.name] = StageState.CANCELLED
            elif state[s.name] is StageState.PENDING:
                step.skip.append(s.name)
                state[s.name] = StageState.SKIPPED
        hold = False

    for s in main:  # topological order: blocking spreads downstream in one pass
        if state[s.name] is StageState.PENDING and any(
            state.get(n) in BLOCKING for n in s.needs if n in chosen
        ):
            step.skip.append(s.name)
            state[s.name] = StageState.SKIPPED

    budget = len(pipeline.all_stages) if slots is None else max(0, slots)
    ready = [
        s.name for s in main if state[s.name] is StageState.RETRYING and stages[s.name].retry_due
    ]
    ready += [
        s.name
        for s in main
        if state[s.name] is StageState.PENDING
        and all(state[n] is StageState.SUCCEEDED for n in s.needs if n in chosen)
    ]
    if not hold:
        step.start = ready

    waiting = any(state[s.name] in ACTIVE for s in main)
    step.settled = not waiting and not ready
    if step.settled:
        step.outcome, step.failed_stage = _outcome([s.name for s in main], state, failure_order)
        if cancel:
            step.outcome = "Cancelled"
        if not hold:
            for s in pipeline.finally_:
                st = state[s.name]
                if st is StageState.PENDING or (
                    st is StageState.RETRYING and stages[s.name].retry_due
                ):
                    step.start.append(s.name)
        step.finished = not step.start and all(state[s.name] in FINAL for s in pipeline.finally_)
        if step.finished:
            step.final_outcome, step.final_failed_stage = outcome(
                pipeline, selected, state, failure_order
            )
            if cancel:
                step.final_outcome = "Cancelled"
    step.start = step.start[:budget]
    return step


def outcome(
    pipeline: Pipeline,
    selected: Sequence[str],
    states: Mapping[str, StageState],
    failure_order: Iterable[str] = (),
    *,
    include_finally: bool = True,
) -> tuple[Outcome, str | None]:
    """The outcome of the main stages (and, by default, the finally stages) and whom to blame."""
    chosen = set(selected)
    names = [s.name for s in pipeline.stages if s.name in chosen]
    main_outcome, failed = _outcome(names, states, failure_order)
    if not include_finally or main_outcome != "Succeeded":
        return main_outcome, failed
    broken = next(
        (s.name for s in pipeline.finally_ if states.get(s.name) is StageState.FAILED), None
    )
    return ("Failed", broken) if broken else ("Succeeded", None)


def _outcome(
    names: Sequence[str], states: Mapping[str, StageState], failure_order: Iterable[str]
) -> tuple[Outcome, str | None]:
    failed = [n for n in failure_order if n in names and states.get(n) is StageState.FAILED]
    failed += [n for n in names if states.get(n) is StageState.FAILED and n not in failed]
    first = failed[0] if failed else None
    if any(states.get(n) is StageState.CANCELLED for n in names):
        return "Cancelled", first
    if first is not None:
        return "Failed", first
    if all(states.get(n) is StageState.SUCCEEDED for n in names):
        return "Succeeded", None
    return "Failed", None


def _finally(pipeline: Pipeline) -> set[str]:
    return {s.name for s in pipeline.finally_}


def unpublished_upstream(
    pipeline: Pipeline,
    from_stage: str,
    logical_date: dt.date,
    last_success: Mapping[str, dt.date],
) -> str | None:
    """Why a ``--from-stage`` run of ``logical_date`` must not start, or None if it may.

    A partial run publishes on top of what the stages it does not run left in the warehouse,
    so every stage the selected ones need (transitively, trigger stages aside) must have
    succeeded last for this very date: ``last_success`` maps a stage to the logical date of
    its newest successful attempt on this warehouse (any run, any pipeline). A stage that
    never succeeded, or whose newest success was for another date (silver rebuilt for the next
    day, say), would make the partial run publish a mix. The answer is one line naming the
    most upstream such stage and what to run first: a run from that stage, or the whole
    pipeline when that run would be refused too.
    """
    by_name = {s.name: s for s in pipeline.stages}
    selected = set(pipeline.select(from_stage=from_stage))
    needed: set[str] = set()
    todo = [need for name in selected for need in by_name[name].needs if name in by_name]
    while todo:
        name = todo.pop()
        if name not in needed and name not in selected and name in by_name:
            needed.add(name)
            todo.extend(by_name[name].needs)
    for stage in topo_order(list(pipeline.stages)):
        if stage.name not in needed or stage.kind == "trigger":
            continue
        last = last_success.get(stage.name)
        if last == logical_date:
            continue
        state = (
            "has never succeeded"
            if last is None
            else f"last published for {last.isoformat()}, not {logical_date.isoformat()}"
        )
        # Starting at that stage instead may itself be refused (a diamond: another branch
        # published for another date too); then only a whole run rebuilds the date.
        wider = set(pipeline.select(from_stage=stage.name))
        if wider > selected and (
            unpublished_upstream(pipeline, stage.name, logical_date, last_success) is None
        ):
            advice = f"run --from-stage {stage.name} first"
        else:
            advice = f"run the whole {pipeline.name} pipeline for {logical_date.isoformat()} first"
        return (
            f"cannot start {pipeline.name} at {from_stage} for {logical_date.isoformat()}: "
            f"upstream stage {stage.name} {state}; {advice}"
        )
    return None

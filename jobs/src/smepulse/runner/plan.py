"""Pure planning for the local runner: given each stage's state, what runs next.

No processes, no clocks, no files: the runner (``runner.py``) owns the I/O and calls these
functions after every change. The rules, the same as the operator's (both read the one
catalog):

- a main stage is *ready* when it is pending and every stage it needs is *done*
  (succeeded, skipped, or outside the selection of ``--only`` / ``--from-stage``);
- a stage whose need failed (or was itself blocked) becomes ``upstream-failed`` and never
  runs, but independent branches carry on;
- ``finally`` stages start once no main stage can make progress any more, whatever happened;
- the run's outcome is ``Succeeded`` only if every main and finally stage is done;
  otherwise ``TimedOut`` when the first failure was a timeout, else ``Failed``
  (``Cancelled`` is decided by the runner on Ctrl-C).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Literal

from smepulse.catalog import Pipeline, topo_order

Outcome = Literal["Succeeded", "Failed", "TimedOut", "Cancelled"]


class StageState(StrEnum):
    """Where one stage of a run stands."""

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"  # an attempt failed; waiting for the backoff before the next one
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # ran, had nothing to do (StageSkipped), or trigger disabled
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    UPSTREAM_FAILED = "upstream-failed"  # not run: a stage it needs did not succeed
    NOT_SELECTED = "not-selected"  # outside --only / --from-stage: taken as done
    CANCELLED = "cancelled"


DONE = frozenset({StageState.SUCCEEDED, StageState.SKIPPED, StageState.NOT_SELECTED})
BROKEN = frozenset(
    {StageState.FAILED, StageState.TIMED_OUT, StageState.UPSTREAM_FAILED, StageState.CANCELLED}
)
ACTIVE = frozenset({StageState.RUNNING, StageState.RETRYING})
FINAL = DONE | BROKEN


def initial_states(pipeline: Pipeline, selected: Iterable[str]) -> dict[str, StageState]:
    """Every stage of ``pipeline``: selected main stages and all finally stages pending."""
    chosen = set(selected)
    states = {
        s.name: StageState.PENDING if s.name in chosen else StageState.NOT_SELECTED
        for s in pipeline.stages
    }
    states.update({s.name: StageState.PENDING for s in pipeline.finally_})
    return states


def block_dependants(pipeline: Pipeline, states: dict[str, StageState]) -> list[str]:
    """Mark pending main stages whose needs broke as upstream-failed (transitively).

    Mutates ``states`` and returns the names it changed, in topological order.
    """
    changed: list[str] = []
    for stage in topo_order(list(pipeline.stages)):
        if states[stage.name] is StageState.PENDING and any(
            states[need] in BROKEN for need in stage.needs
        ):
            states[stage.name] = StageState.UPSTREAM_FAILED
            changed.append(stage.name)
    return changed


def ready_main(pipeline: Pipeline, states: Mapping[str, StageState]) -> list[str]:
    """Pending main stages whose needs are all done, in topological (then declared) order."""
    return [
        s.name
        for s in topo_order(list(pipeline.stages))
        if states[s.name] is StageState.PENDING and all(states[n] in DONE for n in s.needs)
    ]


def main_settled(pipeline: Pipeline, states: Mapping[str, StageState]) -> bool:
    """True when no main stage is running, retrying or can still start."""
    if any(states[s.name] in ACTIVE for s in pipeline.stages):
        return False
    return not ready_main(pipeline, states)


def ready_finally(pipeline: Pipeline, states: Mapping[str, StageState]) -> list[str]:
    """Pending finally stages, once the main stages have settled."""
    if not main_settled(pipeline, states):
        return []
    return [s.name for s in pipeline.finally_ if states[s.name] is StageState.PENDING]


def next_stages(pipeline: Pipeline, states: dict[str, StageState], free_slots: int) -> list[str]:
    """The stages to start now, at most ``free_slots`` of them (blocks broken branches first)."""
    block_dependants(pipeline, states)
    if free_slots <= 0:
        return []
    candidates = ready_main(pipeline, states) or ready_finally(pipeline, states)
    return candidates[:free_slots]


def is_finished(pipeline: Pipeline, states: Mapping[str, StageState]) -> bool:
    """True when every stage (main and finally) is in a final state."""
    return all(states[s.name] in FINAL for s in pipeline.all_stages)


def outcome(
    pipeline: Pipeline,
    states: Mapping[str, StageState],
    order_of_failure: Iterable[str] = (),
    *,
    include_finally: bool = True,
) -> tuple[Outcome, str | None]:
    """The run's outcome and the stage to blame (the first that failed, if any).

    ``order_of_failure`` lists stages in the order they failed (the runner knows the clock);
    without it the first broken stage in catalog order is named. ``include_finally=False``
    gives the outcome of the main stages alone: what finally stages are told.
    """
    stages = pipeline.all_stages if include_finally else pipeline.stages
    names = {s.name for s in stages}
    broken = (StageState.FAILED, StageState.TIMED_OUT)
    failed = [n for n in order_of_failure if n in names and states.get(n) in broken]
    if not failed:
        failed = [s.name for s in stages if states[s.name] in broken]
    if any(states[s.name] is StageState.CANCELLED for s in stages):
        return "Cancelled", failed[0] if failed else None
    if failed:
        first = failed[0]
        return ("TimedOut" if states[first] is StageState.TIMED_OUT else "Failed"), first
    if all(states[s.name] in DONE for s in stages):
        return "Succeeded", None
    return "Failed", None

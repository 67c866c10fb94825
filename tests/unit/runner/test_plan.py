"""Pure planning of the local runner: which stages start, given each stage's state."""

from __future__ import annotations

import pytest

from smepulse.catalog import Pipeline, load_catalog, parse_catalog
from smepulse.runner.plan import (
    StageState,
    block_dependants,
    initial_states,
    is_finished,
    next_stages,
    outcome,
    ready_finally,
    ready_main,
)

pytestmark = pytest.mark.unit

S = StageState


def diamond() -> Pipeline:
    """a -> b -> d, c -> d (c independent of a/b), e independent; finally notify."""
    doc = {
        "pipelines": {
            "p": {
                "stages": [
                    {"name": "a"},
                    {"name": "b", "needs": ["a"]},
                    {"name": "c"},
                    {"name": "d", "needs": ["b", "c"]},
                    {"name": "e"},
                ],
                "finally": [{"name": "notify"}],
            }
        }
    }
    return parse_catalog(doc).pipeline("p")


def test_roots_are_ready_in_declared_order_and_bounded_by_slots() -> None:
    p = diamond()
    states = initial_states(p, ["a", "b", "c", "d", "e"])
    assert ready_main(p, states) == ["a", "c", "e"]
    assert next_stages(p, states, 2) == ["a", "c"]
    assert next_stages(p, states, 0) == []


def test_a_stage_waits_for_all_its_needs() -> None:
    p = diamond()
    states = initial_states(p, ["a", "b", "c", "d", "e"])
    states.update(a=S.SUCCEEDED, c=S.RUNNING, e=S.SUCCEEDED)
    assert ready_main(p, states) == ["b"]
    states.update(b=S.SUCCEEDED)
    assert ready_main(p, states) == []  # d still waits for c
    states.update(c=S.SKIPPED)  # a skipped stage counts as done
    assert ready_main(p, states) == ["d"]


def test_failure_blocks_dependants_transitively_but_not_independent_branches() -> None:
    p = diamond()
    states = initial_states(p, ["a", "b", "c", "d", "e"])
    states.update(a=S.FAILED)
    changed = block_dependants(p, states)
    assert changed == ["b", "d"]
    assert states["b"] is S.UPSTREAM_FAILED and states["d"] is S.UPSTREAM_FAILED
    assert next_stages(p, states, 4) == ["c", "e"]


def test_finally_waits_until_main_stages_settle_then_runs_whatever_happened() -> None:
    p = diamond()
    states = initial_states(p, ["a", "b", "c", "d", "e"])
    states.update(a=S.FAILED, c=S.RUNNING, e=S.SUCCEEDED)
    block_dependants(p, states)
    assert ready_finally(p, states) == []  # c still running
    states.update(c=S.RETRYING)
    assert ready_finally(p, states) == []  # a retry is pending
    states.update(c=S.SUCCEEDED)
    assert next_stages(p, states, 2) == ["notify"]
    assert not is_finished(p, states)
    states.update(notify=S.SUCCEEDED)
    assert is_finished(p, states)
    assert outcome(p, states) == ("Failed", "a")


def test_selection_marks_the_rest_not_selected_and_taken_as_done() -> None:
    p = diamond()
    selected = p.select(from_stage="b")
    assert selected == ["b", "d"]
    states = initial_states(p, selected)
    assert states["a"] is S.NOT_SELECTED and states["notify"] is S.PENDING
    assert ready_main(p, states) == ["b"]  # a taken as done; c not selected either
    states.update(b=S.SUCCEEDED)
    assert ready_main(p, states) == ["d"]


def test_outcome_names_the_first_failure_and_timeouts() -> None:
    p = diamond()
    states = {n: S.SUCCEEDED for n in ["a", "b", "c", "d", "e", "notify"]}
    assert outcome(p, states) == ("Succeeded", None)
    states.update(e=S.FAILED, c=S.TIMED_OUT, d=S.UPSTREAM_FAILED)
    assert outcome(p, states, order_of_failure=["c", "e"]) == ("TimedOut", "c")
    assert outcome(p, states, order_of_failure=["e", "c"]) == ("Failed", "e")
    states = {n: S.SUCCEEDED for n in ["a", "b", "c", "d", "e"]} | {"notify": S.FAILED}
    assert outcome(p, states) == ("Failed", "notify")
    assert outcome(p, states, include_finally=False) == ("Succeeded", None)
    states.update(b=S.CANCELLED)
    assert outcome(p, states)[0] == "Cancelled"


def test_real_catalog_daily_etl_is_a_chain_with_notify_last() -> None:
    p = load_catalog().pipeline("daily-etl")
    states = initial_states(p, p.select())
    order: list[str] = []
    while not is_finished(p, states):
        batch = next_stages(p, states, 2)
        assert batch, f"stuck with {states}"
        for name in batch:
            states[name] = S.SUCCEEDED
        order += batch
    assert order[0] == "verify-infra" and order[-1] == "notify"
    assert order.index("dbt-ml-scores") < order.index("trigger-ml-predict") < order.index("report")


def test_real_catalog_ml_predict_runs_forecast_and_detect_in_parallel() -> None:
    p = load_catalog().pipeline("ml-predict")
    states = initial_states(p, p.select())
    assert next_stages(p, states, 2) == ["uc09-forecast", "uc10-detect"]

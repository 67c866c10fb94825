"""The Argo CD health check of PipelineRun, run by a real Lua interpreter.

Argo CD evaluates health scripts with gopher-lua, a Lua 5.1 implementation, so the script runs
here under Lua 5.1 (lupa's bundled ``lua51``) with the same contract: a global ``obj`` holding
the live object (JSON arrays as 1-based tables), and a returned table ``{status, message}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.needs import missing

try:
    from lupa import lua51
except ImportError:  # reported by health(): a failure in CI, a skip on a laptop
    lua51 = None

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "argocd" / "health" / "pipelinerun.lua"


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """Run the health script against ``obj`` the way Argo CD does; return (status, message)."""
    if lua51 is None:
        missing("Python module lupa (pip install lupa: in the test extra)")
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT.read_text(encoding="utf-8"))
    return str(result["status"]), str(result["message"])


def run(phase: str | None, **extra: Any) -> dict[str, Any]:
    """A PipelineRun as the operator writes it, in the given phase."""
    obj: dict[str, Any] = {
        "apiVersion": "smepulse.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": "daily-etl-20250101", "namespace": "smepulse", "generation": 1},
        "spec": {"pipeline": "daily-etl", "logicalDate": "2025-01-01"},
    }
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": 1}
    for key, value in extra.items():
        section, _, field = key.partition("__")
        obj.setdefault(section, {})[field] = value
    return obj


def condition(status: str, reason: str, message: str = "") -> list[dict[str, str]]:
    return [{"type": "Succeeded", "status": status, "reason": reason, "message": message}]


def test_succeeded_is_healthy() -> None:
    status, message = health(
        run(
            "Succeeded",
            status__conditions=condition("True", "Succeeded", "all 10 stages succeeded"),
        )
    )
    assert status == "Healthy"
    assert message == "Succeeded: all 10 stages succeeded"


@pytest.mark.parametrize("phase", ["Pending", "Running"])
def test_pending_and_running_are_progressing(phase: str) -> None:
    status, message = health(
        run(
            phase, status__currentStage="dbt-silver", status__conditions=condition("Unknown", phase)
        )
    )
    assert status == "Progressing"
    assert message == f"{phase}: stage dbt-silver"


def test_new_run_without_status_is_progressing() -> None:
    assert health(run(None)) == ("Progressing", "Waiting for the operator to start the run")


def test_failed_stage_is_degraded_and_names_the_stage() -> None:
    status, message = health(
        run(
            "Failed",
            status__failedStage="validate-bronze",
            status__message="bronze/customers ingest_date=2025-01-01: duplicate customer_id C001",
            status__conditions=condition("False", "StageFailed"),
        )
    )
    assert status == "Degraded"
    assert message == (
        "StageFailed: bronze/customers ingest_date=2025-01-01: duplicate customer_id C001"
        " (stage validate-bronze)"
    )


def test_timed_out_is_degraded() -> None:
    status, message = health(
        run("Failed", status__conditions=condition("False", "TimedOut", "run exceeded 3600s"))
    )
    assert (status, message) == ("Degraded", "TimedOut: run exceeded 3600s")


def test_cancelled_is_degraded() -> None:
    status, message = health(run("Cancelled", status__conditions=condition("False", "Cancelled")))
    assert (status, message) == ("Degraded", "Cancelled")


def test_suspended_running_run_is_suspended() -> None:
    status, message = health(run("Running", spec__suspend=True, status__currentStage="report"))
    assert status == "Suspended"
    assert "spec.suspend" in message


def test_suspended_before_start_is_suspended() -> None:
    assert health(run(None, spec__suspend=True))[0] == "Suspended"


def test_suspend_does_not_hide_a_finished_result() -> None:
    # A run suspended after it finished keeps its final health: suspend only stops new work.
    assert health(run("Succeeded", spec__suspend=True))[0] == "Healthy"
    assert health(run("Failed", spec__suspend=True))[0] == "Degraded"


def test_cancel_requested_is_progressing_until_the_operator_finishes() -> None:
    status, message = health(run("Running", spec__cancel=True))
    assert status == "Progressing"
    assert message.startswith("Cancelling")


def test_a_status_older_than_the_spec_is_progressing_until_the_operator_acts() -> None:
    # The user has just set spec.cancel (generation 2); the operator's last status is of
    # generation 1 and still says Failed-looking things or Succeeded: neither may be trusted.
    stale_failed = run("Failed", status__failedStage="dbt-silver", spec__cancel=True)
    stale_failed["metadata"]["generation"] = 2
    assert health(stale_failed) == (
        "Progressing",
        "Waiting for the operator to act on generation 2 (status is of generation 1)",
    )
    stale_done = run("Succeeded", spec__ttlSecondsAfterFinished=60)
    stale_done["metadata"]["generation"] = 3
    stale_done["status"]["observedGeneration"] = 2
    assert health(stale_done)[0] == "Progressing"


def test_a_status_of_the_current_generation_is_judged_on_its_phase() -> None:
    current = run("Failed", status__failedStage="dbt-silver")
    current["metadata"]["generation"] = 2
    current["status"]["observedGeneration"] = 2
    assert health(current)[0] == "Degraded"
    # A status without observedGeneration (not written by this operator) is not called stale.
    unversioned = run("Succeeded")
    del unversioned["status"]["observedGeneration"]
    assert health(unversioned)[0] == "Healthy"

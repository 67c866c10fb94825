"""The reconciler reads a run's Jobs from the API server's watch cache first
(``resourceVersion=0``) and falls back to a consistent read when that cache is behind what the
run's status records. A real single API server's cache cannot be made to lag on demand, so the
API is an in-memory store here whose cached reads return a snapshot taken earlier; the same
reconciler runs against the real API server in tests/integration/operator."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from smepulse.catalog import load_catalog
from smepulse.settings import Settings
from smepulse_operator.model import GROUP, KIND, VERSION, job_view
from smepulse_operator.reconciler import Reconciler, _behind
from smepulse_operator.render import render_run

pytestmark = pytest.mark.unit

NS = "team"


class LaggingApi:
    """Runs and Jobs in memory; ``list_jobs(cached=True)`` answers from ``snapshot``."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.snapshot: dict[str, dict[str, Any]] = {}
        self.reads: list[str] = []
        self.creates: list[str] = []

    def freeze_cache(self) -> None:
        self.snapshot = copy.deepcopy(self.jobs)

    def get_run(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.runs.get(name))

    def list_runs(self, namespace: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for r in self.runs.values()]

    def list_jobs(self, namespace: str, run: str, *, cached: bool = False) -> list[dict[str, Any]]:
        self.reads.append("cached" if cached else "consistent")
        store = self.snapshot if cached else self.jobs
        return [copy.deepcopy(j) for j in store.values()]

    def list_pods(self, namespace: str, run: str, stage: str | None = None) -> list[Any]:
        return []

    def create_job(self, body: Mapping[str, Any]) -> bool:
        name = body["metadata"]["name"]
        if name in self.jobs:
            return False
        self.creates.append(name)
        self.jobs[name] = {**copy.deepcopy(dict(body)), "status": {"active": 1}}
        return True

    def patch_run_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.runs[name]["status"] = {**self.runs[name].get("status", {}), **status}

    def delete_job(self, namespace: str, name: str) -> None:
        self.jobs.pop(name, None)


def new_run(api: LaggingApi) -> Reconciler:
    body = render_run("r1", NS, "daily-etl", dt.date(2026, 6, 30))
    body["metadata"].update(uid="uid-r1", generation=1, creationTimestamp="2026-06-30T00:00:00Z")
    assert (body["apiVersion"], body["kind"]) == (f"{GROUP}/{VERSION}", KIND)
    api.runs["r1"] = body
    return Reconciler(api, Settings.load(), load_catalog())  # type: ignore[arg-type]


def test_a_cache_behind_the_operators_own_job_falls_back_and_creates_no_duplicate() -> None:
    api = LaggingApi()
    rec = new_run(api)
    api.freeze_cache()  # the cache never sees what the first reconcile creates
    rec.reconcile(NS, "r1")
    assert api.creates == ["r1-verify-infra"]
    recorded = {s["name"]: s.get("jobName") for s in api.runs["r1"]["status"]["stages"]}
    assert recorded["verify-infra"] == "r1-verify-infra"
    api.reads.clear()
    rec.reconcile(NS, "r1")
    # The cache lacks the recorded Job: read again, consistently, and create nothing new.
    assert api.reads == ["cached", "consistent"]
    assert api.creates == ["r1-verify-infra"]


def test_a_fresh_cache_is_read_once() -> None:
    api = LaggingApi()
    rec = new_run(api)
    rec.reconcile(NS, "r1")
    api.freeze_cache()  # now up to date
    api.reads.clear()
    rec.reconcile(NS, "r1")
    assert api.reads == ["cached"]


def test_a_job_created_before_a_crash_and_missing_from_the_cache_is_recognised_as_ours() -> None:
    api = LaggingApi()
    rec = new_run(api)
    api.freeze_cache()
    rec.reconcile(NS, "r1")
    api.runs["r1"].pop("status")  # as if the operator died before recording its Job
    api.reads.clear()
    rec.reconcile(NS, "r1")  # create answers 409; the consistent read shows the Job is ours
    assert api.creates == ["r1-verify-infra"]
    assert "consistent" in api.reads
    assert api.runs["r1"]["status"]["stages"][0]["jobName"] == "r1-verify-infra"


def job(name: str, stage: str, state: str) -> Any:
    status = {"active": {"active": 1}, "succeeded": {"succeeded": 1}}[state]
    if state == "succeeded":
        status["conditions"] = [{"type": "Complete", "status": "True"}]
    return job_view(
        {
            "metadata": {
                "name": name,
                "labels": {"smepulse.io/stage": stage, "smepulse.io/attempt": "1"},
            },
            "status": status,
        }
    )


@pytest.mark.parametrize(
    ("recorded", "cached", "behind"),
    [
        ([], [], False),
        ([("a", "Running", "r-a-1")], [("r-a-1", "a", "active")], False),
        ([("a", "Running", "r-a-1")], [], True),
        ([("a", "Succeeded", "r-a-1")], [("r-a-1", "a", "succeeded")], False),
        ([("a", "Succeeded", "r-a-1")], [("r-a-1", "a", "active")], True),
        ([("a", "Pending", None)], [], False),
    ],
)
def test_behind(recorded: list[Any], cached: list[Any], behind: bool) -> None:
    status = {
        "stages": [{"name": n, "phase": p, **({"jobName": j} if j else {})} for n, p, j in recorded]
    }
    assert _behind(status, [job(*c) for c in cached]) is behind

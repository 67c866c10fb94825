"""``smepulse watch|logs|cancel|suspend|resume|retry`` against the real API server, with the
real operator running the runs (node stand-in + the scripted stages of ``fake_stage.py``).

The CLI runs as a separate process (``python -m smepulse.cli``), as a user would start it,
with the test cluster's kubeconfig in its environment (set by the ``operator_env`` fixture).
Expected stage names and outputs are written out by hand from the catalog's external-sync.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from kubernetes import client

from tests.integration.operator.conftest import Operator, Runs, StageEnv
from tests.kube.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

STAGES = ["ingest-worldbank", "ingest-provinces", "dbt-external-silver", "dbt-external-gold"]
NO_RETRY = {"limit": 0, "backoffSeconds": 0}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smepulse.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "smepulse.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_follows_runs_to_the_end_with_run_exit_codes(
    operator: Operator, runs: Runs, stage_env: StageEnv, kube_namespace: str
) -> None:
    ns = kube_namespace
    gone = cli("watch", "external-sync-20990101", "-n", ns)
    assert gone.returncode == 2
    assert gone.stderr.strip() == f"error: pipelinerun {ns}/external-sync-20990101 not found"

    with operator():
        # Started before the run exists in the operator's eyes: it follows from Pending.
        runs.create(
            "external-sync-20250101",
            pipeline="external-sync",
            logicalDate="2025-01-01",
            params={"fakeSleep": "1"},
            retries=NO_RETRY,
        )
        ok = start_cli("watch", "external-sync-20250101", "-n", ns)
        runs.create(
            "external-sync-20250102",
            pipeline="external-sync",
            logicalDate="2025-01-02",
            params={"fakeFail": "dbt-external-silver"},
            retries=NO_RETRY,
        )
        bad = start_cli("watch", "external-sync-20250102", "-n", ns)
        out_ok, err_ok = ok.communicate(timeout=180)
        out_bad, err_bad = bad.communicate(timeout=180)

    assert ok.returncode == 0, err_ok
    lines = out_ok.splitlines()
    assert lines[0] == "run external-sync-20250101 (external-sync, logical date 2025-01-01)"
    # Plain mode (not a terminal): one line per stage change, as `smepulse run` prints them.
    for stage in [*STAGES, "notify"]:
        assert any(line.endswith(f"external-sync-20250101 {stage} Succeeded") for line in lines), (
            out_ok
        )
    # Running was seen for the stages that sleep a second (the watch is live, not an
    # after-the-fact listing).
    assert any("external-sync-20250101 dbt-external-gold Running" in line for line in lines), out_ok
    assert "external-sync-20250101: Succeeded" in out_ok  # the summary table's title
    assert any(line.startswith("Succeeded external-sync-20250101 in ") for line in lines), out_ok
    assert f"logs: smepulse logs external-sync-20250101 -n {ns}" in out_ok

    assert bad.returncode == 1, err_bad
    assert "external-sync-20250102 dbt-external-silver Failed" in out_bad
    assert "external-sync-20250102 dbt-external-gold Skipped" in out_bad
    table = out_bad[out_bad.index("external-sync-20250102: Failed") :]
    row = next(line for line in table.splitlines() if "dbt-external-silver" in line)
    assert "Failed" in row.split()
    assert "; failed stage: dbt-external-silver" in out_bad


@pytest.mark.stage_env(FAKE_SLEEP="*=60,notify=0")
def test_suspend_resume_cancel_set_the_spec_and_the_operator_reacts(
    operator: Operator, runs: Runs, stage_env: StageEnv, kube_namespace: str
) -> None:
    ns, name = kube_namespace, "external-sync-20250201"
    runs.create(name, pipeline="external-sync", logicalDate="2025-02-01", retries=NO_RETRY)
    # Before the operator sees it: suspended, it must not start.
    out = cli("suspend", name, "-n", ns)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"pipelinerun {ns}/{name}: spec.suspend=true (phase was Pending)"
    assert runs.get(name)["spec"]["suspend"] is True
    with operator():
        wait_for(
            lambda: runs.condition(name).get("reason") == "Suspended",
            timeout=30,
            what="the run to be held as Suspended",
            describe=lambda: str(runs.status(name)),
        )
        assert runs.status(name)["phase"] == "Pending" and runs.jobs(name) == []

        out = cli("resume", name, "-n", ns)
        assert out.returncode == 0, out.stderr
        assert "spec.suspend=false (phase was Pending)" in out.stdout
        assert runs.get(name)["spec"]["suspend"] is False
        runs.wait_phase(name, "Running", timeout=30)
        wait_for(lambda: runs.jobs(name), timeout=30, what="a stage Job of the resumed run")

        out = cli("cancel", name, "-n", ns)
        assert out.returncode == 0, out.stderr
        assert (
            out.stdout.strip() == f"pipelinerun {ns}/{name}: spec.cancel=true (phase was Running)"
        )
        status = runs.wait_phase(name, timeout=60)
        assert status["phase"] == "Cancelled"
        by_name = {s["name"]: s["phase"] for s in status["stages"]}
        assert by_name["ingest-worldbank"] == "Cancelled" and by_name["notify"] == "Succeeded"

        missing = cli("cancel", "external-sync-20990101", "-n", ns)
        assert missing.returncode == 2
        assert "pipelinerun" in missing.stderr and "not found" in missing.stderr


@pytest.mark.stage_env(FAKE_FAIL="dbt-external-silver")
def test_retry_reruns_a_failed_run_from_its_failed_stage_once(
    operator: Operator,
    runs: Runs,
    stage_env: StageEnv,
    kube_namespace: str,
    kube_api: client.ApiClient,
) -> None:
    ns, name = kube_namespace, "external-sync-20250301"
    with operator():
        runs.create(
            name,
            pipeline="external-sync",
            logicalDate="2025-03-01",
            params={"tenant": "acme"},
            retries=NO_RETRY,
        )
        status = runs.wait_phase(name, timeout=90)
        assert status["phase"] == "Failed" and status["failedStage"] == "dbt-external-silver"

        # The cause is fixed (the stage no longer fails), then the run is retried.
        client.CoreV1Api(kube_api).patch_namespaced_config_map(
            "smepulse-config", ns, {"data": {"FAKE_FAIL": ""}}
        )
        first = cli("retry", name, "-n", ns)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == (
            f"pipelinerun {ns}/{name}-retry1 created: {name} again from stage dbt-external-silver"
        )
        second = cli("retry", name, "-n", ns)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == (
            f"pipelinerun {ns}/{name}-retry1 already exists: nothing to do"
        )
        names = sorted(r["metadata"]["name"] for r in runs.list())
        assert names == [name, f"{name}-retry1"]
        spec = runs.get(f"{name}-retry1")["spec"]
        assert spec["fromStage"] == "dbt-external-silver"
        assert spec["pipeline"] == "external-sync" and spec["logicalDate"] == "2025-03-01"
        assert spec["params"] == {"tenant": "acme"} and spec["retries"]["limit"] == 0

        done = runs.wait_phase(f"{name}-retry1", timeout=90)
        assert done["phase"] == "Succeeded", done
        # Only the failed stage and what is downstream of it ran again.
        assert sorted(runs.job_stages(f"{name}-retry1")) == [
            "dbt-external-gold",
            "dbt-external-silver",
            "notify",
        ]

        refused = cli("retry", f"{name}-retry1", "-n", ns)
        assert refused.returncode == 2
        assert refused.stderr.strip() == (
            f"error: pipelinerun {ns}/{name}-retry1 is Succeeded, not Failed: nothing to retry"
        )

"""Fixtures for the operator's tests against the real API server (tests/kube fixtures).

* ``pipelinerun_crd`` (session): the chart's CRD applied with the built kubectl;
* ``stage_env`` (function): the namespace's ``smepulse-config`` ConfigMap, which the stage
  Jobs load by ``envFrom``; it puts :mod:`fake_stage` first on ``PATH`` (as ``smepulse``),
  so the node stand-in runs scripted stages: real Pods, real Job controller, real operator;
* ``operator`` (function): the operator in-process (``kopf.testing.KopfRunner``) watching the
  test's namespace; after the test it must have exited 0 with no traceback in its log;
* ``runs``: small helpers to create, read and wait for PipelineRuns.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube.controlplane import ControlPlane
from tests.kube.node import NodeStandIn
from tests.kube.wait import wait_for

CRD = (
    Path(__file__).resolve().parents[3] / "charts/smepulse/files/crds/pipelineruns.smepulse.io.yaml"
)
FAKE_STAGE = Path(__file__).with_name("fake_stage.py")
GROUP, VERSION, PLURAL = "smepulse.io", "v1alpha1", "pipelineruns"
TERMINAL = ("Succeeded", "Failed", "Cancelled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pipelinerun_crd(kube_cluster: ControlPlane) -> Path:
    kube_cluster.kubectl("apply", "-f", str(CRD))
    kube_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/pipelineruns.smepulse.io", "--timeout=60s"
    )
    return CRD


@pytest.fixture(scope="session")
def fake_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``smepulse`` = the scripted stage (shebang: this very interpreter)."""
    folder = tmp_path_factory.mktemp("fakebin")
    script = folder / "smepulse"
    script.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = 'smepulse'\n"
        f"runpy.run_path({str(FAKE_STAGE)!r}, run_name='__main__')\n"
    )
    script.chmod(0o755)
    return folder


@dataclass
class StageEnv:
    """The namespace's stage configuration and the fake stages' log."""

    log: Path

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture
def stage_env(
    kube_api: client.ApiClient,
    kube_namespace: str,
    kube_node: NodeStandIn,
    fake_bin: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> StageEnv:
    """ConfigMap ``smepulse-config``; a test adds keys with ``@pytest.mark.stage_env(KEY=value)``."""
    log = tmp_path / "fake-stages.jsonl"
    data = {"PATH": f"{fake_bin}:{Path(sys.executable).parent}:/usr/bin:/bin", "FAKE_LOG": str(log)}
    marker = request.node.get_closest_marker("stage_env")
    if marker:
        data.update(marker.kwargs)
    client.CoreV1Api(kube_api).create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "smepulse-config"}, "data": data}
    )
    return StageEnv(log)


@pytest.fixture
def operator_env(
    kube_cluster: ControlPlane, pipelinerun_crd: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = {
        "KUBECONFIG": str(kube_cluster.kubeconfig),
        "SMEPULSE_KUBECONFIG": str(kube_cluster.kubeconfig),
        "SMEPULSE_OPERATOR_METRICS_PORT": str(free_port()),
        "SMEPULSE_OPERATOR_HEALTH_PORT": str(free_port()),
        "SMEPULSE_OPERATOR_RECONCILE_INTERVAL_SECONDS": "2",
        "SMEPULSE_JOB_IMAGE": "smepulse:test",
        "SMEPULSE_LOG_FORMAT": "text",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@contextlib.contextmanager
def running_operator(env: dict[str, str], namespace: str) -> Iterator[KopfRunner]:
    """The real operator, in-process, watching only ``namespace``; afterwards it must have
    exited 0 with no traceback in its output.

    Used inside the test body, not as a fixture: click's CliRunner (under KopfRunner) swaps
    sys.stdout for its whole life, and pytest swapping capture between the setup, call and
    teardown phases would drop (and close) that stream.
    """
    args = ["run", "--standalone", "-m", "smepulse_operator.handlers", "--namespace", namespace]
    with KopfRunner(args, timeout=60) as runner:
        wait_for(lambda: _ready(env), timeout=30, what="operator startup")
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output
    assert not operator_tracebacks(runner.output), runner.output


_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\] (\S+)\s+\[", re.MULTILINE)


def operator_tracebacks(output: str) -> list[str]:
    """Log records with a traceback from the operator's side (kopf, smepulse).

    The runner's output holds the whole process's log, test helpers included (the node
    stand-in logs in the same process): only the operator's records count.
    """
    starts = [(m.start(), m.group(1)) for m in _RECORD.finditer(output)]
    bad = []
    for i, (pos, logger) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(output)
        record = output[pos:end]
        if "Traceback" in record and not logger.startswith("tests."):
            bad.append(record)
    return bad


Operator = Callable[[], contextlib.AbstractContextManager[KopfRunner]]


@pytest.fixture
def operator(operator_env: dict[str, str], kube_namespace: str, stage_env: StageEnv) -> Operator:
    """``with operator(): ...`` runs the operator on the test's namespace for the block."""
    return lambda: running_operator(operator_env, kube_namespace)


def _ready(env: dict[str, str]) -> bool:
    import urllib.request

    try:
        url = f"http://127.0.0.1:{env['SMEPULSE_OPERATOR_HEALTH_PORT']}/readyz"
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


class Runs:
    """PipelineRun helpers bound to one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.ns = api, namespace
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PipelineRun",
            "metadata": {"name": name},
            "spec": spec,
        }
        doc: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, body
        )
        return doc

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.ns, PLURAL, name
            )
            return doc
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, name: str, **spec: Any) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec}
        )

    def list(self) -> list[dict[str, Any]]:
        doc = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL)
        return list(doc["items"])

    def status(self, name: str) -> dict[str, Any]:
        return dict((self.get(name) or {}).get("status") or {})

    def condition(self, name: str) -> dict[str, Any]:
        conds = self.status(name).get("conditions") or []
        return next((c for c in conds if c["type"] == "Succeeded"), {})

    def wait_phase(self, name: str, *phases: str, timeout: float = 120) -> dict[str, Any]:
        """Wait for one of ``phases`` (default: any terminal phase); return the status."""
        wanted = phases or TERMINAL
        return wait_for(
            lambda: (s := self.status(name)).get("phase") in wanted and s,
            timeout=timeout,
            interval=0.5,
            what=f"run {name} to reach {'/'.join(wanted)}",
            describe=lambda: json.dumps(self.status(name))[:2000],
        )

    def jobs(self, run: str | None = None) -> list[Any]:
        selector = f"smepulse.io/run={run}" if run else "smepulse.io/run"
        return list(self.batch.list_namespaced_job(self.ns, label_selector=selector).items)

    def job_stages(self, run: str) -> list[str]:
        """Stages of the run's Jobs in creation order (one entry per attempt)."""
        jobs = sorted(
            self.jobs(run),
            key=lambda j: (j.metadata.creation_timestamp, j.metadata.labels["smepulse.io/attempt"]),
        )
        return [j.metadata.labels["smepulse.io/stage"] for j in jobs]

    def events(self, name: str) -> list[tuple[str, str, str]]:
        items = (
            client.CoreV1Api(self.api)
            .list_namespaced_event(
                self.ns,
                field_selector=f"involvedObject.name={name},involvedObject.kind=PipelineRun",
            )
            .items
        )
        items.sort(key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
        return [(e.type, e.reason, e.message) for e in items]

    def wait_events(
        self, name: str, *reasons: str, timeout: float = 30
    ) -> list[tuple[str, str, str]]:
        """Events are posted asynchronously: wait until all ``reasons`` appear."""

        def probe() -> list[tuple[str, str, str]] | None:
            seen = self.events(name)
            return seen if set(reasons) <= {r for _, r, _ in seen} else None

        return wait_for(
            probe,
            timeout=timeout,
            what=f"events {reasons} on {name}",
            describe=lambda: str(self.events(name)),
        )


@pytest.fixture
def runs(kube_api: client.ApiClient, kube_namespace: str) -> Runs:
    return Runs(kube_api, kube_namespace)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stage_env(**keys): extra keys of the stage ConfigMap")


def settle(seconds: float) -> None:
    """Give the operator time to (wrongly) act, for "nothing happens" assertions."""
    time.sleep(seconds)

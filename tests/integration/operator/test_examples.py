"""The example PipelineRuns in examples/ are what a user runs with `kubectl create -f`: each
must pass admission on the real API server (schema and CEL rules) as it is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kube.controlplane import ControlPlane

pytestmark = pytest.mark.integration
EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("pipelinerun-*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_is_admitted(
    example: Path, kube_cluster: ControlPlane, pipelinerun_crd: Path, kube_namespace: str
) -> None:
    result = kube_cluster.kubectl(
        "create",
        "--dry-run=server",
        "-n",
        kube_namespace,
        "-f",
        str(example),
        "-o",
        "name",
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pipelinerun.smepulse.io/")

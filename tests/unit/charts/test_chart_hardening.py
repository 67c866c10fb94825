"""Chart hardening of issue #13 (points 5-7), proven on the chart rendered by the real Helm:
no Service-link variables in any Pod, CronJob names a CronJob can carry, ``global`` accepted for
subchart use, aggregated ClusterRoles for namespace users, the CRD protected from Argo CD pruning,
startup probes, and no password in a process's arguments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.charts.helmlib import CHART, SCENARIOS, Helm, Manifest

pytestmark = pytest.mark.unit

FULL = CHART / "ci" / "full-values.yaml"
IDS = [p.name.removesuffix("-values.yaml") for p in SCENARIOS]


def _pod_specs_anywhere(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every mapping holding ``containers`` (a Pod spec), wherever it sits in the manifest:
    found by walking the whole object rather than by knowing where each kind keeps it."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield path, node
        for key, value in node.items():
            yield from _pod_specs_anywhere(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _pod_specs_anywhere(value, f"{path}[{i}]")


def _every_pod_spec(manifests: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{m['kind']}/{m['metadata']['name']}{where}", spec)
        for m in manifests
        for where, spec in _pod_specs_anywhere(m, "")
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_no_pod_gets_service_link_variables(helm: Helm, scenario: Any) -> None:
    manifests = helm.template([scenario])
    pods = _every_pod_spec(manifests)
    assert pods, "no Pod spec rendered"
    without = [ref for ref, spec in pods if spec.get("enableServiceLinks") is not False]
    assert without == [], f"Pods that would get <SERVICE>_PORT=tcp://... variables: {without}"


def test_service_link_walk_covers_every_workload_kind(helm: Helm) -> None:
    """The full scenario turns every optional component on; the walk above must have seen a
    Pod spec in each kind the chart renders Pods with, helm test Pods included."""
    manifests = helm.template([FULL])
    seen = {ref.split("/", 1)[0] for ref, _ in _every_pod_spec(manifests)}
    assert seen == {"Deployment", "StatefulSet", "Job", "CronJob", "Pod"}
    # Counted by hand: operator, mlflow, redis, metabase, trino coordinator and worker
    # (Deployments); minio, postgresql (StatefulSets); the bucket hook (Job); 4 CronJobs; 2 helm
    # test Pods.
    assert len(_every_pod_spec(manifests)) == 15

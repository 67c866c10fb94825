"""The chart's NetworkPolicies: each data service admits the chart's own workloads and the
operator's stage Jobs, and nothing else in the namespace.

Label matching is done here the way the API server defines ``matchLabels`` (every listed label
present with that value); the stage Job labels come from the operator's own renderer, so a
change there that would cut the stages off their data fails this test. Whether a CNI enforces
the policies is not tested: the test node's CNI (bridge) does not implement NetworkPolicy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smepulse_operator.render import job_labels
from tests.unit.charts.helmlib import CHART, Helm, kinds

pytestmark = pytest.mark.unit

FULL = CHART / "ci" / "full-values.yaml"
MINIMAL = CHART / "ci" / "minimal-values.yaml"


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _admitted(peers: list[dict[str, str]], labels: dict[str, str]) -> bool:
    return any(_matches(peer, labels) for peer in peers)


def _pod_labels(manifests: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """kind/name -> labels of the Pods each workload runs."""
    out: dict[str, dict[str, str]] = {}
    for m in manifests:
        ref = f"{m['kind']}/{m['metadata']['name']}"
        if m["kind"] in ("Deployment", "StatefulSet"):
            out[ref] = m["spec"]["template"]["metadata"]["labels"]
        elif m["kind"] == "CronJob":
            out[ref] = m["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return out


def test_each_data_service_admits_only_smepulse_pods(helm: Helm) -> None:
    manifests = helm.template([FULL])
    policies = {p["metadata"]["name"]: p["spec"] for p in kinds(manifests, "NetworkPolicy")}
    assert set(policies) == {
        "smepulse-minio",
        "smepulse-postgresql",
        "smepulse-trino-coordinator",
        "smepulse-trino-worker",
        "smepulse-redis",
        "smepulse-mlflow",
    }
    pods = _pod_labels(manifests)
    stage = job_labels("daily-etl-20250101", "daily-etl", "dbt-silver", 1)
    stranger = {"app": "someone-elses-debug-pod", "app.kubernetes.io/name": "smepulse"}
    for name, spec in policies.items():
        # It selects exactly its own workload's Pods (by hand: the workload named like it).
        selected = {
            ref
            for ref, labels in pods.items()
            if _matches(spec["podSelector"]["matchLabels"], labels)
        }
        assert selected == {f"Deployment/{name}", f"StatefulSet/{name}"} & set(pods), name
        assert spec["policyTypes"] == ["Ingress"]
        (rule,) = spec["ingress"]
        peers = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
        # Every workload of the chart, the stage Jobs, not a stranger.
        assert [ref for ref, labels in pods.items() if not _admitted(peers, labels)] == [], name
        assert _admitted(peers, stage), name
        assert not _admitted(peers, stranger), name
        assert "ports" not in rule  # every port of the service: S3 and console, HTTP, 5432...


def test_extra_peers_are_added_and_the_switch_turns_them_off(helm: Helm, tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "networkPolicy:\n  extraFrom:\n"
        "    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}\n"
    )
    manifests = helm.template([FULL, extra])
    for policy in kinds(manifests, "NetworkPolicy"):
        assert policy["spec"]["ingress"][0]["from"][1] == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
        }
    assert (
        kinds(helm.template([FULL], sets={"networkPolicy.enabled": "false"}), "NetworkPolicy") == []
    )
    # Bring-your-own services: nothing of the chart's to protect.
    assert kinds(helm.template([MINIMAL]), "NetworkPolicy") == []

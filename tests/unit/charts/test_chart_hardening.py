"""Chart hardening of issue #13 (points 5-7), proven on the chart rendered by the real Helm:
no Service-link variables in any Pod, CronJob names a CronJob can carry, ``global`` accepted for
subchart use, aggregated ClusterRoles for namespace users, the CRD protected from Argo CD pruning,
startup probes, and no password in a process's arguments."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.charts.helmlib import (
    CHART,
    KUBE_VERSION,
    SCENARIOS,
    Helm,
    Manifest,
    find,
    kinds,
)

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
    assert seen == {"Deployment", "StatefulSet", "CronJob", "Pod"}
    # Counted by hand: operator, mlflow, redis, metabase, trino coordinator and worker
    # (Deployments); minio, postgresql (StatefulSets); 4 CronJobs; 2 helm test Pods. (The stage
    # Jobs are the operator's, not the chart's; the bucket hook Job is gone.)
    assert len(_every_pod_spec(manifests)) == 14


#: The longest release name Helm accepts (53 characters), without and with the chart's name in
#: it (the fullname is then the release name alone).
LONGEST_RELEASES = [
    "a-very-long-release-name-for-a-small-business-tenant1",
    "tenant-0123456789-smepulse-production-cluster-west-02",
]


@pytest.mark.parametrize("release", LONGEST_RELEASES)
def test_cronjob_names_fit_the_cronjob_limit(helm: Helm, release: str) -> None:
    assert len(release) == 53
    cronjobs = kinds(helm.template([FULL], release=release), "CronJob")
    names = {
        c["metadata"]["labels"]["smepulse.io/pipeline"]: c["metadata"]["name"] for c in cronjobs
    }
    assert set(names) == {"daily-etl", "ml-training", "external-sync", "ml-predict"}
    for pipeline, name in names.items():
        # 52: the API server's limit for a CronJob name (it appends -<11 chars> for each Job).
        assert len(name) <= 52, (name, len(name))
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        assert name.endswith(f"-{pipeline}"), name  # still says which pipeline it runs
        assert name.startswith(release[:20]), name  # and which release
    assert len(set(names.values())) == 4


def _daily_cronjob_name(helm: Helm, release: str) -> str:
    (cron,) = [
        c
        for c in kinds(helm.template(release=release), "CronJob")
        if c["metadata"]["labels"]["smepulse.io/pipeline"] == "daily-etl"
    ]
    return str(cron["metadata"]["name"])


def test_two_long_releases_with_a_common_prefix_get_different_cronjob_names(helm: Helm) -> None:
    other = LONGEST_RELEASES[0][:-1] + "2"
    # Same truncated prefix; the hash of the whole fullname tells them apart.
    assert _daily_cronjob_name(helm, LONGEST_RELEASES[0]) != _daily_cronjob_name(helm, other)


def test_short_cronjob_names_are_unchanged(helm: Helm) -> None:
    names = {
        c["metadata"]["name"] for c in kinds(helm.template([FULL], release="pulse"), "CronJob")
    }
    assert names == {
        "pulse-smepulse-daily-etl",
        "pulse-smepulse-ml-training",
        "pulse-smepulse-external-sync",
        "pulse-smepulse-ml-predict",
    }


def test_global_values_pass_the_schema(helm: Helm) -> None:
    proc = helm.template_text(sets={"global.foo": "bar", "global.imageRegistry": "r.local"})
    assert proc.returncode == 0, proc.stderr
    # Our own keys stay closed: a typo at the root is still refused.
    refused = helm.template_text(sets={"globl.foo": "bar"}, check=False)
    assert refused.returncode != 0 and "globl" in refused.stderr


def test_chart_renders_as_a_subchart_with_global_values(helm: Helm, tmp_path: Path) -> None:
    """A parent chart carrying this one in charts/ with `global` values: Helm copies the
    parent's globals into the subchart's values, which the schema must accept."""
    parent = tmp_path / "platform"
    (parent / "charts").mkdir(parents=True)
    shutil.copytree(CHART, parent / "charts" / "smepulse")
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: platform\nversion: 1.0.0\n", encoding="utf-8"
    )
    (parent / "values.yaml").write_text(
        "global:\n  imageRegistry: registry.example.internal\n  storageClass: fast\n"
        "smepulse:\n  minio:\n    enabled: false\n",
        encoding="utf-8",
    )
    proc = helm.run(
        "template", "acme", str(parent), "--namespace", "data", "--kube-version", KUBE_VERSION,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    find(docs, "Deployment", "acme-smepulse-operator")
    # The parent's subchart values reached it: MinIO is off.
    assert not [d for d in docs if d["metadata"]["name"] == "acme-smepulse-minio"]


def _cluster_roles(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {c["metadata"]["name"]: c for c in kinds(manifests, "ClusterRole")}


def test_pipelinerun_roles_aggregate_into_the_default_user_roles(helm: Helm) -> None:
    roles = _cluster_roles(helm.template([CHART / "ci" / "minimal-values.yaml"]))
    # <namespace>-<fullname>-...: releases named alike in two namespaces do not clash.
    edit = roles["smepulse-smepulse-pipelineruns-edit"]
    view = roles["smepulse-smepulse-pipelineruns-view"]
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    assert {k: v for k, v in edit["metadata"]["labels"].items() if k.startswith(aggregate)} == {
        f"{aggregate}admin": "true",
        f"{aggregate}edit": "true",
    }
    assert {k: v for k, v in view["metadata"]["labels"].items() if k.startswith(aggregate)} == {
        f"{aggregate}view": "true"
    }
    # Only PipelineRuns; users never write status (the operator's).
    for role in (edit, view):
        assert {g for rule in role["rules"] for g in rule["apiGroups"]} == {"smepulse.io"}
    edit_verbs = {
        verb
        for rule in edit["rules"]
        if "pipelineruns" in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {"create", "patch", "delete", "get", "list", "watch"} <= edit_verbs
    status_verbs = {
        verb
        for role in (edit, view)
        for rule in role["rules"]
        if "pipelineruns/status" in rule["resources"]
        for verb in rule["verbs"]
    }
    assert status_verbs == {"get", "list", "watch"}
    assert {v for rule in view["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}


def test_aggregated_roles_can_be_turned_off(helm: Helm) -> None:
    manifests = helm.template(sets={"rbac.aggregateToDefaultRoles": "false"})
    assert not [n for n in _cluster_roles(manifests) if "pipelineruns" in n]


def test_aggregated_role_names_differ_per_namespace_and_stay_short(helm: Helm) -> None:
    a = _cluster_roles(helm.template(namespace="team-a"))
    b = _cluster_roles(helm.template(namespace="team-b"))
    assert set(a) & set(b) == set()
    long_ns = "n" * 63
    rendered = _cluster_roles(helm.template(namespace=long_ns, release=LONGEST_RELEASES[0]))
    names = [n for n in rendered if "-pipelineruns-" in n]
    assert sorted(len(n) for n in names) == [63, 63], names
    assert all(n.endswith(("-pipelineruns-edit", "-pipelineruns-view")) for n in names)


def test_crd_is_protected_from_argocd_prune_and_delete(helm: Helm) -> None:
    crd = find(helm.template([FULL]), "CustomResourceDefinition", "pipelineruns.smepulse.io")
    annotations = crd["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    assert annotations["helm.sh/resource-policy"] == "keep"
    # crds.keep=false means "delete the CRD with the release": for Argo CD too.
    loose = find(
        helm.template([FULL], sets={"crds.keep": "false"}),
        "CustomResourceDefinition",
        "pipelineruns.smepulse.io",
    )
    assert "argocd.argoproj.io/sync-options" not in loose["metadata"].get("annotations", {})


def _secret_values(manifests: list[Manifest]) -> set[str]:
    """Values of the rendered Secrets' password and secret keys (user names such as MinIO's
    root user `smepulse` are not secret, and are also the bucket's name)."""
    values = set()
    for secret in kinds(manifests, "Secret"):
        data = {
            k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()
        } | dict(secret.get("stringData") or {})
        values |= {v for k, v in data.items() if re.search("(?i)password|secret", k)}
    return values


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_no_password_in_a_process_arguments(helm: Helm, scenario: Path) -> None:
    """A process's arguments are readable by every local user (/proc/<pid>/cmdline, `ps`):
    no container's command or args may hold a secret, literally or as $(VAR) that the kubelet
    would expand from a Secret-sourced variable."""
    manifests = helm.template([scenario])
    secrets = _secret_values(manifests)
    offenders = []
    for ref, pod in _every_pod_spec(manifests):
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            argv = [*container.get("command", []), *container.get("args", [])]
            from_secrets = {
                e["name"]
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            for arg in argv:
                offenders += [(ref, f"$({n})") for n in from_secrets if f"$({n})" in arg]
                offenders += [(ref, "a rendered Secret value") for v in secrets if v in arg]
    assert offenders == []


def test_the_secret_scan_sees_the_generated_passwords(helm: Helm) -> None:
    # The check above is only as good as its list: it holds MinIO's, PostgreSQL's and Redis's.
    secrets = _secret_values(helm.template([FULL]))
    assert len([v for v in secrets if re.fullmatch(r"[A-Za-z0-9]{32}", v)]) >= 3


@pytest.mark.parametrize(
    "deployment", ["smepulse-trino-coordinator", "smepulse-trino-worker", "smepulse-mlflow"]
)
def test_slow_starters_have_a_startup_probe(helm: Helm, deployment: str) -> None:
    pod = find(helm.template([FULL]), "Deployment", deployment)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    startup = container["startupProbe"]
    # At least 3 minutes before the kubelet gives up on a first start...
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180
    assert startup["httpGet"]["port"] == "http"
    # ...and liveness needs no initial delay of its own (it only starts after startup).
    assert "initialDelaySeconds" not in container["livenessProbe"]

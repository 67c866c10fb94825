"""Chart hardening of issue #13 against a real kube-apiserver and kube-controller-manager:
CronJob names of the longest release name are accepted, and the aggregated ClusterRoles let
namespace `edit`/`admin`/`view` users work with PipelineRuns (the controller-manager's
clusterrole-aggregation controller copies the rules; the API server's RBAC authorizer decides,
asked through SubjectAccessReview: `kubectl auth can-i` would need the CRD installed, which
other modules of this cluster own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.integration.charts.kubehelp import wait_for
from tests.kube.controlplane import ControlPlane
from tests.unit.charts.helmlib import CHART

pytestmark = pytest.mark.integration

#: 53 characters: the longest release name Helm accepts.
LONGEST_RELEASE = "a-very-long-release-name-for-a-small-business-tenant1"


def test_longest_release_name_is_accepted_by_the_api_server(
    kube_cluster: ControlPlane, kube_namespace: str
) -> None:
    assert len(LONGEST_RELEASE) == 53
    rendered = kube_cluster.helm(
        "template", LONGEST_RELEASE, str(CHART), "-n", kube_namespace,
        "-f", str(CHART / "ci" / "full-values.yaml"),
    ).stdout  # fmt: skip
    proc = kube_cluster.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=rendered, check=False
    )
    # The API server refuses a CronJob name over 52 characters ("must be no more than 52
    # characters"): before the chart shortened them, each CronJob here failed that way.
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("cronjob.batch/") == 4, proc.stdout


def _allowed(
    api: client.ApiClient, user: str, namespace: str, verb: str, resource: str, sub: str = ""
) -> bool:
    review = client.AuthorizationV1Api(api).create_subject_access_review(
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": ["system:authenticated"],
                "resourceAttributes": {
                    "group": "smepulse.io",
                    "resource": resource,
                    "subresource": sub,
                    "verb": verb,
                    "namespace": namespace,
                },
            },
        }
    )
    return bool(review.status.allowed)


@pytest.fixture
def users(kube_api: client.ApiClient, kube_namespace: str) -> dict[str, str]:
    """Three users bound in the namespace to the built-in admin, edit and view ClusterRoles."""
    rbac = client.RbacAuthorizationV1Api(kube_api)
    suffix = uuid.uuid4().hex[:6]
    users = {role: f"{role}-user-{suffix}" for role in ("admin", "edit", "view")}
    for role, user in users.items():
        rbac.create_namespaced_role_binding(
            kube_namespace,
            {
                "metadata": {"name": f"{role}-{suffix}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )
    return users


@pytest.fixture
def chart_cluster_roles(kube_cluster: ControlPlane, kube_namespace: str) -> Iterator[str]:
    """The chart's aggregated ClusterRoles, rendered for this namespace and created for real
    (cluster-scoped: deleted afterwards so `edit` in other tests' cluster is as before)."""
    rendered = kube_cluster.helm(
        "template", "smepulse", str(CHART), "-n", kube_namespace,
        "--show-only", "templates/rbac/rbac-aggregated-clusterroles.yaml",
    ).stdout  # fmt: skip
    kube_cluster.kubectl("apply", "-f", "-", input=rendered)
    try:
        yield rendered
    finally:
        kube_cluster.kubectl("delete", "--ignore-not-found", "-f", "-", input=rendered)


def test_namespace_users_get_pipelinerun_rights_through_aggregation(
    kube_cluster: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    users: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    ns = kube_namespace
    # Before the chart's ClusterRoles exist, edit grants nothing on a custom resource.
    assert not _allowed(kube_api, users["edit"], ns, "create", "pipelineruns")
    assert not _allowed(kube_api, users["view"], ns, "list", "pipelineruns")

    request.getfixturevalue("chart_cluster_roles")
    # The clusterrole-aggregation controller (kube-controller-manager) copies the rules into
    # edit/admin/view shortly after; the authorizer then allows.
    wait_for(
        "edit to aggregate the PipelineRun rules",
        lambda: _allowed(kube_api, users["edit"], ns, "create", "pipelineruns") or None,
        timeout=60,
    )
    wait_for(
        "view to aggregate the PipelineRun rules",
        lambda: _allowed(kube_api, users["view"], ns, "list", "pipelineruns") or None,
        timeout=60,
    )
    wait_for(
        "admin to aggregate the PipelineRun rules",
        lambda: _allowed(kube_api, users["admin"], ns, "delete", "pipelineruns") or None,
        timeout=60,
    )
    for role in ("admin", "edit"):
        for verb in ("get", "list", "watch", "create", "patch", "delete"):
            assert _allowed(kube_api, users[role], ns, verb, "pipelineruns"), (role, verb)
        # status is the operator's to write; readable by all.
        assert _allowed(kube_api, users[role], ns, "get", "pipelineruns", "status"), role
        assert not _allowed(kube_api, users[role], ns, "patch", "pipelineruns", "status"), role
    for verb in ("get", "list", "watch"):
        assert _allowed(kube_api, users["view"], ns, verb, "pipelineruns"), verb
    for verb in ("create", "patch", "delete"):
        assert not _allowed(kube_api, users["view"], ns, verb, "pipelineruns"), verb
    # A RoleBinding scopes it: nothing in another namespace.
    assert not _allowed(kube_api, users["edit"], "default", "create", "pipelineruns")
    assert not _allowed(kube_api, users["view"], "default", "get", "pipelineruns")

"""The Argo CD example: Applications point at the chart and at values that render, the dev ->
prod layout holds, and the argocd-cm patch carries exactly the tested Lua script."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.unit.charts.helmlib import CHART, KUBE_VERSION, REPO_ROOT, Helm, kinds

pytestmark = pytest.mark.unit

ARGOCD = REPO_ROOT / "deploy" / "argocd"
APPS = {p.stem: yaml.safe_load(p.read_text()) for p in (ARGOCD / "applications").glob("*.yaml")}
ENVIRONMENTS = ["dev", "prod"]


def _app(env: str) -> dict[str, Any]:
    app: dict[str, Any] = APPS[f"smepulse-{env}"]
    return app


def _value_files(env: str) -> list[Path]:
    source = _app(env)["spec"]["source"]
    chart_dir = REPO_ROOT / source["path"]
    return [(chart_dir / f).resolve() for f in source["helm"]["valueFiles"]]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_application_points_at_the_chart_and_its_environment(env: str) -> None:
    app = _app(env)
    assert app["kind"] == "Application" and app["spec"]["project"] == "smepulse"
    assert (REPO_ROOT / app["spec"]["source"]["path"]).resolve() == CHART
    assert _value_files(env) == [ARGOCD / "environments" / env / "values.yaml"]
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_project_allows_both_destinations() -> None:
    project = APPS["project"]["spec"]
    allowed = {(d["server"], d["namespace"]) for d in project["destinations"]}
    for env in ENVIRONMENTS:
        dest = _app(env)["spec"]["destination"]
        assert (dest["server"], dest["namespace"]) in allowed
        assert _app(env)["spec"]["source"]["repoURL"] in project["sourceRepos"]
    kinds_allowed = {w["kind"] for w in project["clusterResourceWhitelist"]}
    assert {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"} <= kinds_allowed


def test_dev_follows_main_and_prod_is_pinned_to_a_tag() -> None:
    assert _app("dev")["spec"]["source"]["targetRevision"] == "main"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", _app("prod")["spec"]["source"]["targetRevision"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_values_lint_and_render_without_generated_secrets(helm: Helm, env: str) -> None:
    files = _value_files(env)
    proc = helm.run("lint", "--strict", str(CHART), *[a for f in files for a in ("-f", str(f))])
    assert "0 chart(s) failed" in proc.stdout
    manifests = helm.template(files, namespace=_app(env)["spec"]["destination"]["namespace"])
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    # Argo CD cannot `lookup`: nothing may be generated at render time.
    assert kinds(manifests, "Secret") == []
    assert kinds(manifests, "Pod") == []  # no helm test Pods under Argo CD


def test_argocd_cm_patch_embeds_the_tested_script() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-health.yaml").read_text())
    script = (ARGOCD / "health" / "pipelinerun.lua").read_text()
    assert patch["data"] == {"resource.customizations.health.smepulse.io_PipelineRun": script}

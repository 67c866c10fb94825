"""The Argo CD example: Applications point at the chart and at values that render, the dev ->
prod layout holds, and the argocd-cm patch carries exactly the tested Lua script."""

from __future__ import annotations

import re
from collections.abc import Iterator
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


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_prod_runs_both_smepulse_images_by_digest_everywhere(helm: Helm) -> None:
    prod = yaml.safe_load(_value_files("prod")[0].read_text())
    digests = {prod["image"][name]["digest"] for name in ("operator", "stages")}
    manifests = helm.template(_value_files("prod"), namespace="smepulse")
    refs = {
        str(node["image"])
        for m in manifests
        for node in _walk(m)
        if "image" in node and isinstance(node["image"], str)
    }
    refs |= {
        str(node["value"])
        for m in manifests
        for node in _walk(m)
        if node.get("name") == "SMEPULSE_JOB_IMAGE" and "value" in node
    }
    ours = {r for r in refs if r.startswith("ghcr.io/smepulse/")}
    assert ours == {
        f"ghcr.io/smepulse/smepulse-operator@{prod['image']['operator']['digest']}",
        f"ghcr.io/smepulse/smepulse-stages@{prod['image']['stages']['digest']}",
    }
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d) for d in digests)
    # dev follows the tag (the chart's appVersion): nothing pinned there.
    dev = helm.template(_value_files("dev"), namespace="smepulse")
    assert not any("@sha256:" in str(n.get("image", "")) for m in dev for n in _walk(m))


def test_a_malformed_digest_is_refused_by_the_schema(helm: Helm) -> None:
    proc = helm.template_text(sets={"image.stages.digest": "sha256:abc"}, check=False)
    assert proc.returncode != 0
    assert "/image/stages/digest" in proc.stderr and "pattern" in proc.stderr


def test_the_external_secrets_make_every_secret_and_key_prod_reads(helm: Helm) -> None:
    objects = list(yaml.safe_load_all((ARGOCD / "secrets" / "external-secrets.yaml").read_text()))
    made: dict[str, set[str]] = {}
    for obj in objects:
        assert obj["apiVersion"] == "external-secrets.io/v1" and obj["kind"] == "ExternalSecret"
        target = obj["spec"]["target"]
        template = target.get("template", {}).get("data")
        keys = set(template) if template else {d["secretKey"] for d in obj["spec"]["data"]}
        made[target["name"]] = keys
    prod = yaml.safe_load(_value_files("prod")[0].read_text())
    named = {
        prod["config"]["existingSecret"],
        prod["minio"]["auth"]["existingSecret"],
        prod["postgresql"]["auth"]["existingSecret"],
        prod["redis"]["auth"]["existingSecret"],
    }
    assert set(made) == named
    manifests = helm.template(_value_files("prod"), namespace="smepulse")
    read = {
        (n["secretKeyRef"]["name"], n["secretKeyRef"]["key"])
        for m in manifests
        for n in _walk(m)
        if "secretKeyRef" in n
    }
    assert read, "prod renders no secretKeyRef: the test would prove nothing"
    for name, key in sorted(read):
        assert key in made.get(name, set()), f"{name} lacks {key}"
    # What the stage Jobs load wholesale (envFrom) is listed in this README's table.
    assert {
        "SMEPULSE_S3_ACCESS_KEY_ID",
        "SMEPULSE_S3_SECRET_ACCESS_KEY",
        "SMEPULSE_REDIS_URL",
    } <= made[prod["config"]["existingSecret"]]
    # The Redis URL names the Service prod renders.
    service = next(
        m for m in kinds(manifests, "Service") if m["metadata"]["name"].endswith("-redis")
    )
    url = next(
        o for o in objects if o["spec"]["target"]["name"] == prod["config"]["existingSecret"]
    )
    assert (
        f"@{service['metadata']['name']}.smepulse.svc:6379/"
        in url["spec"]["target"]["template"]["data"]["SMEPULSE_REDIS_URL"]
    )

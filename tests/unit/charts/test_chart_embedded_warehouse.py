"""embeddedWarehouse: the minimal scenario's warehouse on a volume every stage Pod mounts
(ci/embedded-values.yaml; run for real by tests/image/test_embedded_pipelines.py)."""

from __future__ import annotations

import pytest

from tests.unit.charts.helmlib import CHART, Helm, find, kinds

pytestmark = pytest.mark.unit

EMBEDDED = CHART / "ci" / "embedded-values.yaml"


def _operator_env(manifests: list[dict]) -> dict[str, str]:  # type: ignore[type-arg]
    deploy = find(manifests, "Deployment", "smepulse-operator")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_embedded_scenario_points_stages_at_duckdb_on_the_claim(helm: Helm) -> None:
    manifests = helm.template([EMBEDDED])
    claim = find(manifests, "PersistentVolumeClaim", "smepulse-warehouse")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    env = _operator_env(manifests)
    assert env["SMEPULSE_JOB_WAREHOUSE_CLAIM"] == "smepulse-warehouse"
    assert env["SMEPULSE_JOB_WAREHOUSE_MOUNT_PATH"] == "/var/lib/smepulse"
    config = find(manifests, "ConfigMap", "smepulse-config")["data"]
    assert config["SMEPULSE_WAREHOUSE"] == "duckdb"
    assert config["SMEPULSE_HOME"] == "/var/lib/smepulse"
    assert "SMEPULSE_BRONZE_URI" not in config  # bronze at <home>/bronze, on the volume
    # No data service at all.
    assert not kinds(manifests, "StatefulSet")
    assert [d["metadata"]["name"] for d in kinds(manifests, "Deployment")] == ["smepulse-operator"]


def test_existing_claim_and_bronze_in_the_object_store(helm: Helm) -> None:
    manifests = helm.template(
        [EMBEDDED],
        {
            "embeddedWarehouse.persistence.existingClaim": "mine",
            "embeddedWarehouse.bronzeOnVolume": "false",
            "minio.enabled": "true",
        },
    )
    assert not kinds(manifests, "PersistentVolumeClaim")
    assert _operator_env(manifests)["SMEPULSE_JOB_WAREHOUSE_CLAIM"] == "mine"
    config = find(manifests, "ConfigMap", "smepulse-config")["data"]
    assert config["SMEPULSE_BRONZE_URI"] == "s3://smepulse/bronze"
    assert config["SMEPULSE_S3_ENDPOINT_URL"].startswith("http://smepulse-minio.")


def test_default_install_is_unchanged_and_trino_with_it_is_refused(helm: Helm) -> None:
    manifests = helm.template()
    assert "SMEPULSE_JOB_WAREHOUSE_CLAIM" not in _operator_env(manifests)
    assert find(manifests, "ConfigMap", "smepulse-config")["data"]["SMEPULSE_WAREHOUSE"] == "trino"
    refused = helm.template_text(sets={"embeddedWarehouse.enabled": "true"}, check=False)
    assert refused.returncode != 0
    assert "set trino.enabled=false" in refused.stderr

"""The operator image, built from a clean clone, installed by the chart onto a real node
(tests/kube/realnode.py) in a namespace that *enforces* the ``restricted`` Pod Security
Standard: the operator Pod becomes Ready as a container and ``helm test`` passes.

The chart's minimal values (no data services: their images are not built here); the image
references point at the locally built tags, imported into the node's containerd.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.image.conftest import BuiltImages
from tests.kube.realnode import RealCluster

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]


def test_chart_operator_ready_under_enforced_restricted(
    images: BuiltImages,
    real_cluster: RealCluster,
    real_api: client.ApiClient,
    real_namespace: str,
) -> None:
    ns = real_namespace
    repository, tag = images.tags["operator"].split(":")
    real_cluster.import_images(images.tags["operator"])
    client.CoreV1Api(real_api).patch_namespace(
        ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    assert real_cluster.control_plane is not None
    helm = real_cluster.control_plane.helm
    install = helm(
        "install", "smepulse", str(images.chart), "-n", ns,
        "-f", str(images.chart / "ci" / "minimal-values.yaml"),
        "--set", f"image.operator.repository={repository}",
        "--set", f"image.stages.repository={repository.replace('operator', 'stages')}",
        "--set", f"image.tag={tag}",
        "--wait", "--timeout", "5m",
        check=False,
    )  # fmt: skip
    pods = real_cluster.kubectl("get", "pods", "-n", ns, "-o", "wide", check=False).stdout
    events = real_cluster.kubectl("get", "events", "-n", ns, check=False).stdout
    assert install.returncode == 0, f"{install.stderr}\n{pods}\n{events}"

    operator = real_cluster.kubectl_json(
        "get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=operator"
    )["items"]
    assert len(operator) == 1, pods
    (status,) = operator[0]["status"]["containerStatuses"]
    assert status["ready"] is True, status
    assert status["imageID"], status  # a real container, from the imported image
    assert operator[0]["spec"]["securityContext"]["runAsUser"] == 10001

    tested = helm("test", "smepulse", "-n", ns, "--timeout", "5m", check=False)
    assert tested.returncode == 0, f"{tested.stdout}\n{tested.stderr}"

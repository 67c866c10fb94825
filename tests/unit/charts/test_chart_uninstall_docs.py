"""The chart README's "What ``helm uninstall`` leaves behind" covers the chart's hooks.

Helm never deletes a hook on uninstall; only its ``hook-delete-policy`` does. The live
default install on a real node (tests/image/test_chart_default_install.py) found the
``helm test`` Pods left over while the README said "everything else: deleted". This keeps the
two together without a node: every hook the chart renders (default and full values) is a
``helm test`` Pod named ``<fullname>-test-*`` that survives a successful run, and the README's
table has a row for exactly those Pods.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.charts.helmlib import Helm

pytestmark = pytest.mark.unit

CHART = Path(__file__).resolve().parents[3] / "charts" / "smepulse"


def _uninstall_table() -> str:
    text = (CHART / "README.md").read_text()
    match = re.search(r"^## What `helm uninstall` leaves behind\n(.*?)^## ", text, re.M | re.S)
    assert match, "charts/smepulse/README.md has no 'What `helm uninstall` leaves behind' section"
    return match.group(1)


@pytest.mark.parametrize("values", [(), ("full-values.yaml",)], ids=["default", "full"])
def test_every_hook_is_a_test_pod_the_uninstall_table_names(
    helm: Helm, values: tuple[str, ...]
) -> None:
    rendered = helm.template(values=[CHART / "ci" / v for v in values])
    hooks = [m for m in rendered if "helm.sh/hook" in m["metadata"].get("annotations", {})]
    assert hooks, "no helm test Pods rendered"
    for hook in hooks:
        name, annotations = hook["metadata"]["name"], hook["metadata"]["annotations"]
        assert (hook["kind"], annotations["helm.sh/hook"]) == ("Pod", "test"), name
        assert name.startswith("smepulse-test-"), name
        # Kept after a successful run (for `helm test --logs`), so uninstall leaves them.
        assert "hook-succeeded" not in annotations.get("helm.sh/hook-delete-policy", ""), name
    rows = [r for r in _uninstall_table().splitlines() if r.startswith("| ")]
    test_rows = [r for r in rows if "`<fullname>-test-*`" in r]
    assert len(test_rows) == 1 and "| kept" in test_rows[0], rows

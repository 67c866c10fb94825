"""Fixtures of the chart tests: a Helm binary with private caches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.charts.helmlib import Helm, HelmUnavailable, find_helm


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """Helm from the tool cache; skipped when absent unless SMEPULSE_REQUIRE_KUBE=1 (CI)."""
    try:
        binary = find_helm()
    except HelmUnavailable as exc:
        if os.environ.get("SMEPULSE_REQUIRE_KUBE") == "1":
            pytest.fail(f"SMEPULSE_REQUIRE_KUBE=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))
    return Helm(binary=Path(binary), home=tmp_path_factory.mktemp("helm"))

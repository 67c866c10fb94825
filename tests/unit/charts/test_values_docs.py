"""values.yaml is documented, and the README table and values.schema.json are generated from it."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.unit.charts.helmlib import CHART, REPO_ROOT

pytestmark = pytest.mark.unit

SCRIPTS = REPO_ROOT / "charts" / "scripts"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


values_table = _load("values_table")
values_schema = _load("values_schema")
VALUES_TEXT = (CHART / "values.yaml").read_text(encoding="utf-8")


def test_every_value_has_a_doc_comment() -> None:
    assert values_table.undocumented_keys(VALUES_TEXT) == []


def test_undocumented_key_is_reported() -> None:
    text = "operator:\n  # -- documented\n  enabled: true\n  replicas: 1\n"
    assert values_table.undocumented_keys(text) == ["operator.replicas"]


def test_readme_values_table_is_up_to_date() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    assert values_table.render_readme(readme, VALUES_TEXT) == readme, (
        "charts/smepulse/README.md is stale: run python charts/scripts/values_table.py"
    )


def test_readme_lists_every_leaf_value() -> None:
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    for key in (
        "`operator.clusterWide`",
        "`cronJobs.dailyEtl.schedule`",
        "`minio.external.endpointUrl`",
    ):
        assert key in readme


def test_schema_is_up_to_date() -> None:
    committed = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    assert committed == values_schema.build_schema(), (
        "values.schema.json is stale: run python charts/scripts/values_schema.py"
    )


def _objects(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    if "properties" in node:
        out.append((path, node))
        for key, child in node["properties"].items():
            out.extend(_objects(child, f"{path}.{key}"))
    return out


def test_schema_closes_every_object_of_ours() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    objects = _objects(schema, "")
    assert len(objects) > 30
    open_objects = [p for p, node in objects if node.get("additionalProperties") is not False]
    assert open_objects == []


def test_schema_describes_values_from_their_comments() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    enabled = schema["properties"]["operator"]["properties"]["enabled"]
    assert enabled["type"] == "boolean"
    assert enabled["description"].startswith("Deploy the operator")

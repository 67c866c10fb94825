"""The PipelineRun CRD never drifts from the catalog, and keeps its structural promises."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from smepulse.catalog import load_catalog

pytestmark = pytest.mark.unit

CRD_PATH = (
    Path(__file__).resolve().parents[3] / "charts/smepulse/files/crds/pipelineruns.smepulse.io.yaml"
)
CATALOG = load_catalog()


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return doc


def version(crd: dict[str, Any]) -> dict[str, Any]:
    (v,) = crd["spec"]["versions"]
    return dict(v)


def spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return dict(version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_names_scope_and_subresources(crd: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == "pipelineruns.smepulse.io"
    names = crd["spec"]["names"]
    assert (crd["spec"]["group"], names["kind"], names["plural"]) == (
        "smepulse.io",
        "PipelineRun",
        "pipelineruns",
    )
    assert names["shortNames"] == ["plr"] and names["categories"] == ["smepulse"]
    assert crd["spec"]["scope"] == "Namespaced"
    assert version(crd)["name"] == "v1alpha1" and version(crd)["subresources"] == {"status": {}}


def test_pipeline_enum_matches_the_catalog(crd: dict[str, Any]) -> None:
    assert spec_schema(crd)["properties"]["pipeline"]["enum"] == list(CATALOG.pipelines)


def test_stage_rules_match_each_pipeline_of_the_catalog(crd: dict[str, Any]) -> None:
    rules = {}
    for rule in spec_schema(crd)["x-kubernetes-validations"]:
        m = re.match(
            r"self\.pipeline != '([a-z-]+)' \|\| .*?self\.stages\.all\(s, s in \[(.*?)\]\)",
            rule["rule"],
        )
        if m:
            stages = re.findall(r"'([a-z0-9-]+)'", m.group(2))
            # fromStage is checked against the same list.
            assert rule["rule"].count(m.group(2)) == 2, rule["rule"]
            assert ", ".join(stages) in rule["message"]
            rules[m.group(1)] = stages
    assert rules == {name: [s.name for s in p.stages] for name, p in CATALOG.pipelines.items()}


def test_spec_is_immutable_except_control_fields(crd: dict[str, Any]) -> None:
    schema = spec_schema(crd)
    guarded = {
        m
        for r in schema["x-kubernetes-validations"]
        for m in re.findall(r"oldSelf\.(\w+)", r["rule"])
    }
    mutable = set(schema["properties"]) - guarded
    assert mutable == {"suspend", "ttlSecondsAfterFinished"}  # cancel: only false -> true


def test_bounds_and_patterns(crd: dict[str, Any]) -> None:
    props = spec_schema(crd)["properties"]
    assert props["logicalDate"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert props["logicalDate"]["format"] == "date"
    retries = props["retries"]["properties"]
    assert (retries["limit"]["minimum"], retries["limit"]["maximum"]) == (0, 10)
    assert (retries["backoffSeconds"]["minimum"], retries["backoffSeconds"]["maximum"]) == (0, 3600)
    assert props["concurrencyPolicy"]["enum"] == ["Allow", "Forbid", "Replace", "Queue"]
    assert props["params"]["additionalProperties"] == {"type": "string", "maxLength": 1024}


def test_printer_columns(crd: dict[str, Any]) -> None:
    cols = [c["name"] for c in version(crd)["additionalPrinterColumns"] if not c.get("priority")]
    assert cols == ["Pipeline", "Phase", "Stage", "Succeeded", "Age", "Duration"]


def test_status_schema_declares_what_the_operator_writes(crd: dict[str, Any]) -> None:
    """Structural schemas prune undeclared fields: every status key must be declared."""
    import datetime as dt

    from smepulse_operator.status import RunStatus, StageRecord, build_status

    t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    doc = build_status(
        {},
        RunStatus(
            "Failed",
            "StageFailed",
            "m",
            1,
            t.date(),
            start=t,
            end=t,
            outcome="StageFailed",
            failed_stage="a",
            triggered=({"pipeline": "p", "name": "n", "createdAt": "x"},),
        ),
        [StageRecord("a", "Failed", "j", 1, t, t, "m")],
        t,
    )
    declared = version(crd)["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert set(doc) <= set(declared)
    assert set(doc["stages"][0]) <= set(declared["stages"]["items"]["properties"])
    assert set(doc["conditions"][0]) <= set(declared["conditions"]["items"]["properties"])
    assert set(doc["triggered"][0]) <= set(declared["triggered"]["items"]["properties"])

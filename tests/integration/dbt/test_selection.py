"""Which stage runs which test, asked of dbt itself (`dbt ls` with each stage's selection):
every test of the daily models runs in exactly one daily stage, the one that builds the last
of its parents, so no stage tests a model that a later stage has not built yet."""

from __future__ import annotations

import json

import pytest
from dbt.cli.main import dbtRunner

from smepulse.dbt_runner import QUIET, _common_args
from smepulse.dbt_selection import selection as dbt_selection
from tests.integration.dbt.conftest import DAILY_DBT_STAGES, Built

pytestmark = pytest.mark.integration


def _listed(built: Built, stage: str) -> set[str]:
    selection = dbt_selection(stage)
    args = [
        *QUIET,
        "ls",
        *_common_args(built.settings, stage, None),
        "--output",
        "json",
        "--output-keys",
        "unique_id",
        "--resource-type",
        "test",
        "--indirect-selection",
        selection.indirect_selection,
        "--select",
        *selection.select,
    ]
    if selection.exclude:
        args += ["--exclude", *selection.exclude]
    result = dbtRunner().invoke(args)
    assert result.success, result.exception
    assert isinstance(result.result, list)
    return {json.loads(line)["unique_id"] for line in result.result}


def test_each_test_runs_in_the_stage_of_its_last_parent(built: Built) -> None:
    manifest = json.loads((built.settings.home / "dbt" / "target" / "manifest.json").read_text())
    # Each daily stage selects one tag (catalog.yaml): a model belongs to the latest one.
    selects = [dbt_selection(stage).select for stage in DAILY_DBT_STAGES]
    assert all(len(s) == 1 and s[0].startswith("tag:") for s in selects), selects
    order = {s[0].removeprefix("tag:"): i for i, s in enumerate(selects)}
    stage_of_model = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            positions = [order[t] for t in node["tags"] if t in order]
            if positions and "external" not in node["tags"]:
                stage_of_model[node["unique_id"]] = max(positions)
    listed = {stage: _listed(built, stage) for stage in DAILY_DBT_STAGES}
    checked = 0
    for node in manifest["nodes"].values():
        parents = [p for p in node["depends_on"]["nodes"] if p.startswith("model.")]
        if node["resource_type"] != "test" or not parents:
            continue
        if not all(p in stage_of_model for p in parents):
            continue  # touches an external-sync model: checked by their stages
        expected = DAILY_DBT_STAGES[max(stage_of_model[p] for p in parents)]
        runs_in = [stage for stage, tests in listed.items() if node["unique_id"] in tests]
        assert runs_in == [expected], (node["name"], runs_in, expected)
        checked += 1
    assert checked > 200

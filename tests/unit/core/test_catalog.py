"""The pipeline catalog: the four pipelines of the seed, valid DAGs, selection rules, and the
registries derived from it (what each stage runs, each dbt stage's selection)."""

from __future__ import annotations

import ast
import copy
import functools
import importlib.util
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from smepulse.catalog import CatalogError, load_catalog, parse_catalog
from smepulse.dbt_selection import selection
from smepulse.stages import registry, resolve

pytestmark = pytest.mark.unit

RUN = "smepulse.stages.notify:run"


def _doc() -> dict[str, Any]:
    from importlib import resources

    text = resources.files("smepulse").joinpath("catalog.yaml").read_text()
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_four_pipelines_with_seed_schedules() -> None:
    cat = load_catalog()
    assert set(cat.pipelines) == {"daily-etl", "ml-predict", "ml-training", "external-sync"}
    assert cat.pipeline("daily-etl").schedule == "0 2 * * *"
    assert cat.pipeline("ml-training").schedule == "0 1 * * 0"
    assert cat.pipeline("external-sync").schedule == "0 0 1 * *"
    assert cat.pipeline("ml-predict").schedule is None


def _top_level_functions(module: str) -> dict[str, list[str]]:
    """The module's top-level functions and their parameters, read from its source (importing
    the ML modules would take seconds)."""
    spec = importlib.util.find_spec(module)
    assert spec and spec.origin, module
    tree = ast.parse(Path(spec.origin).read_text())
    return {
        node.name: [a.arg for a in (*node.args.args, *node.args.kwonlyargs)]
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def test_every_job_stage_has_an_entrypoint() -> None:
    entries = registry()
    assert set(entries) == load_catalog().stage_names
    # Every daily dbt stage runs the one generic entry point; nothing per stage.
    assert {entries[s] for s in entries if s.startswith("dbt-")} == {
        "smepulse.dbt_runner:run_stage"
    }
    for name, target in entries.items():
        module, _, function = target.partition(":")
        params = _top_level_functions(module).get(function)
        assert params is not None, f"{name}: {module} has no function {function}"
        assert params[0] == "settings", (name, params)


def test_daily_etl_order_and_trigger() -> None:
    p = load_catalog().pipeline("daily-etl")
    order = p.select()
    assert order[:3] == ["verify-infra", "validate-bronze", "dbt-silver"]
    assert order[-2:] == ["dbt-ml-scores", "trigger-ml-predict"]
    # Day D's report follows D's predictions: it is part of ml-predict, after both models.
    predict = load_catalog().pipeline("ml-predict")
    assert set(predict.stage("report").needs) == {"uc09-forecast", "uc10-detect"}
    trigger = p.stage("trigger-ml-predict")
    assert trigger.kind == "trigger" and trigger.triggers == "ml-predict"
    assert [s.name for s in p.finally_] == ["notify"]


def test_defaults_apply_and_overrides_win() -> None:
    # A hand-written catalog, so the expectation does not restate catalog.yaml.
    doc = {
        "version": 1,
        "defaults": {"timeoutSeconds": 111, "retries": {"limit": 3, "backoffSeconds": 4}},
        "pipelines": {
            "p": {
                "stages": [
                    {"name": "a", "run": RUN},
                    {"name": "b", "needs": ["a"], "timeoutSeconds": 7, "run": RUN,
                     "retries": {"limit": 0, "backoffSeconds": 0}},
                ],
                "finally": [{"name": "f", "run": RUN}],
            }
        },
    }  # fmt: skip
    p = parse_catalog(doc).pipeline("p")
    a, b, f = p.stage("a"), p.stage("b"), p.stage("f")
    assert (a.timeout_seconds, a.retries.limit, f.timeout_seconds) == (111, 3, 111)
    assert (b.timeout_seconds, b.retries.limit) == (7, 0)
    # Attempt 1 starts at once; the first retry waits backoffSeconds, each later one twice as long.
    assert [a.retries.delay(n) for n in (1, 2, 3, 4)] == [0, 4, 8, 16]
    assert [b.retries.delay(n) for n in (1, 2)] == [0, 0]


def test_every_stage_of_the_catalog_can_run_and_retries_back_off() -> None:
    # Properties of the packaged catalog, whatever its figures: a positive timeout and
    # waits that double.
    for pipeline in load_catalog().pipelines.values():
        for stage in pipeline.all_stages:
            assert stage.timeout_seconds > 0, stage.name
            waits = [stage.retries.delay(n) for n in range(2, stage.retries.limit + 2)]
            assert all(later == 2 * earlier for earlier, later in itertools.pairwise(waits))


def test_from_stage_and_only() -> None:
    p = load_catalog().pipeline("ml-predict")
    assert p.select(from_stage="uc10-detect") == [
        "uc10-detect",
        "refresh-metabase",
        "report",
        "invalidate-cache",
    ]
    assert p.select(only=["uc09-forecast", "invalidate-cache"]) == [
        "uc09-forecast",
        "invalidate-cache",
    ]
    with pytest.raises(KeyError, match="no stage 'nope'"):
        p.select(from_stage="nope")


def test_unknown_pipeline_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: daily-etl"):
        load_catalog().pipeline("weekly")


def test_cycles_and_unknown_needs_are_rejected() -> None:
    doc = _doc()
    bad = copy.deepcopy(doc)
    bad["pipelines"]["ml-training"]["stages"][0]["needs"] = ["validate-models"]
    with pytest.raises(CatalogError, match="pipeline ml-training: dependency cycle"):
        parse_catalog(bad)
    bad = copy.deepcopy(doc)
    bad["pipelines"]["ml-training"]["stages"][0]["needs"] = ["ghost"]
    with pytest.raises(CatalogError, match="stage uc09-train needs unknown"):
        parse_catalog(bad)


# -- the derived registries: adding a dbt stage is one catalog entry --------------------------


def _with_stages(doc: dict[str, Any], pipeline: str, *stages: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["pipelines"][pipeline]["stages"].extend(stages)
    return doc


def test_a_new_dbt_stage_is_one_catalog_entry(tmp_path: Path) -> None:
    # A new stage between gold-kpis and ml-scores, and a side branch off silver that no other
    # dbt stage depends on; written to a file and loaded like the packaged catalog.
    doc = _with_stages(
        _doc(),
        "daily-etl",
        {"name": "dbt-gold-extra", "needs": ["dbt-gold-kpis"],
         "dbt": {"select": ["tag:gold_extra"], "exclude": ["tag:scratch"]}},
        {"name": "dbt-side", "needs": ["dbt-silver"], "dbt": {"select": ["tag:side"]}},
    )  # fmt: skip
    for stage in doc["pipelines"]["daily-etl"]["stages"]:
        if stage["name"] == "dbt-ml-scores":
            stage["needs"] = ["dbt-gold-extra"]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(doc))
    cat = parse_catalog(yaml.safe_load(path.read_text()))

    new = selection("dbt-gold-extra", cat)
    assert new.select == ("tag:gold_extra",)
    assert new.exclude == ("tag:ml_scores", "tag:scratch")  # what follows it, then its own
    assert new.indirect_selection == "eager"
    # Upstream stages now leave the new tag to it (the side branch too, as it is downstream
    # of silver), while a parallel branch is no one's "later".
    assert selection("dbt-silver", cat).exclude == (
        "tag:gold_dims", "tag:side", "tag:gold_facts", "tag:gold_links", "tag:gold_kpis",
        "tag:gold_extra", "tag:ml_scores", "tag:external",
    )  # fmt: skip
    assert selection("dbt-gold-kpis", cat).exclude == ("tag:gold_extra", "tag:ml_scores")
    assert selection("dbt-side", cat).exclude == ()
    assert "tag:side" not in selection("dbt-gold-dims", cat).exclude
    # The packaged catalog is untouched: the same stage does not exist there.
    assert "tag:gold_extra" not in selection("dbt-silver").exclude

    assert registry(cat)["dbt-gold-extra"] == "smepulse.dbt_runner:run_stage"
    fn = resolve("dbt-gold-extra", cat)
    assert isinstance(fn, functools.partial)
    assert fn.func.__qualname__ == "run_stage" and fn.func.__module__ == "smepulse.dbt_runner"
    assert fn.keywords == {"stage": "dbt-gold-extra", "catalog": cat}


def test_the_packaged_catalog_resolves_python_and_dbt_stages() -> None:
    from smepulse.stages.notify import run as notify

    assert resolve("notify") is notify
    with pytest.raises(KeyError, match="unknown stage 'dbt-nope'; known stages: dbt-external-gold"):
        resolve("dbt-nope")
    with pytest.raises(KeyError, match="not a dbt stage"):
        selection("notify")
    gold_dims = selection("dbt-gold-dims")
    assert [(r.relation, r.exclude) for r in gold_dims.exclude_when_missing] == [
        ("silver.stg_external__provinces", ("tag:external",))
    ]
    assert selection("dbt-silver").bronze_sources == ("bronze",)
    assert selection("dbt-external-silver").bronze_sources == ("external",)
    assert selection("dbt-gold-facts").bronze_sources == ()


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"name": "dbt-x", "dbt": {"exclude": ["tag:y"]}},
         "pipeline daily-etl, stage dbt-x, key dbt.select: Field required"),
        ({"name": "dbt-x", "dbt": {"select": []}},
         "pipeline daily-etl, stage dbt-x, key dbt.select: Tuple should have at least 1 item"),
        ({"name": "dbt-x", "dbt": {"select": ["tag:a tag:b"]}},
         "pipeline daily-etl, stage dbt-x, key dbt: select: ['tag:a tag:b'] are not dbt selectors"),
        ({"name": "dbt-x", "dbt": {"select": ["tag:x"], "indirectSelection": "lazy"}},
         "pipeline daily-etl, stage dbt-x, key dbt.indirectSelection: Input should be 'eager'"),
        ({"name": "dbt-x", "dbt": {"select": ["tag:x"], "selct": ["tag:y"]}},
         "pipeline daily-etl, stage dbt-x, key dbt.selct: Extra inputs are not permitted"),
        ({"name": "x", "run": "smepulse.stages.nope:run"},
         "pipeline daily-etl, stage x: run: no module 'smepulse.stages.nope'"),
        ({"name": "x", "run": "smepulse.stages.notify"},
         "pipeline daily-etl, stage x, key run: String should match pattern"),
        ({"name": "x", "run": "smepulse.stages.notify:run", "dbt": {"select": ["tag:x"]}},
         "pipeline daily-etl, stage x: give either run (a Python stage) or dbt (a dbt stage), not both"),
        ({"name": "x"},
         "pipeline daily-etl, stage x: says nothing to run"),
        ({"name": "go", "kind": "trigger", "triggers": "ml-predict", "run": RUN},
         "pipeline daily-etl, stage go: a trigger stage starts a pipeline: give it no run or dbt"),
    ],
)  # fmt: skip
def test_a_malformed_stage_is_named_with_its_key(stage: dict[str, Any], expected: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(_with_stages(_doc(), "daily-etl", stage))
    assert expected in str(caught.value)


def test_one_stage_name_runs_one_thing() -> None:
    doc = _doc()
    doc["pipelines"]["ml-training"]["finally"][0]["run"] = "smepulse.stages.report:run"
    with pytest.raises(CatalogError) as caught:
        parse_catalog(doc)
    assert (
        "stage notify runs smepulse.stages.notify:run in pipeline daily-etl but "
        "smepulse.stages.report:run in pipeline ml-training"
    ) in str(caught.value)
    twice = _with_stages(
        _doc(), "external-sync", {"name": "dbt-silver", "dbt": {"select": ["tag:silver"]}}
    )
    with pytest.raises(
        CatalogError, match="dbt stage dbt-silver appears in pipelines daily-etl and external-sync"
    ):
        parse_catalog(twice)

"""The pipeline catalog: the four pipelines of the seed, valid DAGs, selection rules."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from smepulse.catalog import load_catalog, parse_catalog
from smepulse.stages import REGISTRY

pytestmark = pytest.mark.unit


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


def test_every_job_stage_has_an_entrypoint() -> None:
    assert load_catalog().stage_names <= set(REGISTRY)


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
                    {"name": "a"},
                    {"name": "b", "needs": ["a"], "timeoutSeconds": 7,
                     "retries": {"limit": 0, "backoffSeconds": 0}},
                ],
                "finally": [{"name": "f"}],
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
    with pytest.raises(ValidationError, match="cycle"):
        parse_catalog(bad)
    bad = copy.deepcopy(doc)
    bad["pipelines"]["ml-training"]["stages"][0]["needs"] = ["ghost"]
    with pytest.raises(ValidationError, match="unknown"):
        parse_catalog(bad)

"""The pipeline catalog: the four pipelines of the seed, valid DAGs, selection rules."""

from __future__ import annotations

import copy
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
    assert order.index("dbt-ml-scores") < order.index("trigger-ml-predict") < order.index("report")
    trigger = p.stage("trigger-ml-predict")
    assert trigger.kind == "trigger" and trigger.triggers == "ml-predict"
    assert [s.name for s in p.finally_] == ["notify"]


def test_defaults_apply_and_overrides_win() -> None:
    p = load_catalog().pipeline("daily-etl")
    assert p.stage("dbt-silver").timeout_seconds == 1800
    assert p.stage("verify-infra").timeout_seconds == 300
    assert p.stage("validate-bronze").retries.limit == 0
    assert p.stage("verify-infra").retries.delay(2) == 15
    assert p.stage("verify-infra").retries.delay(3) == 30


def test_from_stage_and_only() -> None:
    p = load_catalog().pipeline("ml-predict")
    assert p.select(from_stage="uc10-detect") == [
        "uc10-detect",
        "refresh-metabase",
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

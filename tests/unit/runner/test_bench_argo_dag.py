"""The DAG benchmarks/bench_argo.py gives both controllers is daily-etl's, written out by hand
here: its eight job stages in a chain, notify as the finally stage, the trigger stage left out
(it starts a PipelineRun, not a Pod). No cluster or Argo needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from smepulse.catalog import load_catalog, parse_catalog

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]

CHAIN = [
    "verify-infra",
    "validate-bronze",
    "dbt-silver",
    "dbt-gold-dims",
    "dbt-gold-facts",
    "dbt-gold-links",
    "dbt-gold-kpis",
    "dbt-ml-scores",
]


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_argo", REPO / "benchmarks" / "bench_argo.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_both_controllers_get_daily_etls_chain_and_finally() -> None:
    bench = _bench()
    shape = bench.dag_shape(load_catalog().pipeline("daily-etl"))
    assert shape.dropped == ("trigger-ml-predict",)
    assert shape.finally_ == ("notify",)
    assert shape.pods_per_run == 9

    wf = bench.argo_workflow("r1", shape)
    assert wf["spec"]["entrypoint"] == "main" and wf["spec"]["onExit"] == "finally"
    templates = {t["name"]: t for t in wf["spec"]["templates"]}
    tasks = templates["main"]["dag"]["tasks"]
    assert [t["name"] for t in tasks] == CHAIN
    assert [t.get("dependencies", []) for t in tasks] == [[], *([p] for p in CHAIN[:-1])]
    assert [[s["name"] for s in group] for group in templates["finally"]["steps"]] == [["notify"]]

    run = bench.pipeline_run("r1", shape)
    assert run["spec"] == {"pipeline": "daily-etl", "stages": CHAIN}


def test_a_job_stage_after_a_trigger_is_refused() -> None:
    bench = _bench()
    catalog = parse_catalog(
        {
            "version": 1,
            "pipelines": {
                "p": {
                    "stages": [
                        {"name": "t", "kind": "trigger", "triggers": "q"},
                        {"name": "after", "run": "smepulse.stages.notify:run", "needs": ["t"]},
                    ]
                },
                "q": {"stages": [{"name": "only", "run": "smepulse.stages.notify:run"}]},
            },
        }
    )
    with pytest.raises(ValueError, match="stage after needs trigger stage"):
        bench.dag_shape(catalog.pipeline("p"))

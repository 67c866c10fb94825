"""The Airflow DAG that benchmarks/bench_airflow.py writes has daily-etl's stages and edges as
catalog.yaml states them (read here with yaml, not through smepulse.catalog), and runs each
stage the way the local runner does. No Airflow needed: the DAG file's task spec is read back
from its source."""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
import json
import shlex
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from smepulse.catalog import load_catalog

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
DAY = dt.date(2026, 6, 30)


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_airflow", REPO / "benchmarks" / "bench_airflow.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _spec_of(source: str) -> dict[str, Any]:
    """The JSON passed to ``SPEC = json.loads(...)`` in the DAG file."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SPEC":
            assert isinstance(node.value, ast.Call)
            spec: dict[str, Any] = json.loads(ast.literal_eval(node.value.args[0]))
            return spec
    raise AssertionError("no SPEC assignment in the DAG file")


def test_dag_has_the_catalogs_stages_and_edges() -> None:
    bench = _bench()
    doc = yaml.safe_load((REPO / "jobs/src/smepulse/catalog.yaml").read_text())
    daily = doc["pipelines"]["daily-etl"]
    main = {s["name"]: sorted(s.get("needs", [])) for s in daily["stages"]}
    finally_ = [s["name"] for s in daily["finally"]]

    tasks = bench.dag_tasks(load_catalog().pipeline("daily-etl"), {"SMEPULSE_HOME": "/data/x"}, DAY)
    spec = _spec_of(bench.dag_source(tasks))

    assert spec["dag_id"] == "sme_pulse_daily_etl"
    got = {t["name"]: t for t in spec["tasks"]}
    assert list(got) == [*main, *finally_]
    for name, needs in main.items():
        assert sorted(got[name]["upstream"]) == needs, name
        assert got[name]["trigger_rule"] == "all_success"
    for name in finally_:  # after every main stage, whatever happened
        assert sorted(got[name]["upstream"]) == sorted(main)
        assert got[name]["trigger_rule"] == "all_done"
        assert got[name]["env"]["SMEPULSE_RUN_OUTCOME"] == "Succeeded"

    triggers = {s["name"] for s in daily["stages"] if s.get("kind") == "trigger"}
    assert triggers == {"trigger-ml-predict"}
    for name, task in got.items():
        if name in triggers:
            assert task["operator"] == "empty"
            continue
        assert task["operator"] == "bash"
        argv = shlex.split(task["command"])
        assert argv == [
            sys.executable, "-m", "smepulse.cli", "stage", name, "--logical-date", "2026-06-30",
        ]  # fmt: skip
        env = task["env"]
        assert env["SMEPULSE_HOME"] == "/data/x"
        assert env["SMEPULSE_LOGICAL_DATE"] == "2026-06-30"
        assert env["SMEPULSE_PIPELINE"] == "daily-etl"
        assert env["SMEPULSE_RUN_ID"] == "{{ run_id }}"  # rendered by Airflow

    verify = got["verify-infra"]  # catalog: timeoutSeconds 300, retries limit 2 / 15 s
    assert (verify["timeout_seconds"], verify["retries"], verify["retry_delay_seconds"]) == (
        300,
        2,
        15,
    )


def test_critical_path_is_the_longest_chain() -> None:
    bench = _bench()
    # a(1) -> b(2) -> d(1) and a(1) -> c(5) -> d(1): the c branch, 7 s.
    upstream = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
    seconds = {"a": 1.0, "b": 2.0, "c": 5.0, "d": 1.0}
    assert bench.critical_path(upstream, seconds) == 7.0
    assert bench.critical_path({"a": (), "b": ()}, {"a": 3.0, "b": 4.0}) == 4.0

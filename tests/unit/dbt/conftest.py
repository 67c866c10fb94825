"""Fixtures for the dbt project's unit tests: one parse (DuckDB target) and one Trino compile
per session, run in-process with dbt's programmatic entry point. Neither needs a database
server: parse never connects, and the Trino compile skips dbt's cache population and
introspective queries (``--no-populate-cache --no-introspect``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smepulse.settings import Settings

LOGICAL_DATE = "2026-06-30"


@pytest.fixture(scope="session")
def dbt_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings over a temp home; dbt's profile variables exported for the session."""
    home = tmp_path_factory.mktemp("dbt-unit")
    settings = Settings(home=home, bronze_uri=str(home / "bronze"))
    saved = dict(os.environ)
    os.environ.update(settings.dbt_env())
    try:
        yield settings
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _invoke(settings: Settings, args: list[str]) -> None:
    from dbt.cli.main import dbtRunner

    project = str(settings.dbt_project_dir)
    result = dbtRunner().invoke(
        [
            "--quiet",
            "--no-send-anonymous-usage-stats",
            *args,
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--log-path",
            str(settings.home / "logs"),
            "--vars",
            json.dumps({"logical_date": LOGICAL_DATE}),
        ]
    )
    assert result.success, f"dbt {args[0]} failed: {result.exception}"


@pytest.fixture(scope="session")
def manifest(dbt_settings: Settings) -> dict[str, Any]:
    """manifest.json of a parse for the DuckDB target."""
    target = dbt_settings.home / "target-duckdb"
    _invoke(dbt_settings, ["parse", "--target", "duckdb", "--target-path", str(target)])
    loaded: dict[str, Any] = json.loads((target / "manifest.json").read_text())
    return loaded


@pytest.fixture(scope="session")
def trino_compiled(dbt_settings: Settings) -> dict[str, str]:
    """Compiled SQL of every model for the Trino target, by model name (no server needed)."""
    target = dbt_settings.home / "target-trino"
    _invoke(
        dbt_settings,
        [
            "compile",
            "--target",
            "trino",
            "--target-path",
            str(target),
            "--no-populate-cache",
            "--no-introspect",
            "--select",
            "resource_type:model resource_type:test",
            "--exclude",
            "resource_type:unit_test",
        ],
    )
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    return {
        n["name"]: n["compiled_code"]
        for n in nodes
        if n["resource_type"] in ("model", "test") and n.get("compiled_code")
    }


def own_models(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """This project's models, without external-sync's (models/**/external/, tag external)."""
    return [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and "/external/" not in n["original_file_path"]
    ]


def model_folder(node: dict[str, Any]) -> Path:
    return Path(node["original_file_path"]).parent


__all__ = ["LOGICAL_DATE", "model_folder", "own_models"]

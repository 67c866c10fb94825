"""The image bakes dbt's parse artefacts into the read-only project, one folder per target
(``target/<warehouse>/``); a stage's writable target folder starts from its warehouse's, and
never has its own newer artefacts overwritten. The run's values reach dbt as environment
variables, not --vars (which dbt hashes into its parse state)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from smepulse.dbt_runner import _common_args, _target_path, run_env
from smepulse.settings import Settings

pytestmark = pytest.mark.unit


def _bake(project: Path, warehouse: str, content: bytes) -> None:
    (project / "target" / warehouse).mkdir(parents=True)
    (project / "target" / warehouse / "partial_parse.msgpack").write_bytes(content)
    (project / "target" / warehouse / "manifest.json").write_text("{}")


def test_new_target_is_seeded_from_the_baked_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _bake(project, "duckdb", b"baked duckdb")
    _bake(project, "trino", b"baked trino")
    settings = Settings(home=tmp_path / "home", dbt_project_dir=project)

    target = _target_path(settings, "dbt-silver")
    assert target.parent == tmp_path / "home/dbt"
    assert (target / "partial_parse.msgpack").read_bytes() == b"baked duckdb"
    assert (target / "manifest.json").read_text() == "{}"

    (target / "partial_parse.msgpack").write_bytes(b"newer")
    _target_path(settings, "dbt-gold-dims")
    assert (target / "partial_parse.msgpack").read_bytes() == b"newer"


def test_trino_stages_start_from_the_trino_parse(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _bake(project, "duckdb", b"baked duckdb")
    _bake(project, "trino", b"baked trino")
    settings = Settings(home=tmp_path / "home", dbt_project_dir=project, warehouse="trino")
    target = _target_path(settings, "dbt-gold-facts")
    assert target == tmp_path / "home/dbt/target-dbt-gold-facts"
    assert (target / "partial_parse.msgpack").read_bytes() == b"baked trino"


def test_no_baked_artefacts_is_fine(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", dbt_project_dir=tmp_path / "project")
    target = _target_path(settings, "dbt-silver")
    assert not target.exists()


def test_run_values_travel_as_env_vars_not_vars(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        logical_date=dt.date(2026, 6, 30),
        timezone="Asia/Bangkok",
        extract_lag_hours=3.5,
    )
    assert "--vars" not in _common_args(settings, "dbt-silver", None)
    assert run_env(settings) == {
        "SMEPULSE_LOGICAL_DATE": "2026-06-30",
        "SMEPULSE_TIMEZONE": "Asia/Bangkok",
        "SMEPULSE_EXTRACT_LAG_HOURS": "3.5",
    }
    args = _common_args(settings, "dbt-silver", {"payment_tolerance_vnd": -1})
    assert args[args.index("--vars") + 1] == '{"payment_tolerance_vnd": -1}'

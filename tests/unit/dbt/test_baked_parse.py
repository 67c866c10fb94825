"""The image bakes dbt's parse artefacts into the read-only project; a stage's writable
target folder starts from them, and never has its own newer artefacts overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from smepulse.dbt_runner import _target_path
from smepulse.settings import Settings

pytestmark = pytest.mark.unit


def test_new_target_is_seeded_from_the_baked_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "target").mkdir(parents=True)
    (project / "target/partial_parse.msgpack").write_bytes(b"baked")
    (project / "target/manifest.json").write_text("{}")
    settings = Settings(home=tmp_path / "home", dbt_project_dir=project)

    target = _target_path(settings, "dbt-silver")
    assert target.parent == tmp_path / "home/dbt"
    assert (target / "partial_parse.msgpack").read_bytes() == b"baked"
    assert (target / "manifest.json").read_text() == "{}"

    (target / "partial_parse.msgpack").write_bytes(b"newer")
    _target_path(settings, "dbt-gold-dims")
    assert (target / "partial_parse.msgpack").read_bytes() == b"newer"


def test_no_baked_artefacts_is_fine(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", dbt_project_dir=tmp_path / "project")
    target = _target_path(settings, "dbt-silver")
    assert not target.exists()

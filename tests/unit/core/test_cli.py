"""The CLI: help everywhere, exit code 2 with one line on bad configuration or arguments."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from smepulse.cli import app

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_help_on_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = [c.name for c in app.registered_commands]
    assert {
        "generate-data",
        "stage",
        "run",
        "backfill",
        "runs",
        "demo",
        "submit",
        "operator",
    } <= set(commands)
    for name in commands:
        assert name is not None
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert "Usage" in sub.output


def test_bad_configuration_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMEPULSE_WAREHOUSE", "oracle")
    result = runner.invoke(app, ["pipelines"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "SMEPULSE_WAREHOUSE" in lines[0]


def test_unknown_stage_exits_2() -> None:
    result = runner.invoke(app, ["stage", "no-such-stage"])
    assert result.exit_code == 2
    assert "unknown stage 'no-such-stage'" in result.output


def test_bad_date_is_a_usage_error() -> None:
    result = runner.invoke(app, ["stage", "verify-infra", "--logical-date", "31/01/2025"])
    assert result.exit_code == 2


def test_pipelines_lists_the_catalog() -> None:
    result = runner.invoke(app, ["pipelines"])
    assert result.exit_code == 0
    assert "daily-etl" in result.output and "trigger ml-predict" in result.output

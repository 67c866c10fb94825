"""Settings: embedded defaults, environment parsing, clear errors, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from smepulse.settings import ConfigError, Settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SMEPULSE_") or key in {"REDIS_URL", "MLFLOW_TRACKING_URI"}:
            monkeypatch.delenv(key)


def test_defaults_select_the_embedded_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.load()
    assert s.warehouse == "duckdb"
    assert s.bronze_root == ".smepulse/bronze"
    assert not s.bronze_is_s3
    assert s.warehouse_path == Path(".smepulse/warehouse.duckdb")
    assert s.tracking_uri == f"sqlite:///{tmp_path / '.smepulse' / 'mlflow.db'}"
    assert (s.artifact_uri or "").startswith("file://")
    assert s.redis_url is None


def test_environment_is_read_with_prefix_and_well_known_aliases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMEPULSE_HOME", "/data/sme")
    monkeypatch.setenv("SMEPULSE_WAREHOUSE", "trino")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@cache:6379/0")
    monkeypatch.setenv("SMEPULSE_PARAMS", '{"k": "v"}')
    monkeypatch.setenv("SMEPULSE_CACHE_KEY_PATTERNS", '["a:*", "b:*"]')
    monkeypatch.setenv("SMEPULSE_LOGICAL_DATE", "2025-01-31")
    s = Settings.load()
    assert s.home == Path("/data/sme")
    assert s.warehouse == "trino"
    assert s.redis_url is not None and s.redis_url.get_secret_value().endswith("/0")
    assert s.params == {"k": "v"}
    assert s.cache_key_patterns == ["a:*", "b:*"]
    assert str(s.business_date) == "2025-01-31"


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMEPULSE_TRINO_PASSWORD", "s3cr3t")
    s = Settings.load()
    assert "s3cr3t" not in repr(s)
    assert "s3cr3t" not in str(s.model_dump())
    assert s.dbt_env()["SMEPULSE_TRINO_PASSWORD"] == "s3cr3t"


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("SMEPULSE_DBT_THREADS", "many", "SMEPULSE_DBT_THREADS"),
        ("SMEPULSE_WAREHOUSE", "oracle", "SMEPULSE_WAREHOUSE"),
        ("SMEPULSE_BRONZE_URI", "ftp://x/y", "SMEPULSE_BRONZE_URI"),
        ("SMEPULSE_TRINO_PORT", "70000", "SMEPULSE_TRINO_PORT"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        Settings.load()
    message = str(err.value)
    assert needle in message
    assert "\n" not in message

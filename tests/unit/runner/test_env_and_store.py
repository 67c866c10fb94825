"""Settings handed to stage subprocesses, and the run-history store."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from smepulse.runner import history as runs_store
from smepulse.runner.env import settings_env, stage_env
from smepulse.settings import Settings

pytestmark = pytest.mark.unit


def test_child_settings_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parent = Settings(
        home=tmp_path,
        redis_url=SecretStr("redis://:pw@localhost:6390/0"),
        cache_key_patterns=["a:*", "b:*"],
        metabase_card_ids=[3, 4],
        smtp_starttls=False,
        runner_max_parallel=3,
    )
    env = settings_env(parent, {"PATH": "/bin", "SMEPULSE_HOME": "/elsewhere", "UNRELATED": "x"})
    env = stage_env(
        env, logical_date=dt.date(2025, 1, 2), run_id="r-1", pipeline="p", params={"k": "v"}
    )
    # Build the child the way a subprocess would: from that environment only.
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    child = Settings.load()
    assert child.home == tmp_path.resolve()
    assert (
        child.redis_url is not None
        and child.redis_url.get_secret_value() == "redis://:pw@localhost:6390/0"
    )
    assert child.cache_key_patterns == ["a:*", "b:*"]
    assert child.metabase_card_ids == [3, 4]
    assert child.smtp_starttls is False and child.runner_max_parallel == 3
    assert child.logical_date == dt.date(2025, 1, 2) and child.run_id == "r-1"
    assert child.params == {"k": "v"} and child.run_outcome is None
    assert env["UNRELATED"] == "x" and env["PATH"] == "/bin"


def test_unset_fields_drop_inherited_aliases(tmp_path: Path) -> None:
    env = settings_env(
        Settings(home=tmp_path), {"REDIS_URL": "redis://stale", "SMEPULSE_RUN_OUTCOME": "Failed"}
    )
    assert "REDIS_URL" not in env and "SMEPULSE_REDIS_URL" not in env
    assert "SMEPULSE_RUN_OUTCOME" not in env  # per-run fields never leak from the parent
    finale = stage_env(env, logical_date=dt.date(2025, 1, 2), run_id="r", pipeline="p", params={},
                       outcome="Failed", failed_stage="dbt-silver", failure_message="boom")  # fmt: skip
    assert (
        finale["SMEPULSE_RUN_OUTCOME"] == "Failed"
        and finale["SMEPULSE_FAILED_STAGE"] == "dbt-silver"
    )
    assert json.loads(finale["SMEPULSE_PARAMS"]) == {}


def test_run_ids_are_claimed_once(tmp_path: Path) -> None:
    day = dt.date(2025, 1, 2)
    ids = [runs_store.claim_run_dir(tmp_path, "daily-etl", day)[0] for _ in range(3)]
    assert ids == ["daily-etl-20250102", "daily-etl-20250102-2", "daily-etl-20250102-3"]


def test_history_skips_unreadable_records(tmp_path: Path) -> None:
    day = dt.date(2025, 1, 2)
    now = dt.datetime.now(dt.UTC)
    good = runs_store.RunRecord(
        run_id="p-20250102", pipeline="p", logical_date=day, started_at=now, status="Succeeded"
    )
    runs_store.save(tmp_path, good)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    assert [r.run_id for r in runs_store.history(tmp_path)] == ["p-20250102"]
    assert runs_store.succeeded_before(tmp_path, "p", day) is not None
    assert runs_store.succeeded_before(tmp_path, "p", day + dt.timedelta(days=1)) is None

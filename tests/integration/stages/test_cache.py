"""invalidate-cache against a real redis-server (started by the conftest, KEYS disabled)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from smepulse.errors import StageError, StageSkipped
from smepulse.settings import Settings
from smepulse.stages import cache

from .services import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    yield r
    r.close()


def listen(client: redis.Redis, channel: str, inbox: list[dict[str, Any]]) -> threading.Thread:
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1.0)  # the subscribe confirmation

    def loop() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not inbox:
            msg = pubsub.get_message(timeout=0.1)
            if msg and msg["type"] == "message":
                inbox.append(json.loads(msg["data"]))
        pubsub.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_matching_keys_removed_in_batches_others_kept_and_message_published(
    tmp_path: Path, redis_url: str, client: redis.Redis
) -> None:
    pipe = client.pipeline()
    for i in range(1234):
        pipe.set(f"smepulse:dashboard:{i}", "x")
    for i in range(7):
        pipe.set(f"smepulse:api:forecast:{i}", "x")
    pipe.set("smepulse:session:keep", "x")
    pipe.set("other:dashboard:1", "x")
    pipe.execute()
    inbox: list[dict[str, Any]] = []
    thread = listen(client, "smepulse:cache-invalidated", inbox)
    settings = Settings(home=tmp_path, redis_url=redis_url, run_id="ml-predict-20250630",
                        pipeline="ml-predict", logical_date=dt.date(2025, 6, 30))  # fmt: skip
    cache.run(settings)
    thread.join(timeout=10)
    assert sorted(k.decode() for k in client.scan_iter()) == [
        "other:dashboard:1",
        "smepulse:session:keep",
    ]
    (message,) = inbox
    assert message["deleted"] == {"smepulse:dashboard:*": 1234, "smepulse:api:*": 7}
    assert message["total_deleted"] == 1241
    assert message["run_id"] == "ml-predict-20250630" and message["logical_date"] == "2025-06-30"


def test_second_run_is_a_harmless_no_op(
    tmp_path: Path, redis_url: str, client: redis.Redis
) -> None:
    client.set("smepulse:dashboard:1", "x")
    client.set("smepulse:api:forecast:1", "x")
    client.set("smepulse:session:keep", "x")
    settings = Settings(home=tmp_path, redis_url=redis_url)
    first: list[dict[str, Any]] = []
    thread = listen(client, "smepulse:cache-invalidated", first)
    cache.run(settings)
    thread.join(timeout=10)
    assert first[0]["total_deleted"] == 2
    second: list[dict[str, Any]] = []
    thread = listen(client, "smepulse:cache-invalidated", second)
    cache.run(settings)  # nothing left to delete: no error, and it still says so
    thread.join(timeout=10)
    assert second[0]["total_deleted"] == 0
    assert second[0]["deleted"] == {"smepulse:dashboard:*": 0, "smepulse:api:*": 0}
    assert [k.decode() for k in client.scan_iter()] == ["smepulse:session:keep"]


def test_keys_command_is_never_used(redis_url: str, client: redis.Redis) -> None:
    # The test user may not run KEYS: proof that the fixture would catch its use.
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.keys("*")
    client.set("a:1", "x")
    assert cache.delete_matching(client, "a:*", batch=1) == 1


def test_skipped_without_redis_and_clear_error_when_unreachable(tmp_path: Path) -> None:
    with pytest.raises(StageSkipped, match="REDIS_URL"):
        cache.run(Settings(home=tmp_path))
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(StageError, match=r"Redis redis://\*\*\*\*@127.0.0.1") as info:
        cache.run(Settings(home=tmp_path, redis_url=url, http_timeout_seconds=1))
    assert "hunter2" not in str(info.value)

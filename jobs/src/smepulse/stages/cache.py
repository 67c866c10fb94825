"""``invalidate-cache``: drop the API/dashboard cache entries that the new gold data made stale.

For each of ``settings.cache_key_patterns`` the keys are found with ``SCAN … MATCH`` (never
``KEYS``, which blocks Redis for the whole keyspace) and removed with ``UNLINK`` (freed in the
background) in batches. Then one JSON message is published on ``settings.cache_channel`` so
that API processes holding in-memory caches can drop theirs too::

    {"event": "cache-invalidated", "patterns": [...], "deleted": {"pattern": n, ...},
     "total_deleted": n, "run_id": "...", "pipeline": "...", "logical_date": "YYYY-MM-DD",
     "at": "<UTC ISO time>"}

Keys written while the scan runs may survive it (SCAN's guarantee covers keys present for
the whole scan); the published message lets consumers refresh anyway. Skipped with a log line
when ``REDIS_URL`` is unset.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from smepulse.errors import StageError, StageSkipped
from smepulse.settings import Settings
from smepulse.stages._common import mask_url

log = logging.getLogger(__name__)

SCAN_COUNT = 500  # keys examined per SCAN call (a hint to Redis)
UNLINK_BATCH = 500  # keys removed per UNLINK call


def delete_matching(client: Any, pattern: str, batch: int = UNLINK_BATCH) -> int:
    """UNLINK every key matching ``pattern`` (SCAN-based); return how many were removed."""
    removed = 0
    pending: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
        pending.append(key)
        if len(pending) >= batch:
            removed += int(client.unlink(*pending))
            pending.clear()
    if pending:
        removed += int(client.unlink(*pending))
    return removed


def invalidation_message(settings: Settings, deleted: dict[str, int]) -> dict[str, Any]:
    return {
        "event": "cache-invalidated",
        "patterns": list(deleted),
        "deleted": deleted,
        "total_deleted": sum(deleted.values()),
        "run_id": settings.run_id,
        "pipeline": settings.pipeline,
        "logical_date": settings.business_date.isoformat(),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def run(settings: Settings) -> None:
    """Stage entrypoint."""
    if not settings.redis_url:
        log.info("invalidate-cache: REDIS_URL is not set, nothing to invalidate")
        raise StageSkipped("Redis not configured (REDIS_URL unset)")
    if not settings.cache_key_patterns:
        raise StageSkipped("no cache key patterns configured (SMEPULSE_CACHE_KEY_PATTERNS)")
    import redis

    url = settings.redis_url.get_secret_value()
    client = redis.Redis.from_url(
        url,
        socket_timeout=settings.http_timeout_seconds,
        socket_connect_timeout=settings.http_timeout_seconds,
        retry_on_timeout=True,
    )
    try:
        deleted = {
            pattern: delete_matching(client, pattern) for pattern in settings.cache_key_patterns
        }
        message = invalidation_message(settings, deleted)
        receivers = int(client.publish(settings.cache_channel, json.dumps(message)))
    except redis.RedisError as exc:
        raise StageError(
            f"Redis {mask_url(url)}: {type(exc).__name__}: {exc}; check REDIS_URL and that Redis is up"
        ) from None
    finally:
        client.close()
    for pattern, n in deleted.items():
        log.info("removed %d key(s) matching %s", n, pattern)
    print(
        f"invalidate-cache: {message['total_deleted']} key(s) removed; "
        f"published on {settings.cache_channel} to {receivers} subscriber(s)"
    )

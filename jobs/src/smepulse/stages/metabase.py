"""``refresh-metabase``: re-run the configured Metabase questions so dashboards show today's data.

Metabase caches query results; after ml-predict rewrites the gold tables, the cards that
read them are re-run with ``ignore_cache`` so the next viewer gets fresh results:

- cards: ``POST /api/card/:id/query`` for each of ``settings.metabase_card_ids``;
- dashboards: ``GET /api/dashboard/:id``, then for each dashcard that shows a question
  ``POST /api/dashboard/:id/dashcard/:dashcard-id/card/:card-id/query`` (the dashboard's own
  cache entry, which is what viewers of the dashboard hit).

Authentication: an API key (``x-api-key`` header, Metabase 0.47+) or, without one, a session
from ``POST /api/session`` with username/password (``X-Metabase-Session`` header). Transient
failures (connection errors, timeouts, 5xx, 429) are retried with backoff; a 4xx fails at
once with the card or dashboard id in the message. Every card is attempted before the stage
fails, so one bad id does not leave the others stale. Skipped when Metabase is unconfigured.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import httpx

from smepulse.errors import StageError, StageSkipped
from smepulse.settings import Settings
from smepulse.stages._common import describe, mask_url, with_retries

log = logging.getLogger(__name__)


class MetabaseClient:
    """A small, synchronous Metabase API client (the calls this product needs)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 1.0,
        query_timeout: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.username = username
        self.password = password
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.query_timeout = query_timeout
        self.http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers={"Accept": "application/json"}
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MetabaseClient:
        if not settings.metabase_url:
            raise StageSkipped("Metabase not configured (SMEPULSE_METABASE_URL unset)")
        return cls(
            settings.metabase_url,
            api_key=settings.metabase_api_key.get_secret_value()
            if settings.metabase_api_key
            else None,
            username=settings.metabase_username,
            password=settings.metabase_password.get_secret_value()
            if settings.metabase_password
            else None,
            timeout=settings.http_timeout_seconds,
            retries=settings.http_retries,
            backoff_seconds=settings.http_backoff_seconds,
        )

    def __enter__(self) -> MetabaseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.http.close()

    def _call(self, what: str, method: str, path: str, **kwargs: Any) -> Any:
        def once() -> Any:
            response = self.http.request(method, path, **kwargs)
            response.raise_for_status()
            return response.json() if response.content else None

        return with_retries(what, once, self.retries, self.backoff_seconds)

    def health(self) -> str:
        """``GET /api/health``: ``ok`` when Metabase is up (no credentials needed)."""
        body = self._call("Metabase health", "GET", "/api/health")
        return str(body.get("status", body)) if isinstance(body, dict) else str(body)

    def authenticate(self) -> str:
        """Set the auth header (API key, or a new session); say who we are."""
        if self.api_key:
            self.http.headers["x-api-key"] = self.api_key
            how = "API key"
        elif self.username and self.password:
            try:
                body = self._call(
                    "Metabase login",
                    "POST",
                    "/api/session",
                    json={"username": self.username, "password": self.password},
                )
            except httpx.HTTPStatusError as exc:
                raise StageError(
                    f"Metabase {mask_url(self.base_url)} refused the login of {self.username!r}: "
                    f"{describe(exc)}; check SMEPULSE_METABASE_USERNAME/PASSWORD"
                ) from None
            self.http.headers["X-Metabase-Session"] = str(body["id"])
            how = f"session of {self.username}"
        else:
            raise StageError(
                "Metabase has no credentials: set SMEPULSE_METABASE_API_KEY, or "
                "SMEPULSE_METABASE_USERNAME and SMEPULSE_METABASE_PASSWORD"
            )
        try:
            user = self._call("Metabase current user", "GET", "/api/user/current")
        except httpx.HTTPStatusError as exc:
            raise StageError(
                f"Metabase {mask_url(self.base_url)} rejected the {how}: {describe(exc)}"
            ) from None
        name = (
            user.get("email") or user.get("common_name") or user.get("id")
            if isinstance(user, dict)
            else user
        )
        return f"authenticated ({how}) as {name}"

    def refresh_card(self, card_id: int) -> int:
        """Re-run card ``card_id`` ignoring the cache; return its row count."""
        body = self._call(
            f"Metabase card {card_id}",
            "POST",
            f"/api/card/{card_id}/query",
            json={"ignore_cache": True},
            timeout=self.query_timeout,
        )
        return _row_count(body, f"card {card_id}")

    def dashboard_cards(self, dashboard_id: int) -> list[tuple[int, int]]:
        """(dashcard id, card id) of every question on dashboard ``dashboard_id``."""
        body = self._call(
            f"Metabase dashboard {dashboard_id}", "GET", f"/api/dashboard/{dashboard_id}"
        )
        # "dashcards" since Metabase 0.47; "ordered_cards" before.
        dashcards = body.get("dashcards") or body.get("ordered_cards") or []
        return [(int(dc["id"]), int(dc["card_id"])) for dc in dashcards if dc.get("card_id")]

    def refresh_dashcard(self, dashboard_id: int, dashcard_id: int, card_id: int) -> int:
        body = self._call(
            f"Metabase dashboard {dashboard_id} card {card_id}",
            "POST",
            f"/api/dashboard/{dashboard_id}/dashcard/{dashcard_id}/card/{card_id}/query",
            json={"ignore_cache": True, "parameters": []},
            timeout=self.query_timeout,
        )
        return _row_count(body, f"dashboard {dashboard_id} card {card_id}")


def _row_count(body: Any, what: str) -> int:
    # Metabase answers 202 with {"status": "failed", "error": ...} when the query itself fails.
    if isinstance(body, dict) and body.get("status") == "failed":
        raise StageError(
            f"Metabase {what}: the query failed: {body.get('error', 'no error message')}"
        )
    if isinstance(body, dict):
        count = body.get("row_count")
        if count is None:
            count = len((body.get("data") or {}).get("rows") or [])
        return int(count)
    return 0


def _explain(exc: Exception, what: str, setting: str) -> str:
    if isinstance(exc, StageError):
        return str(exc)
    hint = ""
    if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (403, 404):
        hint = f" (is the id right in {setting}, and may these credentials see it?)"
    return f"Metabase {what}: {describe(exc)}{hint}"


def run(settings: Settings) -> None:
    """Stage entrypoint."""
    if not settings.metabase_url:
        raise StageSkipped("Metabase not configured (SMEPULSE_METABASE_URL unset)")
    if not settings.metabase_card_ids and not settings.metabase_dashboard_ids:
        raise StageSkipped(
            "no Metabase cards or dashboards configured "
            "(SMEPULSE_METABASE_CARD_IDS / SMEPULSE_METABASE_DASHBOARD_IDS)"
        )
    errors: list[str] = []
    refreshed = 0
    with MetabaseClient.from_settings(settings) as client:
        try:
            log.info("Metabase %s: %s", mask_url(client.base_url), client.authenticate())
        except (httpx.HTTPError, OSError) as exc:
            raise StageError(
                f"Metabase {mask_url(client.base_url)} unreachable: {describe(exc)}"
            ) from None
        for card_id in settings.metabase_card_ids:
            try:
                rows = client.refresh_card(card_id)
                refreshed += 1
                log.info("card %d refreshed: %d rows", card_id, rows)
            except (httpx.HTTPError, StageError, OSError) as exc:
                errors.append(_explain(exc, f"card {card_id}", "SMEPULSE_METABASE_CARD_IDS"))
        for dashboard_id in settings.metabase_dashboard_ids:
            try:
                cards = client.dashboard_cards(dashboard_id)
            except (httpx.HTTPError, OSError) as exc:
                errors.append(
                    _explain(exc, f"dashboard {dashboard_id}", "SMEPULSE_METABASE_DASHBOARD_IDS")
                )
                continue
            for dashcard_id, card_id in cards:
                try:
                    rows = client.refresh_dashcard(dashboard_id, dashcard_id, card_id)
                    refreshed += 1
                    log.info("dashboard %d card %d refreshed: %d rows", dashboard_id, card_id, rows)
                except (httpx.HTTPError, StageError, OSError) as exc:
                    errors.append(
                        _explain(
                            exc,
                            f"dashboard {dashboard_id} card {card_id}",
                            "SMEPULSE_METABASE_DASHBOARD_IDS",
                        )
                    )
    print(f"refresh-metabase: {refreshed} question(s) refreshed, {len(errors)} failed")
    if errors:
        raise StageError("; ".join(errors))

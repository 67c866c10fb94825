"""refresh-metabase against a local HTTP server speaking Metabase's API, with the real client."""

from __future__ import annotations

from pathlib import Path

import pytest

from smepulse.errors import StageError, StageSkipped
from smepulse.settings import Settings
from smepulse.stages import metabase

from .services import FakeHTTP, Request

pytestmark = pytest.mark.integration


def metabase_api(req: Request) -> tuple[int, object]:
    """A small Metabase: cards 1-5 exist, dashboard 7 holds cards 3 and 4 and a text card."""
    if req.path == "/api/health":
        return 200, {"status": "ok"}
    if req.path == "/api/session" and req.method == "POST":
        creds = req.json()
        if creds == {"username": "bot@sme.vn", "password": "pw"}:
            return 200, {"id": "session-123"}
        return 401, {"errors": {"password": "did not match"}}
    authed = (
        req.headers.get("x-api-key") == "mb_key"
        or req.headers.get("x-metabase-session") == "session-123"
    )
    if not authed:
        return 401, b"Unauthenticated"
    if req.path == "/api/user/current":
        return 200, {"id": 1, "email": "bot@sme.vn"}
    if req.path == "/api/dashboard/7" and req.method == "GET":
        return 200, {
            "id": 7,
            "dashcards": [
                {"id": 70, "card_id": 3},
                {"id": 71, "card_id": 4},
                {"id": 72, "card_id": None},
            ],
        }
    parts = req.path.strip("/").split("/")
    if req.method == "POST" and parts[-1] == "query":
        card = int(parts[-2])
        if card > 5:
            return 404, b"Not found."
        return 202, {"status": "completed", "row_count": card * 10, "data": {"rows": []}}
    return 404, b"Not found."


def queries(server: FakeHTTP) -> list[Request]:
    return [r for r in server.requests if r.path.endswith("/query")]


def settings(home: Path, server: FakeHTTP, **extra: object) -> Settings:
    return Settings(home=home, metabase_url=server.url, http_backoff_seconds=0.01, **extra)  # type: ignore[arg-type]


def test_cards_and_dashboards_refreshed_with_an_api_key(home: Path, http_server: FakeHTTP) -> None:
    http_server.respond = metabase_api
    metabase.run(
        settings(
            home,
            http_server,
            metabase_api_key="mb_key",
            metabase_card_ids=[1, 2],
            metabase_dashboard_ids=[7],
        )
    )
    assert [p for p in http_server.paths() if p.endswith("/query")] == [
        "POST /api/card/1/query",
        "POST /api/card/2/query",
        "POST /api/dashboard/7/dashcard/70/card/3/query",
        "POST /api/dashboard/7/dashcard/71/card/4/query",
    ]
    assert all(r.headers.get("x-api-key") == "mb_key" for r in http_server.requests)
    # A refresh must bypass Metabase's result cache: checked here, on what the server received.
    assert [r.json()["ignore_cache"] for r in queries(http_server)] == [True] * 4


def test_session_login_when_no_api_key(home: Path, http_server: FakeHTTP) -> None:
    http_server.respond = metabase_api
    metabase.run(
        settings(
            home,
            http_server,
            metabase_username="bot@sme.vn",
            metabase_password="pw",
            metabase_card_ids=[5],
        )
    )
    assert http_server.paths()[0] == "POST /api/session"
    query = http_server.requests[-1]
    assert (
        query.path == "/api/card/5/query" and query.headers["x-metabase-session"] == "session-123"
    )
    assert query.json()["ignore_cache"] is True


def test_wrong_password_is_a_clear_error(home: Path, http_server: FakeHTTP) -> None:
    http_server.respond = metabase_api
    with pytest.raises(StageError, match=r"refused the login of 'bot@sme\.vn'.*HTTP 401"):
        metabase.run(
            settings(
                home,
                http_server,
                metabase_username="bot@sme.vn",
                metabase_password="nope",
                metabase_card_ids=[1],
            )
        )


def test_unknown_card_is_named_and_the_others_still_refresh(
    home: Path, http_server: FakeHTTP
) -> None:
    http_server.respond = metabase_api
    with pytest.raises(StageError, match=r"card 99: HTTP 404.*SMEPULSE_METABASE_CARD_IDS"):
        metabase.run(
            settings(home, http_server, metabase_api_key="mb_key", metabase_card_ids=[99, 1])
        )
    assert "POST /api/card/1/query" in http_server.paths()


def test_failed_query_body_is_an_error(home: Path, http_server: FakeHTTP) -> None:
    def broken(req: Request) -> tuple[int, object]:
        if req.path.endswith("/query"):
            return 202, {"status": "failed", "error": "Table GOLD.ML_CASHFLOW_FORECAST not found"}
        return metabase_api(req)

    http_server.respond = broken
    with pytest.raises(
        StageError, match=r"card 2: the query failed: Table GOLD\.ML_CASHFLOW_FORECAST not found"
    ):
        metabase.run(settings(home, http_server, metabase_api_key="mb_key", metabase_card_ids=[2]))


def test_transient_errors_are_retried(home: Path, http_server: FakeHTTP) -> None:
    calls = {"n": 0}

    def flaky(req: Request) -> tuple[int, object]:
        if req.path.endswith("/query"):
            calls["n"] += 1
            if calls["n"] < 3:
                return 503, b"Service Unavailable"
        return metabase_api(req)

    http_server.respond = flaky
    metabase.run(settings(home, http_server, metabase_api_key="mb_key", metabase_card_ids=[3]))
    assert calls["n"] == 3


def test_skipped_when_unconfigured(home: Path, http_server: FakeHTTP) -> None:
    with pytest.raises(StageSkipped, match="Metabase not configured"):
        metabase.run(Settings(home=home))
    with pytest.raises(StageSkipped, match="no Metabase cards or dashboards"):
        metabase.run(settings(home, http_server, metabase_api_key="mb_key"))
    assert http_server.requests == []

"""notify against a local HTTP server (webhook) and a local SMTP server, with the real client."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from smepulse.errors import StageError, StageSkipped
from smepulse.settings import Settings
from smepulse.stages import notify

from .services import FakeHTTP, Mailbox

pytestmark = pytest.mark.integration


def failed_run(home: Path, **extra: object) -> Settings:
    fields: dict[str, object] = {
        "pipeline": "daily-etl",
        "run_id": "daily-etl-20250630",
        "logical_date": dt.date(2025, 6, 30),
        "run_outcome": "Failed",
        "failed_stage": "dbt-silver",
        "failure_message": "model stg_bronze__customers: column tax_code not found",
        "http_backoff_seconds": 0.01,
        "http_retries": 2,
    }
    return Settings(home=home, **(fields | extra))  # type: ignore[arg-type]


def test_webhook_gets_slack_json_with_the_failure(home: Path, http_server: FakeHTTP) -> None:
    notify.run(failed_run(home, notify_webhook_url=f"{http_server.url}/hooks/abc"))
    assert http_server.paths() == ["POST /hooks/abc"]
    body = http_server.requests[0].json()
    assert set(body) == {"text", "blocks"}
    for expected in (
        "daily-etl",
        "daily-etl-20250630",
        "2025-06-30",
        "Failed",
        "dbt-silver",
        "column tax_code not found",
    ):
        assert expected in body["text"]
    assert body["blocks"][0]["type"] == "section"
    assert http_server.requests[0].headers["content-type"] == "application/json"


def test_webhook_retries_transient_failures(home: Path, http_server: FakeHTTP) -> None:
    answers = iter([(503, {"error": "busy"}), (502, b"bad gateway"), (200, {"ok": True})])
    http_server.respond = lambda req: next(answers)
    notify.run(failed_run(home, notify_webhook_url=http_server.url + "/hook"))
    assert len(http_server.requests) == 3


def test_webhook_gives_up_after_retries_and_names_the_endpoint(
    home: Path, http_server: FakeHTTP
) -> None:
    http_server.respond = lambda req: (500, {"error": "down"})
    with pytest.raises(StageError, match=r"webhook .*HTTP 500"):
        notify.run(failed_run(home, notify_webhook_url=http_server.url + "/hook"))
    assert len(http_server.requests) == 3  # 1 + http_retries


def test_webhook_client_error_is_not_retried(home: Path, http_server: FakeHTTP) -> None:
    http_server.respond = lambda req: (404, {"error": "no such hook"})
    with pytest.raises(StageError, match="HTTP 404"):
        notify.run(failed_run(home, notify_webhook_url=http_server.url + "/hook"))
    assert len(http_server.requests) == 1


def test_webhook_timeout_is_retried(home: Path, http_server: FakeHTTP) -> None:
    http_server.delay = 1.0
    with pytest.raises(StageError, match="Timeout"):
        notify.run(
            failed_run(
                home,
                notify_webhook_url=http_server.url + "/hook",
                http_timeout_seconds=0.2,
                http_retries=1,
            )
        )
    assert len(http_server.requests) == 2


def test_email_by_smtp_with_login(home: Path, smtp_server: Mailbox) -> None:
    settings = failed_run(
        home, smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_starttls=False,
        smtp_username="ops", smtp_password="s3cret", smtp_from="pulse@example.com",
        smtp_to=["cfo@example.com", "ops@example.com"],
    )  # fmt: skip
    notify.run(settings)
    assert smtp_server.logins == [("ops", "s3cret")]
    (msg,) = smtp_server.messages
    assert msg["Subject"] == "[SME Pulse] daily-etl Failed (2025-06-30)"
    assert msg["X-Envelope-To"] == "cfo@example.com, ops@example.com"
    text = msg.get_payload(decode=True).decode()
    assert "dbt-silver" in text and "column tax_code not found" in text


def test_email_refuses_plain_text_when_starttls_is_required(
    home: Path, smtp_server: Mailbox
) -> None:
    settings = failed_run(
        home, smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_to=["a@b.c"]
    )
    with pytest.raises(StageError, match="does not offer STARTTLS"):
        notify.run(settings)
    assert smtp_server.messages == []


def test_one_channel_failing_does_not_stop_the_other(
    home: Path, http_server: FakeHTTP, smtp_server: Mailbox
) -> None:
    http_server.respond = lambda req: (403, {"error": "forbidden"})
    settings = failed_run(
        home, notify_webhook_url=http_server.url + "/hook", smtp_host=smtp_server.host,
        smtp_port=smtp_server.port, smtp_starttls=False, smtp_to=["a@b.c"],
    )  # fmt: skip
    with pytest.raises(StageError, match=r"webhook .*HTTP 403"):
        notify.run(settings)
    assert len(smtp_server.messages) == 1


def test_success_message_and_skip_without_channels(home: Path, http_server: FakeHTTP) -> None:
    ok = Settings(home=home, pipeline="ml-predict", run_id="ml-predict-20250630", logical_date=dt.date(2025, 6, 30),
                  run_outcome="Succeeded", notify_webhook_url=http_server.url + "/h")  # fmt: skip
    notify.run(ok)
    text = http_server.requests[0].json()["text"]
    assert "Succeeded" in text and "Failed stage" not in text
    with pytest.raises(StageSkipped, match="no notification channel configured"):
        notify.run(Settings(home=home))

"""``notify``: the run's outcome to a chat webhook and/or by email (the finally stage).

The executor (local runner or operator) sets the outcome, the failed stage and its message
in the environment (``settings.run_outcome`` …). The message names the pipeline, the run, the
logical date and the outcome, and on failure the stage that failed and why; when the local
runner's record of the run is readable, a line per stage is added.

Channels, each used only when configured:

- webhook: ``POST`` of Slack-compatible JSON ``{"text": ..., "blocks": [...]}`` (Slack,
  Mattermost, Rocket.Chat and Google Chat accept ``text``);
- email: SMTP (``smtplib``), STARTTLS by default (``SMEPULSE_SMTP_STARTTLS``), implicit TLS on
  port 465, login when a username is set.

Transient failures (connection errors, timeouts, HTTP 5xx/429, SMTP 4xx) are retried with
backoff (``settings.http_retries``); both channels are attempted before the stage fails.
With no channel configured the stage is skipped with a clear line.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from smepulse.errors import StageError, StageSkipped
from smepulse.runner import history as runs_store
from smepulse.settings import Settings
from smepulse.stages._common import describe, is_transient, mask_url, with_retries

log = logging.getLogger(__name__)

_ICON = {
    "Succeeded": ":white_check_mark:",
    "Failed": ":x:",
    "TimedOut": ":hourglass:",
    "Cancelled": ":no_entry_sign:",
}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def _stage_lines(settings: Settings) -> list[str]:
    """A line per stage from the local runner's record of this run (empty if there is none)."""
    if not settings.run_id:
        return []
    record = runs_store.load(settings.runs_dir / settings.run_id / runs_store.RUN_FILE)
    if record is None:
        return []
    lines = []
    for st in record.stages:
        if st.is_finally or st.state == "not-selected":
            continue
        took = f" in {st.duration_seconds:.0f}s" if st.duration_seconds is not None else ""
        tries = f", {st.attempts} attempts" if st.attempts > 1 else ""
        lines.append(f"• {st.name}: {st.state}{took}{tries}")
    return lines


def build_message(settings: Settings) -> Message:
    """The notification for the current run (pure apart from reading the run record)."""
    outcome = settings.run_outcome or "Unknown"
    pipeline = settings.pipeline or "(no pipeline)"
    run_id = settings.run_id or "(no run id)"
    date = settings.business_date.isoformat()
    headline = f"{_ICON.get(outcome, ':grey_question:')} SME Pulse {pipeline} {outcome}: run {run_id}, logical date {date}"
    details: list[str] = []
    if outcome != "Succeeded" and settings.failed_stage:
        details.append(f"Failed stage: {settings.failed_stage}")
        if settings.failure_message:
            details.append(f"Error: {settings.failure_message}")
    stages = _stage_lines(settings)
    from smepulse.stages.report import report_location

    report = report_location(settings, pipeline, date)
    if report:
        details.append(f"Report: {report}")
    text = "\n".join([headline, *details, *stages])
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
    ]
    if details:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(details)}})
    if stages:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(stages)[:2900]}]}
        )
    subject = f"[SME Pulse] {pipeline} {outcome} ({date})"
    return Message(subject=subject, text=text, blocks=blocks)


def send_webhook(settings: Settings, message: Message) -> None:
    assert settings.notify_webhook_url is not None
    url = settings.notify_webhook_url.get_secret_value()

    def post() -> None:
        response = httpx.post(
            url,
            json={"text": message.text, "blocks": message.blocks},
            timeout=settings.http_timeout_seconds,
        )
        response.raise_for_status()

    with_retries(
        f"webhook {mask_url(url)}", post, settings.http_retries, settings.http_backoff_seconds
    )


def _smtp_transient(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500  # SMTP's "try again later"
    if isinstance(exc, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    # Other SMTPExceptions (auth, unsupported command) are OSErrors too, but permanent.
    return (
        isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
    ) or is_transient(exc)


def send_email(settings: Settings, message: Message) -> None:
    if not settings.smtp_to:
        raise StageError(
            "SMTP is configured (SMEPULSE_SMTP_HOST) but SMEPULSE_SMTP_TO is empty: nobody to send to"
        )
    assert settings.smtp_host is not None
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = settings.smtp_from or settings.smtp_username or f"smepulse@{socket.getfqdn()}"
    email["To"] = ", ".join(settings.smtp_to)
    email.set_content(message.text)
    host, port = settings.smtp_host, settings.smtp_port

    def deliver() -> None:
        timeout = settings.http_timeout_seconds
        smtp: smtplib.SMTP
        if port == 465:
            smtp = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if settings.smtp_starttls and port != 465:
                if not smtp.has_extn("starttls"):
                    raise StageError(
                        f"SMTP server {host}:{port} does not offer STARTTLS; "
                        "set SMEPULSE_SMTP_STARTTLS=false if a plain connection is intended"
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(email)

    with_retries(
        f"SMTP {host}:{port}",
        deliver,
        settings.http_retries,
        settings.http_backoff_seconds,
        _smtp_transient,
    )


def run(settings: Settings) -> None:
    """Stage entrypoint: send to every configured channel; skip when there is none."""
    channels = []
    if settings.notify_webhook_url:
        channels.append(("webhook", send_webhook))
    if settings.smtp_host:
        channels.append(("email", send_email))
    if not channels:
        raise StageSkipped(
            "no notification channel configured (SMEPULSE_NOTIFY_WEBHOOK_URL, SMEPULSE_SMTP_HOST)"
        )
    message = build_message(settings)
    errors = []
    for name, send in channels:
        try:
            send(settings, message)
            log.info("notification sent by %s: %s", name, message.subject)
        except StageError as exc:
            errors.append(f"{name}: {exc}")
        except (httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
            where = (
                mask_url(settings.notify_webhook_url.get_secret_value())
                if name == "webhook" and settings.notify_webhook_url
                else f"{settings.smtp_host}:{settings.smtp_port}"
            )
            errors.append(f"{name} {where}: {describe(exc)}")
    if errors:
        raise StageError("notification failed: " + "; ".join(errors))

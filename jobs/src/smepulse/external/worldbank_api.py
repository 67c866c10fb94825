"""A client for the World Bank Indicators API v2 (JSON).

``GET {base}/country/{country}/indicator/{code}?format=json&date=Y1:Y2&per_page=N&page=P``
answers a two-element array: paging metadata (``page``, ``pages``, ``per_page``, ``total``,
``lastupdated``) and the page's rows (``indicator {id, value}``, ``country {id, value}``,
``countryiso3code``, ``date``, ``value``, ``unit``, ``obs_status``, ``decimal``). An error is a
one-element array ``[{"message": [{"id", "key", "value"}]}]``, often with HTTP 200.

Contract of :meth:`WorldBankClient.fetch_indicator`:

* every page is fetched and checked (the page number echoes the request, the rows add up to
  ``total``, every row belongs to the requested indicator and has a yearly ``date``);
* timeouts, transport errors, HTTP 5xx and 429 are retried ``retries`` times with exponential
  backoff, then raise :class:`ApiUnreachable` (the caller falls back to earlier data);
* an error payload raises :class:`ApiErrorPayload` naming the indicator; any other unexpected
  body raises :class:`MalformedResponse`. Neither is retried: repeating will not fix them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from smepulse import retry

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 60.0


class _Transient(Exception):
    """One failed attempt worth repeating; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class WorldBankError(Exception):
    """Base of the client's errors; the message says what, where and what to do."""


class ApiUnreachable(WorldBankError):
    """The API could not be reached (or kept failing) after all retries."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"World Bank API unreachable at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiErrorPayload(WorldBankError):
    """The API answered with its error document (e.g. an unknown indicator code)."""

    def __init__(self, indicator: str, url: str, messages: list[str]) -> None:
        text = "; ".join(messages) or "no message"
        super().__init__(
            f"World Bank API rejected indicator {indicator!r} ({url}): {text}. "
            "Check SMEPULSE_WORLDBANK_INDICATORS / SMEPULSE_WORLDBANK_COUNTRY."
        )
        self.indicator = indicator
        self.messages = messages


class MalformedResponse(WorldBankError):
    """The body is not the documented shape; nothing from it may be written."""

    def __init__(self, indicator: str, url: str, problem: str) -> None:
        super().__init__(
            f"World Bank API returned a malformed response for indicator {indicator!r} "
            f"({url}): {problem}"
        )
        self.indicator = indicator
        self.problem = problem


@dataclass(frozen=True)
class Observation:
    """One yearly value of one indicator for one country (``value`` None = not published)."""

    indicator_id: str
    indicator_name: str
    country_code: str
    country_name: str
    year: int
    value: float | None
    unit: str
    obs_status: str
    decimals: int | None


@dataclass(frozen=True)
class Page:
    """One parsed page: its paging metadata and rows."""

    page: int
    pages: int
    total: int
    last_updated: dt.date | None
    rows: list[Observation]


@dataclass(frozen=True)
class IndicatorSeries:
    """All observations of one indicator, with the source's last-update date."""

    indicator_id: str
    last_updated: dt.date | None
    observations: list[Observation]


def _as_int(value: Any, field: str, fail: Callable[[str], WorldBankError]) -> int:
    # The API has sent paging numbers both as numbers and as digit strings.
    if isinstance(value, bool):
        raise fail(f"paging field {field!r} is not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise fail(f"paging field {field!r} is not a number: {value!r}")


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def _parse_row(
    item: Any, indicator: str, index: int, fail: Callable[[str], WorldBankError]
) -> Observation:
    where = f"row {index}"
    if not isinstance(item, dict):
        raise fail(f"{where} is not an object")
    ind, country = item.get("indicator"), item.get("country")
    if not isinstance(ind, dict) or not isinstance(country, dict):
        raise fail(f"{where} lacks the 'indicator'/'country' objects")
    ind_id = _as_text(ind.get("id"))
    if ind_id.upper() != indicator.upper():
        raise fail(f"{where} belongs to indicator {ind_id!r}, not the one requested")
    date = _as_text(item.get("date"))
    if not (len(date) == 4 and date.isdigit()):
        raise fail(f"{where} has date {date!r}; only yearly data (YYYY) is supported")
    raw = item.get("value")
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int | float)):
        raise fail(f"{where} (year {date}) has a non-numeric value {raw!r}")
    if raw is not None and not math.isfinite(float(raw)):
        raise fail(f"{where} (year {date}) has a non-finite value {raw!r}")
    decimals = item.get("decimal")
    return Observation(
        indicator_id=ind_id,
        indicator_name=_as_text(ind.get("value")),
        country_code=_as_text(country.get("id")),
        country_name=_as_text(country.get("value")),
        year=int(date),
        value=None if raw is None else float(raw),
        unit=_as_text(item.get("unit")),
        obs_status=_as_text(item.get("obs_status")),
        decimals=decimals if isinstance(decimals, int) and not isinstance(decimals, bool) else None,
    )


def parse_page(body: bytes | str, indicator: str, url: str) -> Page:
    """Parse one response body; raise :class:`ApiErrorPayload` or :class:`MalformedResponse`."""

    def fail(problem: str) -> WorldBankError:
        return MalformedResponse(indicator, url, problem)

    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise fail(f"body is not JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(payload, list) or not payload:
        raise fail("expected a JSON array [paging, rows]")
    head = payload[0]
    if isinstance(head, dict) and "message" in head:
        msgs = head["message"] if isinstance(head["message"], list) else [head["message"]]
        texts = [
            f"{m.get('id', '?')} {m.get('key', '')}: {m.get('value', '')}".strip()
            if isinstance(m, dict)
            else str(m)
            for m in msgs
        ]
        raise ApiErrorPayload(indicator, url, texts)
    if len(payload) != 2 or not isinstance(head, dict):
        raise fail(f"expected a 2-element array [paging, rows], got {len(payload)} element(s)")
    page = _as_int(head.get("page"), "page", fail)
    pages = _as_int(head.get("pages"), "pages", fail)
    total = _as_int(head.get("total"), "total", fail)
    last_updated: dt.date | None = None
    if head.get("lastupdated"):
        try:
            last_updated = dt.date.fromisoformat(str(head["lastupdated"])[:10])
        except ValueError:
            raise fail(f"'lastupdated' is not a date: {head['lastupdated']!r}") from None
    items = payload[1]
    if items is None:  # the API's way of saying "no rows"
        items = []
    if not isinstance(items, list):
        raise fail("the second element (rows) is not an array")
    rows = [_parse_row(item, indicator, i, fail) for i, item in enumerate(items)]
    return Page(page=page, pages=pages, total=total, last_updated=last_updated, rows=rows)


class WorldBankClient:
    """Fetches indicator series over HTTP with timeouts, retries and pagination."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        per_page: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.per_page = per_page
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            headers={"Accept": "application/json", "User-Agent": "smepulse-external-sync"},
        )

    def __enter__(self) -> WorldBankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def indicator_url(self, country: str, indicator: str) -> str:
        return f"{self.base_url}/country/{country}/indicator/{indicator}"

    def fetch_indicator(
        self, country: str, indicator: str, start_year: int, end_year: int
    ) -> IndicatorSeries:
        """Every yearly observation of ``indicator`` for ``country`` in [start, end]."""
        url = self.indicator_url(country, indicator)
        observations: list[Observation] = []
        first: Page | None = None
        page_no = 1
        while True:
            params = {
                "format": "json",
                "date": f"{start_year}:{end_year}",
                "per_page": str(self.per_page),
                "page": str(page_no),
            }
            body = self._get(url, params)
            page = parse_page(body, indicator, f"{url} page {page_no}")
            if page.page not in (page_no, 0):
                raise MalformedResponse(
                    indicator, url, f"asked for page {page_no}, got page {page.page}"
                )
            first = first or page
            observations.extend(page.rows)
            if page_no >= page.pages:
                break
            page_no += 1
        if len(observations) != first.total:
            raise MalformedResponse(
                indicator,
                url,
                f"pages held {len(observations)} rows but 'total' says {first.total} "
                "(data changed while paging? run the stage again)",
            )
        return IndicatorSeries(indicator, first.last_updated, observations)

    def _get(self, url: str, params: dict[str, str]) -> bytes:
        """One page's body, through the shared retry policy (:mod:`smepulse.retry`)."""

        def once() -> bytes:
            try:
                response = self._http.get(url, params=params)
            except httpx.TimeoutException as exc:
                raise _Transient(f"timed out ({exc.__class__.__name__})") from exc
            except httpx.TransportError as exc:
                raise _Transient(f"{exc.__class__.__name__}: {exc}") from exc
            if response.status_code in _RETRY_STATUS:
                retry_after = response.headers.get("Retry-After", "")
                hint = (
                    min(float(retry_after), _MAX_RETRY_AFTER_SECONDS)
                    if retry_after.isdigit()
                    else None
                )
                raise _Transient(f"HTTP {response.status_code}", hint)
            if response.status_code >= 400 and not response.content.lstrip().startswith(b"["):
                raise WorldBankError(
                    f"World Bank API answered HTTP {response.status_code} for {url} "
                    f"(params {params}): {response.text[:200]!r}"
                )
            return response.content

        def note(exc: BaseException, attempt: int, total: int, delay: float) -> None:
            log.info(
                "World Bank API %s (page %s): %s; retry %d/%d in %.1fs",
                url,
                params.get("page"),
                exc,
                attempt,
                total,
                delay,
            )

        try:
            return retry.call(
                once,
                retries=self.retries,
                backoff_seconds=self.backoff,
                transient=lambda exc: isinstance(exc, _Transient),
                on_retry=note,
                delay_hint=lambda exc: exc.retry_after if isinstance(exc, _Transient) else None,
                sleep=self._sleep,
            )
        except _Transient as exc:
            raise ApiUnreachable(url, f"{exc} (after {self.retries + 1} attempt(s))") from None

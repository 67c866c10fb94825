"""Stage ``ingest-worldbank``: World Bank macro indicators into bronze, incrementally.

Bronze table ``ext_worldbank_indicators``, key (indicator_id, country_code, year):
indicator_id, country_code, year INT32, indicator_name, country_name, value DOUBLE, unit,
obs_status, decimals INT32, source ('worldbank-api' or 'bundled-snapshot'),
source_last_updated DATE (the API's ``lastupdated``), updated_at TIMESTAMP UTC.

Each run fetches every configured indicator for ``worldbank_start_year`` .. the business year
and writes, as the business date's ingest, only the rows that are new or whose value, unit or
status differ from the latest earlier ingest; with nothing changed it writes nothing and says
so. Silver keeps the newest ``updated_at`` per key, so the ingests together are the full series.

Failures: an error payload or a malformed body stops the stage (exit 1) naming the indicator,
and nothing is written. An unreachable API is not a failure: the stage logs one line (URL and
error) and keeps the last successful ingest, or, when bronze has none, seeds it from the
bundled snapshot, so an offline ``smepulse demo`` still has data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from smepulse.errors import StageError
from smepulse.external import bronze_io, snapshot
from smepulse.external.worldbank_api import (
    ApiErrorPayload,
    ApiUnreachable,
    IndicatorSeries,
    Observation,
    WorldBankClient,
    WorldBankError,
)
from smepulse.settings import Settings

log = logging.getLogger(__name__)

TABLE = "ext_worldbank_indicators"
API_SOURCE = "worldbank-api"
KEY = ("indicator_id", "country_code", "year")
# A row counts as revised when any of these differ from the latest earlier ingest.
COMPARED = ("value", "unit", "obs_status")

SCHEMA = pa.schema(
    [
        pa.field("indicator_id", pa.string(), nullable=False),
        pa.field("country_code", pa.string(), nullable=False),
        pa.field("year", pa.int32(), nullable=False),
        pa.field("indicator_name", pa.string()),
        pa.field("country_name", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("unit", pa.string()),
        pa.field("obs_status", pa.string()),
        pa.field("decimals", pa.int32()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_last_updated", pa.date32()),
        pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def to_table(
    observations: Iterable[tuple[Observation, dt.date | None]],
    *,
    source: str,
    updated_at: dt.datetime,
) -> pa.Table:
    """Bronze rows from (observation, source last-updated) pairs; unpublished years dropped.

    The API lists a row with ``value: null`` for every year in the range that has no figure
    yet; those are not observations and are left out (a later ingest adds them when published).
    """
    rows = [
        {
            "indicator_id": obs.indicator_id,
            "country_code": obs.country_code,
            "year": obs.year,
            "indicator_name": obs.indicator_name,
            "country_name": obs.country_name,
            "value": obs.value,
            "unit": obs.unit,
            "obs_status": obs.obs_status,
            "decimals": obs.decimals,
            "source": source,
            "source_last_updated": last_updated,
            "updated_at": updated_at,
        }
        for obs, last_updated in observations
        if obs.value is not None
    ]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    keys = {tuple(r[k] for k in KEY) for r in rows}
    if len(keys) != len(rows):
        raise StageError(f"{TABLE}: the fetched rows repeat a key {KEY}; nothing written")
    return table.sort_by([(k, "ascending") for k in KEY])


def latest_state(history: pa.Table | None, *, before: dt.date) -> pa.Table | None:
    """Per key, the row of the newest ingest earlier than ``before`` (the current bronze state)."""
    if history is None:
        return None
    earlier = history.filter(pc.less(history["ingest_date"], pa.scalar(before, pa.date32())))
    if earlier.num_rows == 0:
        return None
    ordered = earlier.sort_by([("ingest_date", "descending"), ("updated_at", "descending")])
    seen: set[tuple[object, ...]] = set()
    keep: list[int] = []
    for i, key in enumerate(zip(*(ordered[k].to_pylist() for k in KEY), strict=True)):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return ordered.take(pa.array(keep, pa.int64()))


def _signature(table: pa.Table) -> dict[tuple[object, ...], tuple[object, ...]]:
    keys = zip(*(table[k].to_pylist() for k in KEY), strict=True)
    values = zip(*(table[c].to_pylist() for c in COMPARED), strict=True)
    return dict(zip(keys, values, strict=True))


def changed_rows(fetched: pa.Table, previous: pa.Table | None) -> pa.Table:
    """The rows of ``fetched`` that are new keys or differ from ``previous`` in COMPARED."""
    if previous is None or previous.num_rows == 0:
        return fetched
    before = _signature(previous)
    mask = [before.get(key) != sig for key, sig in _signature(fetched).items()]
    return fetched.filter(pa.array(mask, pa.bool_()))


def same_content(a: pa.Table, b: pa.Table) -> bool:
    """Whether two ingests hold the same keys with the same compared values."""
    return _signature(a) == _signature(b)


def fetch_all(settings: Settings, end_year: int) -> list[IndicatorSeries]:
    """Every configured indicator; error payloads are collected and reported together."""
    series: list[IndicatorSeries] = []
    rejected: list[str] = []
    with WorldBankClient(
        settings.worldbank_base_url,
        timeout=settings.http_timeout_seconds,
        retries=settings.http_retries,
        backoff=settings.http_backoff_seconds,
    ) as client:
        for code in settings.worldbank_indicators:
            try:
                one = client.fetch_indicator(
                    settings.worldbank_country, code, settings.worldbank_start_year, end_year
                )
            except ApiErrorPayload as exc:
                rejected.append(str(exc))
                continue
            log.info("World Bank %s: %d observations", code, len(one.observations))
            series.append(one)
    if rejected:
        raise WorldBankError(" | ".join(rejected))
    return series


def _keep_or_seed(settings: Settings, exc: ApiUnreachable, history: pa.Table | None) -> None:
    if history is not None:
        last = max(history["ingest_date"].to_pylist())
        origin = (
            "" if API_SOURCE in set(history["source"].to_pylist()) else ", the bundled snapshot"
        )
        log.warning(
            "%s - keeping the last successful ingest of %s (ingest_date=%s%s)",
            exc,
            TABLE,
            last,
            origin,
        )
        return
    snap = snapshot.load_snapshot(settings.worldbank_country, settings.worldbank_indicators)
    if snap is None or not snap.observations:
        raise StageError(
            f"{exc}; bronze has no earlier {TABLE} and no bundled snapshot covers country "
            f"{settings.worldbank_country!r} with the configured indicators: run the stage "
            "again once the API is reachable"
        )
    data = to_table(
        ((obs, snap.compiled_on) for obs in snap.observations),
        source=snapshot.SOURCE,
        updated_at=bronze_io.ingest_stamp(settings),
    )
    bronze_io.write(settings, TABLE, settings.business_date, data)
    log.warning(
        "%s - no earlier ingest of %s: seeded it from the bundled snapshot compiled on %s "
        "(%d rows; replaced by live values once the API is reachable)",
        exc,
        TABLE,
        snap.compiled_on,
        data.num_rows,
    )


def run(settings: Settings) -> None:
    """Stage ``ingest-worldbank`` (see the module docstring for the contract)."""
    today = settings.business_date
    history = bronze_io.read_ingests(settings, TABLE)
    try:
        series = fetch_all(settings, end_year=today.year)
    except ApiUnreachable as exc:
        _keep_or_seed(settings, exc, history)
        return
    except WorldBankError as exc:
        raise StageError(f"{exc} - nothing written to bronze {TABLE}") from None

    fetched = to_table(
        ((obs, s.last_updated) for s in series for obs in s.observations),
        source=API_SOURCE,
        updated_at=bronze_io.ingest_stamp(settings),
    )
    delta = changed_rows(fetched, latest_state(history, before=today))
    already = None
    if history is not None:
        already = history.filter(pc.equal(history["ingest_date"], pa.scalar(today, pa.date32())))
    if already is not None and already.num_rows and same_content(delta, already):
        log.info(
            "%s: ingest %s already holds these %d changes; nothing written",
            TABLE,
            today,
            delta.num_rows,
        )
        return
    if delta.num_rows == 0:
        log.info(
            "%s: no new years or revised values among %d observations; nothing written",
            TABLE,
            fetched.num_rows,
        )
        return
    bronze_io.write(settings, TABLE, today, delta)
    log.info(
        "%s: wrote %d new or revised rows (of %d fetched) as ingest_date=%s",
        TABLE,
        delta.num_rows,
        fetched.num_rows,
        today,
    )

"""ingest-worldbank end to end against a local server replaying recorded API responses.

The client is the real one (httpx, retries, pagination); bronze is the real store in a temp
folder. Fixtures under fixtures/worldbank/ follow the API's documented shapes.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from smepulse.errors import StageError
from smepulse.external import worldbank
from smepulse.external.bronze_io import read_ingests
from tests.integration.external.conftest import Replay, make_settings

pytestmark = pytest.mark.integration

GDP, CPI = "NY.GDP.MKTP.CD", "FP.CPI.TOTL.ZG"
DAY = dt.date(2025, 8, 1)


def _partitions(home: Path) -> list[str]:
    base = home / "bronze" / worldbank.TABLE
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def _rows(home: Path, day: dt.date) -> list[dict[str, object]]:
    path = home / "bronze" / worldbank.TABLE / f"ingest_date={day}" / "part-00000.parquet"
    rows: list[dict[str, object]] = pq.read_table(path).to_pylist()
    return rows


def test_pagination_reads_every_page_and_drops_unpublished_years(
    replay: Replay, tmp_path: Path
) -> None:
    replay.add(GDP, 1, fixture=f"{GDP}_page1.json")
    replay.add(GDP, 2, fixture=f"{GDP}_page2.json")
    worldbank.run(make_settings(tmp_path, replay.base_url, [GDP], DAY))

    assert replay.pages_requested(GDP) == ["1", "2"]
    path, query = replay.requests[0]
    assert path == f"/v2/country/VN/indicator/{GDP}"
    assert query["format"] == "json" and query["date"] == "2014:2025"
    rows = _rows(tmp_path, DAY)
    # 11 rows over two pages, one of them (2024) not published yet.
    assert sorted(int(str(r["year"])) for r in rows) == list(range(2014, 2024))
    gdp_2023 = next(r for r in rows if r["year"] == 2023)
    assert gdp_2023["value"] == pytest.approx(429716969084.87)
    assert gdp_2023["source"] == "worldbank-api"
    assert gdp_2023["source_last_updated"] == dt.date(2025, 7, 1)


def test_retries_a_5xx_then_succeeds(replay: Replay, tmp_path: Path) -> None:
    replay.add(CPI, body=b"<html>503 Service Unavailable</html>", status=503)
    replay.add(CPI, fixture=f"{CPI}.json")
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], DAY))

    assert replay.pages_requested(CPI) == ["1", "1"]
    assert len(_rows(tmp_path, DAY)) == 10


def test_retries_a_timeout_then_succeeds(replay: Replay, tmp_path: Path) -> None:
    replay.add(CPI, fixture=f"{CPI}.json", delay=1.5)  # longer than the 0.5 s timeout
    replay.add(CPI, fixture=f"{CPI}.json")
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], DAY))

    assert len(replay.pages_requested(CPI)) == 2
    assert len(_rows(tmp_path, DAY)) == 10


def test_error_payload_names_the_indicator_and_writes_nothing(
    replay: Replay, tmp_path: Path
) -> None:
    replay.add(CPI, fixture=f"{CPI}.json")
    replay.add("XX.NOT.REAL", fixture="error_invalid_value.json")
    settings = make_settings(tmp_path, replay.base_url, [CPI, "XX.NOT.REAL"], DAY)

    with pytest.raises(StageError) as err:
        worldbank.run(settings)
    message = str(err.value)
    assert "'XX.NOT.REAL'" in message
    assert "120 Invalid value: The provided parameter value is not valid" in message
    assert "nothing written" in message
    assert _partitions(tmp_path) == []
    assert len(replay.pages_requested("XX.NOT.REAL")) == 1  # not retried: it cannot get better


def test_malformed_body_is_rejected_without_writing_bronze(replay: Replay, tmp_path: Path) -> None:
    replay.add(CPI, fixture=f"{CPI}.json")
    replay.add("SL.UEM.TOTL.ZS", fixture="truncated.json")
    settings = make_settings(tmp_path, replay.base_url, [CPI, "SL.UEM.TOTL.ZS"], DAY)

    with pytest.raises(
        StageError, match=r"malformed response for indicator 'SL.UEM.TOTL.ZS'.*not JSON"
    ):
        worldbank.run(settings)
    assert _partitions(tmp_path) == []


def test_rerun_is_idempotent_and_later_runs_write_only_changes(
    replay: Replay, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replay.add(CPI, fixture=f"{CPI}.json")
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], DAY))
    first = tmp_path / "bronze" / worldbank.TABLE / f"ingest_date={DAY}" / "part-00000.parquet"
    stamp = first.stat().st_mtime_ns

    # Same day again, and the next month with the same release: nothing is written.
    caplog.set_level(logging.INFO, logger="smepulse.external.worldbank")
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], DAY))
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], DAY + dt.timedelta(days=31)))
    assert first.stat().st_mtime_ns == stamp
    assert _partitions(tmp_path) == [f"ingest_date={DAY}"]
    assert "no new years or revised values" in caplog.text

    # A new release revises 2023 and publishes 2024: only those two rows are ingested.
    replay.reset()
    replay.add(CPI, fixture=f"{CPI}_revised.json")
    later = DAY + dt.timedelta(days=62)
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], later))
    changed = {(r["year"], r["value"]) for r in _rows(tmp_path, later)}
    assert changed == {(2023, 3.26), (2024, 3.63)}

    # The ingests together give the full, current series (what silver reads).
    history = read_ingests(make_settings(tmp_path, replay.base_url, [CPI], later), worldbank.TABLE)
    state = worldbank.latest_state(history, before=later + dt.timedelta(days=1))
    assert state is not None
    current = {r["year"]: r["value"] for r in state.to_pylist()}
    assert current[2023] == 3.26 and current[2022] == 3.16 and len(current) == 11


def test_unreachable_api_seeds_the_snapshot_then_keeps_the_last_ingest(
    closed_port_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="smepulse.external.worldbank")
    settings = make_settings(tmp_path, closed_port_url, [GDP, CPI], DAY)
    worldbank.run(settings)

    rows = _rows(tmp_path, DAY)
    assert {r["indicator_id"] for r in rows} == {GDP, CPI}
    assert {r["source"] for r in rows} == {"bundled-snapshot"}
    line = caplog.records[-1].getMessage()
    assert f"unreachable at {closed_port_url}/country/VN/indicator/{GDP}" in line
    assert "ConnectError" in line and "bundled snapshot" in line

    caplog.clear()
    worldbank.run(make_settings(tmp_path, closed_port_url, [GDP, CPI], DAY + dt.timedelta(days=31)))
    assert _partitions(tmp_path) == [f"ingest_date={DAY}"]
    assert (
        f"keeping the last successful ingest of {worldbank.TABLE} (ingest_date={DAY}" in caplog.text
    )


def test_persistent_5xx_counts_as_unreachable_and_keeps_bronze(
    replay: Replay, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replay.add(CPI, fixture=f"{CPI}.json")
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], DAY))

    replay.reset()
    replay.add(CPI, body=b"upstream down", status=502)
    caplog.set_level(logging.WARNING, logger="smepulse.external.worldbank")
    worldbank.run(make_settings(tmp_path, replay.base_url, [CPI], DAY + dt.timedelta(days=31)))

    assert len(replay.pages_requested(CPI)) == 3  # 1 + http_retries
    assert "HTTP 502 (after 3 attempt(s))" in caplog.text
    assert _partitions(tmp_path) == [f"ingest_date={DAY}"]

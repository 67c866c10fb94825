"""The incremental logic of ingest-worldbank: bronze rows, current state, changed rows."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from smepulse.errors import StageError
from smepulse.external import snapshot
from smepulse.external.worldbank import (
    SCHEMA,
    changed_rows,
    latest_state,
    same_content,
    to_table,
)
from smepulse.external.worldbank_api import Observation

pytestmark = pytest.mark.unit

NOW = dt.datetime(2025, 8, 1, 3, 0, tzinfo=dt.UTC)
RELEASE = dt.date(2025, 7, 1)


def _obs(
    year: int, value: float | None, indicator: str = "FP.CPI.TOTL.ZG", status: str = ""
) -> Observation:
    return Observation(indicator, "Inflation", "VN", "Viet Nam", year, value, "", status, 1)


def _table(values: dict[int, float | None]) -> pa.Table:
    return to_table(
        ((_obs(y, v), RELEASE) for y, v in values.items()), source="worldbank-api", updated_at=NOW
    )


def _history(*ingests: tuple[dt.date, pa.Table]) -> pa.Table:
    parts = [
        t.append_column("ingest_date", pa.array([d] * t.num_rows, pa.date32())) for d, t in ingests
    ]
    return pa.concat_tables(parts)


def test_to_table_drops_unpublished_years_and_types_columns() -> None:
    table = _table({2024: None, 2023: 3.25, 2022: 3.16})
    assert table.schema == SCHEMA
    assert table["year"].to_pylist() == [2022, 2023]  # sorted by key, 2024 (null) dropped
    assert table["source_last_updated"].to_pylist() == [RELEASE, RELEASE]


def test_to_table_rejects_repeated_keys() -> None:
    with pytest.raises(StageError, match="repeat a key"):
        to_table(
            [(_obs(2023, 1.0), RELEASE), (_obs(2023, 2.0), RELEASE)], source="x", updated_at=NOW
        )


def test_latest_state_takes_the_newest_earlier_ingest_per_key() -> None:
    d1, d2, d3 = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)
    history = _history(
        (d1, _table({2022: 3.0, 2023: 3.1})), (d2, _table({2023: 3.2})), (d3, _table({2023: 9.9}))
    )
    state = latest_state(history, before=d3)  # d3 is "today": not part of the earlier state
    assert state is not None
    assert {r["year"]: r["value"] for r in state.to_pylist()} == {2022: 3.0, 2023: 3.2}
    assert latest_state(history, before=d1) is None
    assert latest_state(None, before=d1) is None


def test_changed_rows_are_new_years_and_revisions_only() -> None:
    previous = _table({2021: 1.83, 2022: 3.16, 2023: 3.25})
    fetched = _table({2021: 1.83, 2022: 3.16, 2023: 3.26, 2024: 3.63})
    delta = changed_rows(fetched, previous)
    assert {r["year"]: r["value"] for r in delta.to_pylist()} == {2023: 3.26, 2024: 3.63}
    assert changed_rows(previous, previous).num_rows == 0
    assert changed_rows(fetched, None).num_rows == 4


def test_a_status_change_is_a_revision() -> None:
    previous = to_table([(_obs(2023, 3.25), RELEASE)], source="worldbank-api", updated_at=NOW)
    fetched = to_table(
        [(_obs(2023, 3.25, status="E"), RELEASE)], source="worldbank-api", updated_at=NOW
    )
    assert changed_rows(fetched, previous).num_rows == 1


def test_same_content_ignores_ingest_time() -> None:
    a = _table({2023: 3.25})
    b = to_table(
        [(_obs(2023, 3.25), RELEASE)], source="worldbank-api", updated_at=NOW + dt.timedelta(days=1)
    )
    assert same_content(a, b)
    assert not same_content(a, _table({2023: 3.26}))


def test_bundled_snapshot_covers_the_default_indicators_and_is_dated() -> None:
    defaults = [
        "NY.GDP.MKTP.CD",
        "NY.GDP.MKTP.KD.ZG",
        "FP.CPI.TOTL.ZG",
        "SL.UEM.TOTL.ZS",
        "FR.INR.LEND",
        "PA.NUS.FCRF",
    ]
    snap = snapshot.load_snapshot("vn", defaults)
    assert snap is not None
    assert {o.indicator_id for o in snap.observations} == set(defaults)
    assert isinstance(snap.compiled_on, dt.date)
    assert "offline fallback" in snap.note.lower()
    assert all(o.country_code == "VN" and o.value is not None for o in snap.observations)
    only_cpi = snapshot.load_snapshot("VN", ["fp.cpi.totl.zg"])
    assert only_cpi is not None and {o.indicator_id for o in only_cpi.observations} == {
        "FP.CPI.TOTL.ZG"
    }
    assert snapshot.load_snapshot("TH", defaults) is None

"""ingest-provinces' tables, built from the installed packages' data (no I/O beyond reading it)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from smepulse.external import legacy_map
from smepulse.external.provinces import build_tables, to_ascii

pytestmark = pytest.mark.unit

NOW = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    built: dict[str, pa.Table] = build_tables(NOW)
    return built


def test_to_ascii_strips_marks_and_d_stroke() -> None:
    assert to_ascii("Thành phố Hồ Chí Minh") == "Thanh pho Ho Chi Minh"
    assert to_ascii("Đắk Lắk") == "Dak Lak"
    assert to_ascii("Phường Đống Đa") == "Phuong Dong Da"


def test_provinces_are_the_34_since_2025_keyed_by_contract_codes(
    tables: dict[str, pa.Table],
) -> None:
    rows = {r["province_code"]: r for r in tables["ext_provinces"].to_pylist()}
    assert len(rows) == 34
    assert rows["1"]["province_short_name"] == "Hà Nội"
    assert rows["79"]["province_name_ascii"] == "Ho Chi Minh"
    assert rows["79"]["province_type"] == "municipality"
    assert rows["4"]["province_type"] == "province"
    assert sum(r["province_type"] == "municipality" for r in rows.values()) == 6
    assert all(not code.startswith("0") for code in rows)


def test_wards_belong_to_known_provinces(tables: dict[str, pa.Table]) -> None:
    wards = tables["ext_wards"].to_pylist()
    provinces = set(tables["ext_provinces"]["province_code"].to_pylist())
    assert len(wards) > 3000
    assert {w["province_code"] for w in wards} == provinces
    assert {w["ward_type"] for w in wards} == {"ward", "commune", "special_zone"}
    hoan_kiem = next(w for w in wards if w["ward_codename"] == "phuong_hoan_kiem")
    assert hoan_kiem["province_code"] == "1" and hoan_kiem["ward_name_ascii"] == "Phuong Hoan Kiem"


def test_legacy_map_resolves_every_former_province(tables: dict[str, pa.Table]) -> None:
    mapping = {r["legacy_province_code"]: r for r in tables["ext_province_legacy_map"].to_pylist()}
    assert len(mapping) == 63
    assert mapping["2"]["legacy_province_name"] == "Tỉnh Hà Giang"
    assert mapping["2"]["province_code"] == "8"  # Hà Giang -> Tuyên Quang
    assert mapping["77"]["province_code"] == "79"  # Bà Rịa - Vũng Tàu -> Hồ Chí Minh City
    assert mapping["74"]["province_code"] == "79"  # Bình Dương -> Hồ Chí Minh City
    assert mapping["27"]["province_code"] == "24"  # Bắc Ninh -> Bắc Ninh (code of Bắc Giang)
    assert mapping["1"]["province_code"] == "1"
    assert mapping["2"]["source"].startswith("vietnamadminunits==")


def test_legacy_map_check_rejects_a_map_that_disagrees_with_vietnam_provinces() -> None:
    current = {"1", "8"}
    with pytest.raises(legacy_map.LegacyMapError, match="unknown to vietnam-provinces"):
        legacy_map.load_legacy_map(current)

"""Stage ``ingest-provinces``: Vietnam's administrative divisions into bronze.

Source: the ``vietnam-provinces`` package (the map in force since 1 July 2025: 34 provinces
and their wards, no districts) and, for the former 63 provinces, ``vietnamadminunits``
(:mod:`.legacy_map`). Codes are the package's numeric codes written as text without leading
zeros, as in the bronze contract ("1" Hà Nội, "79" Hồ Chí Minh City).

Bronze tables (each ingest is a complete snapshot; silver reads the newest ingest):

* ``ext_provinces``: province_code, province_name, province_short_name,
  province_name_ascii, province_codename, province_type (municipality/province), phone_code
  INT32, source, updated_at TIMESTAMP UTC.
* ``ext_wards``: ward_code, ward_name, ward_name_ascii, ward_codename, province_code,
  ward_type (ward/commune/special_zone), source, updated_at.
* ``ext_province_legacy_map``: legacy_province_code, legacy_province_name, province_code,
  source, updated_at.

A table whose content (all columns but ``updated_at``) equals its newest ingest is not
written again, so re-running the stage is a no-op until a package upgrade changes the data.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smepulse.errors import StageError
from smepulse.external import bronze_io, legacy_map
from smepulse.settings import Settings

log = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")
PROVINCES_SCHEMA = pa.schema(
    [
        pa.field("province_code", pa.string(), nullable=False),
        ("province_name", pa.string()),
        ("province_short_name", pa.string()),
        ("province_name_ascii", pa.string()),
        ("province_codename", pa.string()),
        ("province_type", pa.string()),
        ("phone_code", pa.int32()),
        ("source", pa.string()),
        pa.field("updated_at", _TS, nullable=False),
    ]
)
WARDS_SCHEMA = pa.schema(
    [
        pa.field("ward_code", pa.string(), nullable=False),
        ("ward_name", pa.string()),
        ("ward_name_ascii", pa.string()),
        ("ward_codename", pa.string()),
        pa.field("province_code", pa.string(), nullable=False),
        ("ward_type", pa.string()),
        ("source", pa.string()),
        pa.field("updated_at", _TS, nullable=False),
    ]
)
LEGACY_SCHEMA = pa.schema(
    [
        pa.field("legacy_province_code", pa.string(), nullable=False),
        ("legacy_province_name", pa.string()),
        pa.field("province_code", pa.string(), nullable=False),
        ("source", pa.string()),
        pa.field("updated_at", _TS, nullable=False),
    ]
)
KEYS = {
    "ext_provinces": "province_code",
    "ext_wards": "ward_code",
    "ext_province_legacy_map": "legacy_province_code",
}

_PROVINCE_TYPES = {"thành phố trung ương": "municipality", "tỉnh": "province"}
_WARD_TYPES = {"phường": "ward", "xã": "commune", "đặc khu": "special_zone"}
_CITY_PREFIX = "Thành phố "


def to_ascii(text: str) -> str:
    """Vietnamese text without diacritics ("Thành phố Hồ Chí Minh" -> "Thanh pho Ho Chi Minh")."""
    # NFD splits letters from their tone/vowel marks; đ/Đ are letters of their own, not marks.
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _enum_value(member: Any) -> str:
    return str(getattr(member, "value", member))


def provinces_rows(source: str, updated_at: dt.datetime) -> list[dict[str, Any]]:
    """One row per current province, from ``vietnam-provinces``."""
    from vietnam_provinces import Province

    rows = []
    for p in Province.iter_all():
        kind = _enum_value(p.division_type)
        if kind not in _PROVINCE_TYPES:
            raise StageError(f"vietnam-provinces: province {p.name!r} has unknown type {kind!r}")
        short = p.name.removeprefix(_CITY_PREFIX)
        rows.append(
            {
                "province_code": str(int(p.code)),
                "province_name": p.name,
                "province_short_name": short,
                "province_name_ascii": to_ascii(short),
                "province_codename": p.codename,
                "province_type": _PROVINCE_TYPES[kind],
                "phone_code": int(p.phone_code),
                "source": source,
                "updated_at": updated_at,
            }
        )
    return rows


def wards_rows(source: str, updated_at: dt.datetime) -> list[dict[str, Any]]:
    """One row per current ward/commune/special zone, from ``vietnam-provinces``."""
    from vietnam_provinces import Ward

    rows = []
    for w in Ward.iter_all():
        kind = _enum_value(w.division_type)
        if kind not in _WARD_TYPES:
            raise StageError(f"vietnam-provinces: ward {w.name!r} has unknown type {kind!r}")
        rows.append(
            {
                "ward_code": str(int(w.code)),
                "ward_name": w.name,
                "ward_name_ascii": to_ascii(w.name),
                "ward_codename": w.codename,
                "province_code": str(int(w.province_code)),
                "ward_type": _WARD_TYPES[kind],
                "source": source,
                "updated_at": updated_at,
            }
        )
    return rows


def legacy_rows(current_codes: set[str], updated_at: dt.datetime) -> list[dict[str, Any]]:
    """The 63 former provinces and the current province each belongs to."""
    try:
        mapping = legacy_map.load_legacy_map(current_codes)
        source = legacy_map.source_label()
    except legacy_map.LegacyMapError as exc:
        raise StageError(f"ext_province_legacy_map: {exc}") from None
    return [
        {
            "legacy_province_code": m.legacy_province_code,
            "legacy_province_name": m.legacy_province_name,
            "province_code": m.province_code,
            "source": source,
            "updated_at": updated_at,
        }
        for m in mapping
    ]


def build_tables(updated_at: dt.datetime) -> dict[str, pa.Table]:
    """The three bronze tables, keyed by name, each checked for unique keys."""
    import vietnam_provinces

    source = f"vietnam-provinces=={vietnam_provinces.__version__} (data {vietnam_provinces.__data_version__})"
    provinces = pa.Table.from_pylist(provinces_rows(source, updated_at), schema=PROVINCES_SCHEMA)
    current = set(provinces["province_code"].to_pylist())
    tables = {
        "ext_provinces": provinces,
        "ext_wards": pa.Table.from_pylist(wards_rows(source, updated_at), schema=WARDS_SCHEMA),
        "ext_province_legacy_map": pa.Table.from_pylist(
            legacy_rows(current, updated_at), schema=LEGACY_SCHEMA
        ),
    }
    for name, table in tables.items():
        key = KEYS[name]
        if pc.count_distinct(table[key]).as_py() != table.num_rows:
            raise StageError(f"{name}: duplicate {key} in the source package data; nothing written")
    orphans = set(tables["ext_wards"]["province_code"].to_pylist()) - current
    if orphans:
        raise StageError(f"ext_wards: wards reference unknown provinces {sorted(orphans)}")
    return tables


def _content(table: pa.Table, key: str) -> list[dict[str, Any]]:
    cols = [c for c in table.column_names if c not in ("updated_at", "ingest_date")]
    rows: list[dict[str, Any]] = table.select(cols).sort_by(key).to_pylist()
    return rows


def _newest_ingest(history: pa.Table | None) -> pa.Table | None:
    if history is None:
        return None
    newest = pc.max(history["ingest_date"])
    return history.filter(pc.equal(history["ingest_date"], newest))


def run(settings: Settings) -> None:
    """Stage ``ingest-provinces`` (see the module docstring for the contract)."""
    today = settings.business_date
    tables = build_tables(bronze_io.ingest_stamp(settings))
    for name, table in tables.items():
        key = KEYS[name]
        newest = _newest_ingest(bronze_io.read_ingests(settings, name))
        if newest is not None and _content(newest, key) == _content(table, key):
            log.info(
                "%s: unchanged since its newest ingest (%d rows); nothing written",
                name,
                table.num_rows,
            )
            continue
        bronze_io.write(settings, name, today, table)
        log.info("%s: wrote %d rows as ingest_date=%s", name, table.num_rows, today)

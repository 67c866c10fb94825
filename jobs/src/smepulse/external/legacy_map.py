"""The mapping from Vietnam's former 63 provinces to the 34 in force since 2025.

``vietnam-provinces`` ships only the new map. The PyPI package ``vietnamadminunits`` (MIT)
ships the merger of Resolution 202/2025/QH15 as data: ``data/converter_2025.json``
(``DICT_PROVINCE``: new province key -> former province keys) and ``data/dataset.db`` (SQLite:
``admin_units_legacy`` and ``admin_units`` with each province's key, name and GSO code). We read
those two files directly instead of importing the package, whose import pulls in shapely and
geopy for its address parser, which we do not use.

Every province was merged whole, so the mapping is a function former code -> new code. The
GSO gave each new province the code of one of its members, and that member's former code maps
to itself; :func:`load_legacy_map` checks this, and that every new code exists in
``vietnam-provinces``, so a code means the same province whichever map it was written under.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "vietnamadminunits"


class LegacyMapError(Exception):
    """The package is missing or its data does not have the expected content."""


@dataclass(frozen=True)
class LegacyProvince:
    legacy_province_code: str  # former GSO code as text, without leading zeros ("2" Hà Giang)
    legacy_province_name: str  # e.g. "Tỉnh Hà Giang"
    province_code: str  # the current (vietnam-provinces) code it now belongs to


def _data_dir() -> tuple[Path, str]:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LegacyMapError(
            f"the Python package {PACKAGE!r} is not installed; it ships the 63 -> 34 province "
            f"mapping (pip install {PACKAGE})"
        )
    version = importlib.metadata.version(PACKAGE)
    return Path(next(iter(spec.submodule_search_locations))) / "data", version


def source_label() -> str:
    """``vietnamadminunits==X.Y.Z``, recorded in bronze beside the rows."""
    return f"{PACKAGE}=={_data_dir()[1]}"


def load_legacy_map(current_codes: set[str]) -> list[LegacyProvince]:
    """The 63 former provinces with their current code; checked against ``current_codes``."""
    data, version = _data_dir()
    where = f"{PACKAGE} {version} ({data})"
    try:
        merger: dict[str, list[str]] = json.loads(
            (data / "converter_2025.json").read_text(encoding="utf-8")
        )["DICT_PROVINCE"]
        con = sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True)
        try:
            new_codes = dict(
                con.execute("select distinct provinceKey, provinceCode from admin_units").fetchall()
            )
            former = con.execute(
                "select distinct provinceKey, provinceCode, province from admin_units_legacy"
            ).fetchall()
        finally:
            con.close()
    except (OSError, KeyError, ValueError, sqlite3.Error) as exc:
        raise LegacyMapError(f"cannot read the province merger from {where}: {exc}") from None

    new_of = {old_key: new_key for new_key, olds in merger.items() for old_key in olds}
    rows: list[LegacyProvince] = []
    for key, code, name in former:
        if key not in new_of or new_of[key] not in new_codes:
            raise LegacyMapError(f"{where}: former province {name!r} ({key}) has no new province")
        rows.append(
            LegacyProvince(
                legacy_province_code=str(int(code)),
                legacy_province_name=str(name),
                province_code=str(int(new_codes[new_of[key]])),
            )
        )
    rows.sort(key=lambda r: int(r.legacy_province_code))
    _check(rows, current_codes, where)
    return rows


def _check(rows: list[LegacyProvince], current_codes: set[str], where: str) -> None:
    codes = [r.legacy_province_code for r in rows]
    if len(rows) != 63 or len(set(codes)) != 63:
        raise LegacyMapError(
            f"{where}: expected 63 distinct former provinces, got {len(set(codes))}"
        )
    targets = {r.province_code for r in rows}
    if targets != current_codes:
        raise LegacyMapError(
            f"{where}: the new province codes {sorted(targets - current_codes)} are unknown to "
            f"vietnam-provinces, or {sorted(current_codes - targets)} have no former province"
        )
    for r in rows:
        if r.legacy_province_code in current_codes and r.legacy_province_code != r.province_code:
            raise LegacyMapError(
                f"{where}: former code {r.legacy_province_code} ({r.legacy_province_name}) maps "
                f"to {r.province_code}, but {r.legacy_province_code} is also a current code"
            )

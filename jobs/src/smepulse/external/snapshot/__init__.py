"""The bundled World Bank snapshot: the offline fallback of ``ingest-worldbank``.

``worldbank_<COUNTRY>.json`` (package data) holds a few years of the default indicators for one
country, with a ``snapshot`` header naming its source and the date it was compiled. It is read
only when the API cannot be reached *and* bronze has no earlier ingest, so that a fresh,
offline machine (``smepulse demo``) still gets a macro-indicator table. Rows seeded from it are
marked ``source = 'bundled-snapshot'`` with ``source_last_updated`` = the compile date.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from importlib import resources

from smepulse.external.worldbank_api import Observation

SOURCE = "bundled-snapshot"


class SnapshotError(Exception):
    """The bundled file is missing a field or holds a bad value (a packaging bug)."""


@dataclass(frozen=True)
class Snapshot:
    compiled_on: dt.date
    country_code: str
    note: str
    observations: list[Observation]


def available(country: str) -> bool:
    """Whether a snapshot ships for ``country`` (ISO2 code, as in the settings)."""
    return resources.files(__name__).joinpath(f"worldbank_{country.upper()}.json").is_file()


def load_snapshot(country: str, indicators: list[str]) -> Snapshot | None:
    """The snapshot's observations of ``indicators`` for ``country``; None if none ships."""
    if not available(country):
        return None
    name = f"worldbank_{country.upper()}.json"
    doc = json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))
    try:
        head = doc["snapshot"]
        compiled_on = dt.date.fromisoformat(head["compiled_on"])
        wanted = {code.upper() for code in indicators}
        observations = [
            Observation(
                indicator_id=series["indicator_id"],
                indicator_name=series["indicator_name"],
                country_code=head["country_code"],
                country_name=head["country_name"],
                year=int(year),
                value=float(value),
                unit=series.get("unit", ""),
                obs_status="",
                decimals=series.get("decimals"),
            )
            for series in doc["indicators"]
            if series["indicator_id"].upper() in wanted
            for year, value in sorted(series["values"].items())
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"bundled snapshot {name} is malformed: {exc!r}") from None
    return Snapshot(compiled_on, head["country_code"], head.get("note", ""), observations)

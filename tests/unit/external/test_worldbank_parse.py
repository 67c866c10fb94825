"""parse_page: the documented response shapes, the error document, and what is rejected."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from smepulse.external.worldbank_api import ApiErrorPayload, MalformedResponse, parse_page

pytestmark = pytest.mark.unit

IND = "FP.CPI.TOTL.ZG"
URL = "http://wb.test/v2/country/VN/indicator/FP.CPI.TOTL.ZG page 1"


def _row(year: str = "2023", value: Any = 3.25, indicator: str = IND) -> dict[str, Any]:
    return {
        "indicator": {"id": indicator, "value": "Inflation, consumer prices (annual %)"},
        "country": {"id": "VN", "value": "Viet Nam"},
        "countryiso3code": "VNM",
        "date": year,
        "value": value,
        "unit": "",
        "obs_status": "",
        "decimal": 1,
    }


def _body(rows: Any, **paging: Any) -> str:
    head = {"page": 1, "pages": 1, "per_page": 50, "total": 1, "lastupdated": "2025-07-01"}
    head.update(paging)
    return json.dumps([head, rows])


def test_parses_paging_and_rows() -> None:
    page = parse_page(_body([_row(), _row("2022", None)], total=2), IND, URL)
    assert (page.page, page.pages, page.total) == (1, 1, 2)
    assert page.last_updated == dt.date(2025, 7, 1)
    first, second = page.rows
    assert (first.indicator_id, first.country_code, first.year, first.value) == (
        IND,
        "VN",
        2023,
        3.25,
    )
    assert first.country_name == "Viet Nam" and first.decimals == 1
    assert second.value is None  # unpublished year: kept by the parser, dropped by the stage


def test_accepts_paging_numbers_sent_as_strings_and_null_rows() -> None:
    page = parse_page(_body(None, page="1", pages="0", per_page="50", total="0"), IND, URL)
    assert page.rows == [] and page.pages == 0 and page.total == 0


def test_error_document_names_the_indicator_and_the_api_message() -> None:
    body = json.dumps(
        [
            {
                "message": [
                    {
                        "id": "120",
                        "key": "Invalid value",
                        "value": "The provided parameter value is not valid",
                    }
                ]
            }
        ]
    )
    with pytest.raises(ApiErrorPayload) as err:
        parse_page(body, "XX.BAD", URL)
    assert err.value.indicator == "XX.BAD"
    assert "'XX.BAD'" in str(err.value)
    assert "120 Invalid value: The provided parameter value is not valid" in str(err.value)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html>Bad gateway</html>", "not JSON"),
        ('[{"page":1,"pages":1', "not JSON"),
        (json.dumps({"page": 1}), "expected a JSON array"),
        (json.dumps([{"page": 1, "pages": 1, "total": 1}]), "2-element array"),
        (_body([_row()], pages="many"), "'pages' is not a number"),
        (_body({"rows": []}), "not an array"),
        (_body([_row(indicator="NY.GDP.MKTP.CD")]), "belongs to indicator 'NY.GDP.MKTP.CD'"),
        (_body([_row(year="2023Q1")]), "only yearly data"),
        (_body([_row(value="3.25")]), "non-numeric value"),
        (_body([_row()], lastupdated="July"), "'lastupdated' is not a date"),
        (_body(["not an object"]), "row 0 is not an object"),
    ],
)
def test_rejects_bodies_that_are_not_the_documented_shape(body: str, problem: str) -> None:
    with pytest.raises(MalformedResponse) as err:
        parse_page(body, IND, URL)
    assert problem in str(err.value)
    assert IND in str(err.value) and URL in str(err.value)

"""The contract module and its published document."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from vietnam_provinces import Province

from smepulse.bronze.contract import CONTRACT_VERSION, PROVINCE_CODES, TABLES, contract
from smepulse.bronze.contract_doc import render_markdown
from smepulse.bronze.validate_rules import RULES

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[3] / "docs" / "bronze-contract.md"


def test_published_document_matches_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/bronze-contract.md is stale: run "
        "`python -m smepulse.bronze.contract_doc docs/bronze-contract.md`"
    )


def test_document_names_every_table_column_and_rule() -> None:
    text = render_markdown()
    assert f"version {CONTRACT_VERSION}" in text
    for c in TABLES.values():
        assert f"### `{c.name}`" in text
        for col in c.columns:
            assert f"| `{col.name}` |" in text
    for rule in RULES:
        assert f"| `{rule}` |" in text


def test_design_types() -> None:
    for c in TABLES.values():
        for col in c.columns:
            name, t = col.name, col.type
            if name.endswith("_vnd"):
                assert t == pa.decimal128(18, 0), name
            elif name.endswith("_days") or name == "line_no":
                assert t == pa.int32(), name
            elif name.endswith("_date"):
                assert t == pa.date32(), name
            elif name.endswith("_at"):
                assert t == pa.timestamp("us", tz="UTC"), name
            elif name == "quantity":
                assert t == pa.decimal128(18, 3)
            elif name == "vat_rate":
                assert t == pa.decimal128(5, 4)
            elif name == "is_active":
                assert t == pa.bool_()
            else:
                assert t == pa.string(), name
        assert c.columns[0].name == c.key[0], "the key comes first"
        for fk in c.foreign_keys:
            assert fk.parent_column in contract(fk.parent).key


def test_province_codes_come_from_vietnam_provinces() -> None:
    assert set(PROVINCE_CODES) == {str(int(p.code)) for p in Province.iter_all()}
    assert {"1", "79", "48"} <= set(PROVINCE_CODES)


def test_unknown_table_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="ar_invoices"):
        contract("invoices")

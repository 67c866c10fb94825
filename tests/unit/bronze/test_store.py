"""The local bronze store (the S3 store needs a real S3: see tests/integration/bronze)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from smepulse.bronze.store import LocalStore, open_store, parquet_bytes
from smepulse.settings import Settings

pytestmark = pytest.mark.unit

DAY = dt.date(2025, 6, 30)


def test_write_list_read_delete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bronze")
    data = pa.table({"a": [1, 2, 3]})
    uri = store.write_table("t", DAY, data)
    store.write_table("t", DAY - dt.timedelta(days=7), data, part="part-00001")
    assert uri.endswith("t/ingest_date=2025-06-30/part-00000.parquet")
    files = store.list_files("t")
    assert [(f.ingest_date, Path(f.uri).name) for f in files] == [
        (DAY - dt.timedelta(days=7), "part-00001.parquet"),
        (DAY, "part-00000.parquet"),
    ]
    assert all(f.size > 0 and f.table == "t" for f in files)
    # No ingest_date column is invented from the folder name.
    assert store.read_file(uri).equals(data)
    assert store.tables() == ["t"]
    assert not list((tmp_path / "bronze").rglob(".*"))  # no temporary file left behind
    assert store.delete_table("t") == 2
    assert store.list_files("t") == [] and store.tables() == []


def test_files_outside_the_layout_are_ignored(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_table("t", DAY, pa.table({"a": [1]}))
    (tmp_path / "t" / "stray").mkdir()
    (tmp_path / "t" / "stray" / "x.parquet").write_bytes(b"x")
    (tmp_path / "t" / "ingest_date=2025-06-30" / ".part.tmp").write_bytes(b"x")
    assert len(store.list_files("t")) == 1
    assert store.list_files("missing") == []


def test_parquet_bytes_are_deterministic() -> None:
    data = pa.table({"a": list(range(1000)), "b": ["x"] * 1000})
    assert parquet_bytes(data) == parquet_bytes(data)


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store(Settings(home=tmp_path)), LocalStore)
    s3 = open_store(
        Settings(
            home=tmp_path, bronze_uri="s3://bucket/prefix", s3_endpoint_url="http://127.0.0.1:1"
        )
    )
    assert type(s3).__name__ == "S3Store" and s3.root == "s3://bucket/prefix"

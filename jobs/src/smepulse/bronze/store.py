"""The bronze object store: a local folder or S3, behind one small interface.

Layout (the contract's): ``<root>/<table>/ingest_date=YYYY-MM-DD/<part>.parquet``. Writes are
atomic for readers: the local store writes a hidden temporary file in the target folder and
renames it; S3 makes an object visible only once its PUT completed. Files are written with
fixed Parquet options so the same Arrow table always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from smepulse.settings import Settings

log = logging.getLogger(__name__)

_PARTITION = re.compile(r"^ingest_date=(\d{4}-\d{2}-\d{2})$")
# Fixed writer options: deterministic bytes for a given table (no timestamps are written).
_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "use_dictionary": True,
    "write_statistics": True,
    "row_group_size": 256 * 1024,
}


@dataclass(frozen=True, order=True)
class BronzeFile:
    """One Parquet file of one table's ingest date."""

    table: str
    ingest_date: dt.date
    uri: str
    size: int
    #: Content checksum (local: SHA-256 of the bytes; S3: the object's ETag); validate-bronze
    #: caches clean results by it. Empty when unknown.
    checksum: str = ""


class BronzeStore(Protocol):
    """Where bronze lives. ``uri`` values are what ``read_file`` accepts."""

    root: str

    def write_table(
        self, table: str, ingest_date: dt.date, data: pa.Table, part: str = "part-00000"
    ) -> str:
        """Write ``data`` as ``<table>/ingest_date=<d>/<part>.parquet``; return its URI."""
        ...

    def list_files(self, table: str) -> list[BronzeFile]:
        """The table's Parquet files in the contract layout, sorted by ingest date then URI."""
        ...

    def read_file(self, uri: str, columns: list[str] | None = None) -> pa.Table:
        """Read one file (raises on a corrupt or unreadable file)."""
        ...

    def tables(self) -> list[str]:
        """Names of the table folders present under the root, sorted."""
        ...

    def delete_table(self, table: str) -> int:
        """Remove every file of ``table``; return how many were removed."""
        ...


def parquet_bytes(data: pa.Table) -> bytes:
    """Serialise ``data`` with the store's fixed writer options."""
    sink = io.BytesIO()
    pq.write_table(data, sink, **_WRITE_OPTIONS)
    return sink.getvalue()


def _ingest_date(folder: str) -> dt.date | None:
    match = _PARTITION.match(folder)
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


class LocalStore:
    """Bronze in a local folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(Path(root))
        self._root = Path(root)

    def write_table(
        self, table: str, ingest_date: dt.date, data: pa.Table, part: str = "part-00000"
    ) -> str:
        folder = self._root / table / f"ingest_date={ingest_date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{part}.parquet"
        # A hidden name that does not end in .parquet: globbing readers never pick it up.
        fd, tmp = tempfile.mkstemp(prefix=f".{part}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(parquet_bytes(data))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return str(target)

    def list_files(self, table: str) -> list[BronzeFile]:
        base = self._root / table
        if not base.is_dir():
            return []
        files: list[BronzeFile] = []
        for folder in sorted(base.iterdir()):
            ingest = _ingest_date(folder.name) if folder.is_dir() else None
            if ingest is None:
                log.warning(
                    "ignoring %s: not in the layout <table>/ingest_date=YYYY-MM-DD/", folder
                )
                continue
            for path in sorted(folder.glob("*.parquet")):
                with path.open("rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
                files.append(BronzeFile(table, ingest, str(path), path.stat().st_size, digest))
        return files

    def read_file(self, uri: str, columns: list[str] | None = None) -> pa.Table:
        # ParquetFile, not read_table: no hive-partition discovery adding an ingest_date column.
        with pq.ParquetFile(uri) as handle:
            return handle.read(columns=columns)

    def tables(self) -> list[str]:
        if not self._root.is_dir():
            return []
        return sorted(
            p.name for p in self._root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
        )

    def delete_table(self, table: str) -> int:
        base = self._root / table
        if not base.is_dir():
            return 0
        count = sum(1 for _ in base.rglob("*.parquet"))
        shutil.rmtree(base)
        return count


class S3Store:
    """Bronze in an S3 bucket (MinIO or AWS) through boto3."""

    def __init__(self, uri: str, client: Any) -> None:
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"bronze URI {uri!r} names no bucket (expected s3://bucket/prefix)")
        self.root = uri.rstrip("/")
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._client = client

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self._prefix, *parts) if p)

    def _list(self, prefix: str) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            objects.extend(page.get("Contents", []))
        return objects

    def write_table(
        self, table: str, ingest_date: dt.date, data: pa.Table, part: str = "part-00000"
    ) -> str:
        key = self._key(table, f"ingest_date={ingest_date.isoformat()}", f"{part}.parquet")
        # An S3 object becomes visible only when its PUT completes: no half files.
        self._client.put_object(Bucket=self._bucket, Key=key, Body=parquet_bytes(data))
        return f"s3://{self._bucket}/{key}"

    def list_files(self, table: str) -> list[BronzeFile]:
        prefix = self._key(table) + "/"
        files: list[BronzeFile] = []
        for obj in self._list(prefix):
            rest = obj["Key"][len(prefix) :]
            folder, _, name = rest.partition("/")
            ingest = _ingest_date(folder)
            if ingest is None or "/" in name or not name.endswith(".parquet"):
                log.warning(
                    "ignoring s3://%s/%s: not in the contract layout", self._bucket, obj["Key"]
                )
                continue
            files.append(
                BronzeFile(
                    table,
                    ingest,
                    f"s3://{self._bucket}/{obj['Key']}",
                    int(obj["Size"]),
                    str(obj.get("ETag", "")).strip('"'),
                )
            )
        return sorted(files)

    def read_file(self, uri: str, columns: list[str] | None = None) -> pa.Table:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        with pq.ParquetFile(pa.BufferReader(body)) as handle:
            return handle.read(columns=columns)

    def tables(self) -> list[str]:
        prefix = self._key() + "/" if self._prefix else ""
        names: set[str] = set()
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.add(common["Prefix"][len(prefix) :].strip("/"))
        return sorted(names)

    def delete_table(self, table: str) -> int:
        keys = [obj["Key"] for obj in self._list(self._key(table) + "/")]
        for start in range(0, len(keys), 1000):  # the DeleteObjects limit per call
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._client.delete_objects(
                Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True}
            )
        return sum(1 for k in keys if k.endswith(".parquet"))


def s3_client(settings: Settings, config: Any = None) -> Any:
    """A boto3 S3 client for the configured endpoint and keys (bronze, reports, verify)."""
    import boto3  # only the S3 path needs it

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=(
            settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None
        ),
        aws_secret_access_key=(
            settings.s3_secret_access_key.get_secret_value()
            if settings.s3_secret_access_key
            else None
        ),
        config=config,
    )


def open_store(settings: Settings) -> BronzeStore:
    """The store for ``settings.bronze_root``: S3 for ``s3://`` URIs, a local folder otherwise."""
    if not settings.bronze_is_s3:
        return LocalStore(settings.bronze_root)
    return S3Store(settings.bronze_root, s3_client(settings))

"""pytest fixtures for real services: PostgreSQL, Redis and Trino (session scope).

``scripts/test.sh`` (and so CI) starts Redis and PostgreSQL once and exports their URLs;
when run by hand the fixtures start their own. With ``SMEPULSE_REQUIRE_SERVICES=1`` (CI) a
service that cannot start fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.needs import missing
from tests.services import procs


def _unavailable(reason: str) -> None:
    missing(reason)


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DSN of a real PostgreSQL superuser connection."""
    given = os.environ.get("SMEPULSE_TEST_POSTGRES_DSN")
    if given:
        yield given
        return
    try:
        with procs.postgres(tmp_path_factory.mktemp("postgres")) as dsn:
            yield dsn
    except (procs.ServiceUnavailable, OSError) as exc:
        _unavailable(f"PostgreSQL unavailable: {exc}")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real redis-server (database 0; tests should use their own key prefixes)."""
    given = os.environ.get("SMEPULSE_TEST_REDIS_URL")
    if given:
        yield given
        return
    try:
        with procs.redis(tmp_path_factory.mktemp("redis")) as url:
            yield url
    except (procs.ServiceUnavailable, OSError) as exc:
        _unavailable(f"Redis unavailable: {exc}")


@pytest.fixture(scope="session")
def trino_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str
) -> Iterator[procs.TrinoServer]:
    """A single-node Trino 476 (Iceberg on a PostgreSQL JDBC catalog, Hive for bronze)."""
    work: Path = tmp_path_factory.mktemp("trino")
    try:
        with procs.trino(work, postgres_dsn, work / "lake") as server:
            yield server
    except procs.ServiceUnavailable as exc:
        _unavailable(f"Trino unavailable: {exc}")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.S3Endpoint]:
    """A real S3 server (MinIO) with root credentials; tests create their own buckets."""
    try:
        with procs.minio(tmp_path_factory.mktemp("minio")) as endpoint:
            yield endpoint
    except procs.ServiceUnavailable as exc:
        _unavailable(f"MinIO unavailable: {exc}")

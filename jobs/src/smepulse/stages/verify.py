"""``verify-infra``: is every configured backend reachable with the given credentials?

Checks, in order: the object store holding bronze (a local folder must be writable; S3 must
list the bronze prefix), the warehouse (the DuckDB file opens under the shared lock, or Trino
answers ``select 1``), MLflow's tracking store (the SQLite file can be created, or the
server's ``/health`` answers), Redis (``PING``, only if ``REDIS_URL`` is set) and Metabase
(``/api/health`` and the credentials, only if configured). It prints one table (secrets
masked) and fails only if a *configured* backend is unreachable, naming each one; what is not
configured is reported as such. The embedded defaults (local folders, DuckDB, SQLite) pass
offline and create nothing but the project folders.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.stages._common import describe, mask_url

log = logging.getLogger(__name__)

OK, FAILED, NOT_CONFIGURED = "ok", "FAILED", "not configured"


@dataclass(frozen=True)
class Check:
    """One row of the table."""

    component: str
    target: str
    status: str
    detail: str


def _writable_folder(folder: Path) -> str:
    """Create ``folder`` if needed and prove it is writable; return a short detail."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".verify-", delete=True) as fh:
        fh.write(b"ok")
    return "writable"


def check_object_store(settings: Settings) -> str:
    if not settings.bronze_is_s3:
        root = Path(settings.bronze_root)
        tables = sum(1 for p in root.iterdir() if p.is_dir()) if root.is_dir() else 0
        return f"{_writable_folder(root)}; {tables} bronze table folder(s)"
    from botocore.config import Config

    from smepulse.bronze.store import s3_client

    bucket, _, prefix = settings.bronze_root.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    client = s3_client(
        settings,
        Config(
            connect_timeout=settings.http_timeout_seconds,
            read_timeout=settings.http_timeout_seconds,
            retries={"max_attempts": 1},
        ),
    )
    # A listing of bronze's own prefix, not HeadBucket: the chart's stages key may list only
    # its prefixes (HeadBucket needs s3:ListBucket on the whole bucket).
    client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", MaxKeys=1)
    return f"bucket {bucket} reachable" + (f" (prefix {prefix}/ listed)" if prefix else "")


def check_warehouse(settings: Settings) -> str:
    if settings.warehouse == "trino":
        from smepulse.warehouse import get_warehouse

        frame = get_warehouse(settings).query("select 1 as ok")
        return f"select 1 -> {frame.iloc[0, 0]!s}"
    import duckdb

    from smepulse.warehouse import duckdb_lock

    path = settings.warehouse_path
    if not path.exists():
        return f"not created yet (the first dbt stage creates it); folder {_writable_folder(path.parent)}"
    with duckdb_lock(
        path, exclusive=False, timeout=settings.duckdb_lock_timeout_seconds, holder="verify-infra"
    ):
        con = duckdb.connect(str(path), read_only=True)
        try:
            row = con.execute(
                "select count(*) from information_schema.tables where table_schema in (?, ?)",
                [settings.silver_schema, settings.gold_schema],
            ).fetchone()
        finally:
            con.close()
    return f"opens read-only; {row[0] if row else 0} silver/gold table(s)"


def check_mlflow(settings: Settings) -> str:
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.exists():
            return f"store not created yet; folder {_writable_folder(path.parent)}"
        con = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, timeout=settings.http_timeout_seconds
        )
        try:
            con.execute("select count(*) from sqlite_master").fetchone()
        finally:
            con.close()
        return "SQLite store opens"
    if uri.startswith(("http://", "https://")):
        response = httpx.get(uri.rstrip("/") + "/health", timeout=settings.http_timeout_seconds)
        response.raise_for_status()
        return f"/health -> {response.status_code} {response.text.strip()[:40]}"
    return f"not checked: unsupported scheme {uri.split(':', 1)[0]!r}"


def check_redis(settings: Settings) -> str:
    import redis

    assert settings.redis_url is not None
    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.http_timeout_seconds,
        socket_connect_timeout=settings.http_timeout_seconds,
    )
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    finally:
        client.close()
    return f"PING ok (redis {version})"


def check_metabase(settings: Settings) -> str:
    from smepulse.stages.metabase import MetabaseClient

    with MetabaseClient.from_settings(settings) as client:
        status = client.health()
        who = client.authenticate()
    return f"/api/health -> {status}; {who}"


def _run(component: str, target: str, fn: Callable[[Settings], str], settings: Settings) -> Check:
    try:
        return Check(component, target, OK, fn(settings))
    except Exception as exc:  # each backend reports its own failure; the stage sums them up
        log.debug("%s check failed", component, exc_info=True)
        return Check(component, target, FAILED, describe(exc))


def checks(settings: Settings) -> list[Check]:
    """Run every check; never raises (failures are rows with status FAILED)."""
    results = [
        _run("object store", mask_url(settings.bronze_root) if settings.bronze_is_s3 else settings.bronze_root,
             check_object_store, settings),
        _run("warehouse",
             f"trino {settings.trino_http_scheme}://{settings.trino_host}:{settings.trino_port}/{settings.trino_catalog}"
             if settings.warehouse == "trino" else f"duckdb {settings.warehouse_path}",
             check_warehouse, settings),
        _run("mlflow", mask_url(settings.tracking_uri), check_mlflow, settings),
    ]  # fmt: skip
    if settings.redis_url:
        results.append(
            _run("redis", mask_url(settings.redis_url.get_secret_value()), check_redis, settings)
        )
    else:
        results.append(
            Check("redis", "-", NOT_CONFIGURED, "REDIS_URL unset: invalidate-cache will skip")
        )
    if settings.metabase_url:
        results.append(_run("metabase", mask_url(settings.metabase_url), check_metabase, settings))
    else:
        results.append(
            Check(
                "metabase",
                "-",
                NOT_CONFIGURED,
                "SMEPULSE_METABASE_URL unset: refresh-metabase will skip",
            )
        )
    return results


def render(results: list[Check]) -> Table:
    table = Table(title="verify-infra", title_justify="left")
    for col in ("component", "target", "status", "detail"):
        table.add_column(col, overflow="fold")
    style = {OK: "green", FAILED: "bold red", NOT_CONFIGURED: "dim"}
    for c in results:
        table.add_row(c.component, c.target, f"[{style[c.status]}]{c.status}[/]", c.detail)
    return table


def run(settings: Settings) -> None:
    """Stage entrypoint: print the table; StageError naming every unreachable backend."""
    results = checks(settings)
    Console(width=140, highlight=False).print(render(results))
    failed = [c for c in results if c.status == FAILED]
    if failed:
        problems = "; ".join(f"{c.component} ({c.target}): {c.detail}" for c in failed)
        raise StageError(
            f"{len(failed)} configured backend(s) unreachable: {problems}. "
            "Check the endpoint and credentials in the environment (see `smepulse settings`)."
        )
    log.info("all configured backends reachable (%d checked)", sum(c.status == OK for c in results))

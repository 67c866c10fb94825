"""verify-infra against the embedded defaults, a real redis-server and a fake Metabase."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.stages import verify

from .services import FakeHTTP, Request, free_port

pytestmark = pytest.mark.integration


def rows(settings: Settings) -> dict[str, verify.Check]:
    return {c.component: c for c in verify.checks(settings)}


def test_embedded_defaults_pass_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(home=tmp_path / "fresh")
    verify.run(settings)
    out = capsys.readouterr().out
    assert "object store" in out and "not configured" in out
    found = rows(settings)
    assert [found[c].status for c in ("object store", "warehouse", "mlflow", "redis", "metabase")] == [
        "ok", "ok", "ok", "not configured", "not configured",
    ]  # fmt: skip
    assert not settings.warehouse_path.exists()  # verify creates no warehouse


def test_existing_warehouse_opens_under_the_lock(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    settings.home.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema gold; create table gold.t as select 1 as x")
    con.close()
    assert rows(settings)["warehouse"].detail == "opens read-only; 1 silver/gold table(s)"


def test_configured_services_are_checked_with_credentials(
    tmp_path: Path, redis_url: str, http_server: FakeHTTP
) -> None:
    def api(req: Request) -> tuple[int, object]:
        if req.path == "/api/health":
            return 200, {"status": "ok"}
        if req.path == "/api/user/current" and req.headers.get("x-api-key") == "good":
            return 200, {"email": "bot@sme.vn"}
        return 401, b"Unauthenticated"

    http_server.respond = api
    settings = Settings(
        home=tmp_path, redis_url=redis_url, metabase_url=http_server.url, metabase_api_key="good"
    )
    found = rows(settings)
    assert found["redis"].status == "ok" and found["redis"].detail.startswith("PING ok")
    assert found["metabase"].status == "ok" and "bot@sme.vn" in found["metabase"].detail

    bad_key = settings.model_copy(
        update={"metabase_api_key": settings.metabase_api_key.__class__("wrong")}
    )
    assert rows(bad_key)["metabase"].status == "FAILED"


def test_unreachable_backend_fails_naming_it_with_secrets_masked(tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    settings = Settings(home=tmp_path, redis_url=url, http_timeout_seconds=1)
    with pytest.raises(
        StageError, match=r"1 configured backend\(s\) unreachable: redis \(redis://\*\*\*\*@127"
    ) as info:
        verify.run(settings)
    assert "hunter2" not in str(info.value)


def test_unreachable_mlflow_server(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}", http_timeout_seconds=1
    )
    assert rows(settings)["mlflow"].status == "FAILED"

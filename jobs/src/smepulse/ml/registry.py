"""The model registry behind a small interface: MLflow tracking + registry.

Tracking URI from settings (``sqlite:///<home>/mlflow.db`` embedded, the MLflow server in the
cluster); new experiments get their artifact location under ``settings.artifact_uri`` (a local
folder or S3), or, with an MLflow server and no artifact URI set, the server's own root (the
chart's server proxies it to S3). The serving alias is ``champion``; only ``validate-models`` moves it.

On the embedded stack uc09-train and uc10-train run in parallel against one SQLite file; SQLite
(and MLflow's schema migration on a fresh file) does not like concurrent writers, so MLflow
work takes turns through an advisory lock beside the database, like DuckDB's.

Everything goes through explicit ``MlflowClient`` objects, never ``mlflow.set_tracking_uri``:
that call also exports ``MLFLOW_TRACKING_URI`` into the process environment, which a later
``Settings()`` in the same process would then read back as configuration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.warehouse import duckdb_lock

log = logging.getLogger(__name__)
UC09_MODEL = "smepulse-uc09-cashflow"
UC10_MODEL = "smepulse-uc10-anomaly"
#: UC10's robust z-score baseline: registered beside every candidate (and by uc10-detect on a
#: first run), it serves whenever UC10 has no champion.
UC10_BASELINE_MODEL = "smepulse-uc10-baseline"
#: UC09's weekly seasonal-naive baseline: registered by uc09-forecast (one version per logical
#: date, fitted on the data up to it) and served whenever UC09 has no champion.
UC09_BASELINE_MODEL = "smepulse-uc09-baseline"
CHAMPION = "champion"


@contextlib.contextmanager
def tracking(settings: Settings) -> Iterator[Any]:
    """An ``MlflowClient`` for the configured store, holding the SQLite lock if there is one.

    MLflow failures inside the block (server unreachable, store error) become one
    :class:`StageError` line naming the tracking URI (without any credentials in it).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = settings.tracking_uri
    lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        lock = duckdb_lock(
            db, exclusive=True, timeout=settings.duckdb_lock_timeout_seconds, holder="mlflow"
        )
    with lock:
        try:
            yield MlflowClient(tracking_uri=uri, registry_uri=uri)
        except MlflowException as exc:
            where = re.sub(r"//[^/@]*@", "//", uri)
            raise StageError(f"MLflow at {where} failed: {exc.message}") from None


def experiment_id(client: Any, settings: Settings, use_case: str) -> str:
    """The id of ``<prefix>-<use_case>``, created with an artifact location under settings."""
    name = f"{settings.mlflow_experiment_prefix}-{use_case}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    root = settings.artifact_uri
    location = f"{root.rstrip('/')}/{name}" if root else None  # None: the server's own root
    return str(client.create_experiment(name, artifact_location=location))


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version and the run that produced it."""

    name: str
    version: str
    run_id: str
    tags: dict[str, str]

    @property
    def logical_date(self) -> str:
        return self.tags.get("logical_date", "")


def log_and_register(
    settings: Settings,
    *,
    model_name: str,
    use_case: str,
    python_model: Any,
    save: Any,
    input_example: Any,
    output_example: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    documents: dict[str, Any],
) -> RegisteredVersion:
    """Log one training run (params, metrics, JSON documents, the pyfunc model with signature
    and input example) and register its model as a new version of ``model_name``.

    ``save(path)`` writes the fitted model folder that becomes the pyfunc's ``model`` artifact.
    """
    import mlflow.pyfunc
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    from smepulse.ml.pyfunc import ARTIFACT_KEY

    with tempfile.TemporaryDirectory(prefix="smepulse-model-") as tmp:
        fitted, packaged = Path(tmp) / "fitted", Path(tmp) / "model"
        save(fitted)
        # Packaging (and MLflow's check of the input example against the signature) is local.
        mlflow.pyfunc.save_model(
            path=str(packaged),
            python_model=python_model,
            artifacts={ARTIFACT_KEY: str(fitted)},
            signature=infer_signature(input_example, output_example),
            input_example=input_example,
            pip_requirements=_requirements(),
        )
        with tracking(settings) as client:
            exp = experiment_id(client, settings, use_case)
            run = client.create_run(exp, run_name=f"{use_case}-{tags.get('logical_date', '')}")
            run_id = run.info.run_id
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[
                    Metric(k, float(v), now, 0) for k, v in metrics.items() if v == v
                ],  # no NaN
                params=[Param(k, str(v)) for k, v in params.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
            for file_name, doc in documents.items():
                client.log_dict(run_id, doc, file_name)
            client.log_artifacts(run_id, str(packaged), "model")
            try:
                client.create_registered_model(model_name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            mv = client.create_model_version(
                model_name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=tags
            )
            client.set_terminated(run_id)
    log.info("registered %s version %s (run %s)", model_name, mv.version, run_id)
    return RegisteredVersion(model_name, str(mv.version), run_id, dict(tags))


def _requirements() -> list[str]:
    # Explicit, so MLflow does not spawn a subprocess to infer them on every training run.
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in (
        "smepulse",
        "mlflow",
        "pandas",
        "numpy",
        "scikit-learn",
        "prophet",
        "statsforecast",
    ):
        with contextlib.suppress(PackageNotFoundError):
            out.append(f"{dist}=={version(dist)}")
    return out


def _version(client: Any, mv: Any) -> RegisteredVersion:
    return RegisteredVersion(mv.name, str(mv.version), str(mv.run_id), dict(mv.tags or {}))


def champion(client: Any, model_name: str) -> RegisteredVersion | None:
    """The version behind the ``champion`` alias, or None (no alias, or no such model)."""
    from mlflow.exceptions import MlflowException

    try:
        return _version(client, client.get_model_version_by_alias(model_name, CHAMPION))
    except MlflowException as exc:
        # No such model, or no such alias; anything else (server down, ...) is a real failure.
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def latest(client: Any, model_name: str) -> RegisteredVersion | None:
    """The newest registered version of ``model_name``, or None."""
    versions = client.search_model_versions(f"name = '{model_name}'")
    if not versions:
        return None
    return _version(client, max(versions, key=lambda mv: int(mv.version)))


def _newest_tagged(
    client: Any, model_name: str, keep: Callable[[str | None], bool]
) -> RegisteredVersion | None:
    """The newest version of ``model_name`` whose ``logical_date`` tag ``keep`` accepts."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    usable = [mv for mv in versions if keep((mv.tags or {}).get("logical_date"))]
    return _version(client, max(usable, key=lambda mv: int(mv.version))) if usable else None


def latest_as_of(client: Any, model_name: str, day: dt.date) -> RegisteredVersion | None:
    """The newest version of ``model_name`` trained as of ``day`` or earlier, or None."""
    return _newest_tagged(client, model_name, lambda tag: (tag or "9999") <= day.isoformat())


def version_of_date(client: Any, model_name: str, day: dt.date) -> RegisteredVersion | None:
    """The newest version of ``model_name`` tagged ``logical_date == day``, or None."""
    return _newest_tagged(client, model_name, lambda tag: tag == day.isoformat())


def promote(client: Any, model_name: str, version: str, reason: str) -> None:
    """Point ``champion`` at ``version`` and record why on the version."""
    client.set_registered_model_alias(model_name, CHAMPION, version)
    client.set_model_version_tag(
        model_name, version, "promoted_at", dt.datetime.now(dt.UTC).isoformat()
    )
    client.set_model_version_tag(model_name, version, "validation", reason)


def reject(client: Any, model_name: str, version: str, reason: str) -> None:
    client.set_model_version_tag(model_name, version, "validation", reason)


def run_metrics(client: Any, run_id: str) -> dict[str, float]:
    return dict(client.get_run(run_id).data.metrics)


def load_run_document(client: Any, run_id: str, file_name: str) -> Any:
    """A JSON document logged with ``log_and_register(documents=...)``."""
    with tempfile.TemporaryDirectory(prefix="smepulse-doc-") as tmp:
        local = client.download_artifacts(run_id, file_name, tmp)
        return json.loads(Path(local).read_text())


def load_version(client: Any, version: RegisteredVersion) -> Any:
    """The unwrapped pyfunc of a registered version (``.model`` is the typed model)."""
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix="smepulse-load-") as tmp:
        local = client.download_artifacts(version.run_id, "model", tmp)
        return mlflow.pyfunc.load_model(local).unwrap_python_model()

"""The one typed settings object.

Every process builds :class:`Settings` once (``Settings.load()``) and passes it down; no other
module reads the environment. Defaults select the *embedded* stack under one project folder
(``./.smepulse``): a DuckDB warehouse file, a local bronze folder and MLflow on SQLite, so a
laptop with no services runs every pipeline.

Variables are ``SMEPULSE_<FIELD>`` (case-insensitive). A few well-known names are accepted as
well (``REDIS_URL``, ``MLFLOW_TRACKING_URI``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``)
so the chart's Secret can use the names other tools already expect. Credentials are
``SecretStr``: they never appear in logs or ``repr``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE_DIR = Path(__file__).resolve().parent


def _default_dbt_project_dir() -> Path:
    # In a source checkout (editable install) the dbt project is the repository's dbt/ (jobs/src/smepulse -> ../../../dbt); the image
    # sets SMEPULSE_DBT_PROJECT_DIR explicitly.
    return _PACKAGE_DIR.parents[2] / "dbt"


class ConfigError(Exception):
    """Bad configuration: the CLI prints the message as one line and exits with code 2."""


class Settings(BaseSettings):
    """All configuration of one SME Pulse process."""

    model_config = SettingsConfigDict(
        env_prefix="SMEPULSE_",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # -- general -------------------------------------------------------------------------
    home: Path = Field(Path(".smepulse"), description="Project folder of the embedded stack.")
    log_format: Literal["auto", "text", "json"] = Field(
        "auto", description="auto: text on a terminal, JSON otherwise (containers)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = Field("Asia/Ho_Chi_Minh", description="Business time zone of the SME.")
    logical_date: dt.date | None = Field(
        None, description="Business date of the run; the runner/operator sets it per stage."
    )
    extract_lag_hours: float = Field(
        2.0,
        ge=0,
        le=48,
        description="Point in time: a run for D reads versions whose updated_at is before local "
        "midnight after D plus this lag (an extract taken after midnight); later stamps wait "
        "for the next day's run, with a warning.",
    )
    run_id: str | None = Field(None, description="Name of the pipeline run a stage belongs to.")
    pipeline: str | None = Field(None, description="Pipeline of the run a stage belongs to.")
    params: dict[str, str] = Field(
        default_factory=dict, description="Run parameters (SMEPULSE_PARAMS as a JSON object)."
    )
    # Set by the executor (local runner or operator) for `finally` stages such as notify.
    run_outcome: Literal["Succeeded", "Failed", "TimedOut", "Cancelled"] | None = None
    failed_stage: str | None = None
    failure_message: str | None = None

    # -- bronze (object store) -----------------------------------------------------------
    bronze_uri: str | None = Field(
        None,
        description="Bronze root: a local folder or s3://bucket/prefix. Default <home>/bronze.",
    )
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO) for s3:// URIs.")
    reports_uri: str | None = Field(
        None,
        description="Where the report stage writes the day's HTML and Markdown report: a local "
        "folder or s3://bucket/prefix (a stage Pod's own folder vanishes with it). "
        "Default <home>/reports.",
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = Field(
        None, validation_alias=AliasChoices("smepulse_s3_access_key_id", "aws_access_key_id")
    )
    s3_secret_access_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("smepulse_s3_secret_access_key", "aws_secret_access_key"),
    )

    # -- warehouse -----------------------------------------------------------------------
    warehouse: Literal["duckdb", "trino"] = "duckdb"
    duckdb_path: Path | None = Field(
        None, description="DuckDB file. Default <home>/warehouse.duckdb."
    )
    duckdb_lock_timeout_seconds: float = Field(600.0, gt=0)
    trino_host: str = "localhost"
    trino_port: int = Field(8080, ge=1, le=65535)
    trino_user: str = "smepulse"
    trino_password: SecretStr | None = None
    trino_http_scheme: Literal["http", "https"] = "http"
    trino_catalog: str = Field("lakehouse", description="Iceberg catalog holding silver/gold.")
    trino_bronze_catalog: str = Field("bronze", description="Catalog exposing bronze Parquet.")
    trino_bronze_location: str | None = Field(
        None,
        description="Bronze root as Trino's Hive catalog sees it (e.g. s3://lake/bronze); "
        "default: bronze_uri. dbt registers the bronze tables there.",
    )
    silver_schema: str = "silver"
    gold_schema: str = "gold"

    # -- dbt -----------------------------------------------------------------------------
    dbt_project_dir: Path = Field(default_factory=_default_dbt_project_dir)
    dbt_threads: int = Field(2, ge=1, le=64)

    # -- MLflow --------------------------------------------------------------------------
    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("smepulse_mlflow_tracking_uri", "mlflow_tracking_uri"),
        description="Default sqlite:///<home>/mlflow.db.",
    )
    mlflow_artifact_uri: str | None = Field(
        None,
        description="Artifact root for new experiments. Default: <home>/mlartifacts with a "
        "local store; with an MLflow server (http/https tracking URI), the server's own "
        "(in the chart: proxied to s3://<bucket>/<mlflowPrefix>).",
    )
    mlflow_experiment_prefix: str = "smepulse"

    # -- ML (UC09 forecast, UC10 anomalies) -------------------------------------------------
    ml_forecast_horizon_days: int = Field(30, ge=1, le=366, description="UC09 forecast horizon.")
    ml_forecast_interval: float = Field(
        0.8, gt=0, lt=1, description="UC09 prediction interval level."
    )
    ml_backtest_folds: int = Field(
        4, ge=1, le=24, description="UC09 rolling-origin folds (one horizon each)."
    )
    ml_forecast_candidates: list[str] = Field(
        default_factory=lambda: ["book", "prophet", "ets"],
        description="UC09 model kinds uc09-train compares (book, prophet, ets, seasonal_naive).",
    )
    ml_backtest_inner_folds: int = Field(
        2, ge=1, le=12, description="UC09: folds before each outer fold the selection uses."
    )
    ml_book_calibration_cutoffs: int = Field(
        12, ge=2, le=104, description="UC09 book model: weekly cut-offs its intervals learn from."
    )
    ml_accuracy_mape_threshold: float = Field(
        0.02,
        gt=0,
        description="UC09: rolling MAPE of past forecasts above which ml-predict requests one "
        "ml-training run (the seed's 'retrain if MAPE > 2 %').",
    )
    ml_accuracy_window_days: int = Field(
        28, ge=1, le=365, description="UC09: days of scored forecasts the rolling accuracy covers."
    )
    ml_archive_after_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="Forecasts and alerts older than this move to archive tables.",
    )
    ml_anomaly_window_days: int = Field(
        7, ge=1, le=90, description="UC10: days up to the logical date scored."
    )
    ml_anomaly_alert_rate: float = Field(
        0.04,
        gt=0,
        lt=0.5,
        description="UC10 alert level: the score reached by this share of training "
        "transactions, served as a fixed level (no quota per window).",
    )
    ml_anomaly_eval_days: int = Field(
        28, ge=7, le=365, description="UC10 held-out evaluation window."
    )

    # -- cache / BI / notifications --------------------------------------------------------
    redis_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("smepulse_redis_url", "redis_url")
    )
    cache_key_patterns: list[str] = Field(
        default_factory=lambda: ["smepulse:dashboard:*", "smepulse:api:*"],
        description="Redis key patterns removed by invalidate-cache (SCAN + UNLINK).",
    )
    cache_channel: str = "smepulse:cache-invalidated"
    metabase_url: str | None = None
    metabase_api_key: SecretStr | None = None
    metabase_username: str | None = None
    metabase_password: SecretStr | None = None
    metabase_card_ids: list[int] = Field(default_factory=list)
    metabase_dashboard_ids: list[int] = Field(default_factory=list)
    notify_webhook_url: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str | None = None
    smtp_to: list[str] = Field(default_factory=list)
    http_timeout_seconds: float = Field(10.0, gt=0)
    http_retries: int = Field(3, ge=0, le=10)
    http_backoff_seconds: float = Field(
        1.0, ge=0, description="First retry delay of HTTP clients; doubles on each later retry."
    )

    # -- external data -------------------------------------------------------------------
    worldbank_base_url: str = "https://api.worldbank.org/v2"
    worldbank_country: str = "VN"
    worldbank_indicators: list[str] = Field(
        default_factory=lambda: [
            "NY.GDP.MKTP.CD",
            "NY.GDP.MKTP.KD.ZG",
            "FP.CPI.TOTL.ZG",
            "SL.UEM.TOTL.ZS",
            "FR.INR.LEND",
            "PA.NUS.FCRF",
        ]
    )
    worldbank_start_year: int = Field(2000, ge=1960)

    # -- Kubernetes (submit / operator) -----------------------------------------------------
    kube_namespace: str | None = Field(
        None, description="Namespace for runs; default: in-cluster or kubeconfig's."
    )
    operator_metrics_port: int = Field(8000, ge=1, le=65535)
    operator_health_port: int = Field(8080, ge=1, le=65535)
    job_image: str = "ghcr.io/smepulse/smepulse:0.1.0"
    job_config_map: str = "smepulse-config"
    job_secret: str = "smepulse-secrets"
    job_service_account: str | None = None
    job_warehouse_claim: str | None = Field(
        None,
        description="PersistentVolumeClaim the operator mounts into every stage Job at "
        "job_warehouse_mount_path: the embedded stack (DuckDB file, local bronze, MLflow's "
        "SQLite store) shared by the stage Pods when there is no Trino. Unset: no volume.",
    )
    job_warehouse_mount_path: str = Field(
        "/var/lib/smepulse",
        description="Where job_warehouse_claim is mounted in stage Pods (the chart points "
        "SMEPULSE_HOME there).",
    )
    kubeconfig: Path | None = Field(
        None,
        validation_alias=AliasChoices("smepulse_kubeconfig", "kubeconfig"),
        description="kubeconfig for submit/operator outside a cluster: SMEPULSE_KUBECONFIG, else "
        "$KUBECONFIG (kubectl's list of files separated by os.pathsep; the first to name a value "
        "wins); unset: in-cluster credentials, else ~/.kube/config.",
    )
    kubernetes_service_host: str | None = Field(
        None,
        validation_alias=AliasChoices("kubernetes_service_host"),
        description="Set by Kubernetes in every container: the API server for in-cluster access.",
    )
    kubernetes_service_port: int = Field(
        443, ge=1, le=65535, validation_alias=AliasChoices("kubernetes_service_port")
    )
    operator_reconcile_interval_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Safety-net resync of each unfinished run (Job events wake it sooner).",
    )
    operator_workers: int = Field(
        8, ge=1, le=64, description="Threads for the operator's blocking API calls."
    )
    operator_default_ttl_seconds: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="ttlSecondsAfterFinished of runs whose spec sets none: a finished run (and, "
        "through ownership, its Jobs and Pods) is deleted this long after it ended.",
    )
    operator_stuck_pod_seconds: float = Field(
        300.0,
        gt=0,
        description="A stage Pod that cannot start this long (ImagePullBackOff, Unschedulable, "
        "...) fails its attempt instead of burning the stage's whole deadline.",
    )
    operator_image_pull_seconds: float = Field(
        45.0,
        gt=0,
        description="A stage Pod whose image cannot be pulled (ErrImagePull, ImagePullBackOff, "
        "InvalidImageName) this long fails its attempt: a wrong tag or a missing pull secret "
        "is reported within a minute, not after operator_stuck_pod_seconds.",
    )
    operator_watch_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="kopf watch server_timeout: a silently dropped watch is re-opened after this.",
    )

    # -- local runner ----------------------------------------------------------------------
    runner_max_parallel: int = Field(2, ge=1, le=32)
    runner_dbt_worker: bool = Field(
        True,
        description="Run the dbt stages of a local run in one warm worker process "
        "(smepulse.runner.dbt_worker) instead of a new process each; each stage keeps its "
        "own record, log, retries and timeout.",
    )

    @field_validator("bronze_uri", "reports_uri")
    @classmethod
    def _folder_or_s3(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and "://" in value and not value.startswith(("s3://", "file://")):
            raise ValueError(f"{info.field_name} must be a folder or an s3:// URI")
        if value and value.startswith("s3://") and not value.removeprefix("s3://").split("/")[0]:
            raise ValueError(f"{info.field_name} {value!r} names no bucket (s3://bucket/prefix)")
        return value

    @property
    def business_date(self) -> dt.date:
        """The run's logical date, or today when none was given."""
        return self.logical_date or dt.date.today()

    # -- derived locations ---------------------------------------------------------------
    @property
    def bronze_root(self) -> str:
        """Bronze root as a local path or an ``s3://`` URI."""
        if self.bronze_uri:
            return self.bronze_uri.removeprefix("file://")
        return str(self.home / "bronze")

    @property
    def bronze_is_s3(self) -> bool:
        return self.bronze_root.startswith("s3://")

    @property
    def warehouse_path(self) -> Path:
        return self.duckdb_path or self.home / "warehouse.duckdb"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_uri(self) -> str | None:
        """Artifact root of new experiments; None: the MLflow server's default. A local
        folder under a server would put the models in the stage Pod's own file system, gone
        with the Pod (seen on the real node: nothing under the bucket's MLflow prefix)."""
        if self.mlflow_artifact_uri:
            return self.mlflow_artifact_uri
        if self.tracking_uri.startswith(("http://", "https://")):
            return None
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def labels_dir(self) -> Path:
        """Where the generator writes ground-truth labels (never inside bronze)."""
        return self.home / "labels"

    @property
    def runs_dir(self) -> Path:
        """Local runner: one folder per run with its record and stage logs."""
        return self.home / "runs"

    @property
    def reports_dir(self) -> Path:
        """Local folder of the reports (``reports_uri`` when it is a folder)."""
        if self.reports_uri and not self.reports_uri.startswith("s3://"):
            return Path(self.reports_uri.removeprefix("file://"))
        return self.home / "reports"

    @property
    def external_snapshot_dir(self) -> Path:
        return self.home / "external"

    def dbt_env(self) -> dict[str, str]:
        """Environment for dbt's profiles.yml (``env_var()``); secrets included, never logged."""
        env = {
            "SMEPULSE_DBT_TARGET": self.warehouse,
            "SMEPULSE_DUCKDB_PATH": str(self.warehouse_path.resolve()),
            "SMEPULSE_BRONZE_ROOT": self.bronze_root
            if self.bronze_is_s3
            else str(Path(self.bronze_root).resolve()),
            "SMEPULSE_DBT_THREADS": str(self.dbt_threads),
            "SMEPULSE_TRINO_HOST": self.trino_host,
            "SMEPULSE_TRINO_PORT": str(self.trino_port),
            "SMEPULSE_TRINO_USER": self.trino_user,
            "SMEPULSE_TRINO_PASSWORD": self.trino_password.get_secret_value()
            if self.trino_password
            else "",
            "SMEPULSE_TRINO_HTTP_SCHEME": self.trino_http_scheme,
            "SMEPULSE_TRINO_CATALOG": self.trino_catalog,
            "SMEPULSE_TRINO_BRONZE_CATALOG": self.trino_bronze_catalog,
            "SMEPULSE_TRINO_BRONZE_LOCATION": self.trino_bronze_location or "",
            "SMEPULSE_SILVER_SCHEMA": self.silver_schema,
            "SMEPULSE_GOLD_SCHEMA": self.gold_schema,
            "SMEPULSE_DUCKDB_HTTPFS": duckdb_httpfs_extension(),
            "SMEPULSE_S3_ENDPOINT_URL": self.s3_endpoint_url or "",
            "SMEPULSE_S3_REGION": self.s3_region,
            "SMEPULSE_S3_ACCESS_KEY_ID": self.s3_access_key_id.get_secret_value()
            if self.s3_access_key_id
            else "",
            "SMEPULSE_S3_SECRET_ACCESS_KEY": self.s3_secret_access_key.get_secret_value()
            if self.s3_secret_access_key
            else "",
        }
        return env

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Read the environment once; raise :class:`ConfigError` with one readable line."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(
                f"SMEPULSE_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"bad configuration: {problems}") from None


def duckdb_httpfs_extension() -> str:
    """The httpfs extension file of the installed ``duckdb-extension-httpfs`` wheel, built for
    the installed DuckDB; dbt-duckdb installs and loads it from there, so reading ``s3://``
    bronze never fetches the extension from the internet. ``httpfs`` (DuckDB's own download)
    only when the wheel is missing or built for another DuckDB version."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    try:
        duckdb_version = version("duckdb")
    except PackageNotFoundError:
        return "httpfs"
    spec = find_spec("duckdb_extension_httpfs")
    if spec is None or not spec.submodule_search_locations:
        return "httpfs"
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "extensions" / f"v{duckdb_version}" / "httpfs.duckdb_extension"
        if candidate.is_file():
            return str(candidate)
    return "httpfs"

"""The dbt stages: ``dbt build --select <tags>`` in-process, with progress and a verdict.

Each stage builds the slice of the dbt project (``dbt/``) that its catalog entry's ``dbt:``
block selects (:mod:`smepulse.dbt_selection`; :func:`run_stage` is the one entry point of
every dbt stage), runs it with dbt's programmatic entry point (:class:`dbt.cli.main.dbtRunner`),
logs one line per finished node, writes the run's results to ``<home>/dbt/<stage>.json`` for
the report stage, and raises :class:`StageError` naming the failing tests and their models
when anything failed.

Atomic gold: the project follows write-audit-publish. Tables are built and tested in
``<schema>_staging``; dbt's on-run-end hook (``dbt/macros/publish_staged.sql``) copies them
to the live ``silver``/``gold`` schemas only when the whole build passed, in one DuckDB
transaction. A failed test therefore leaves the live tables as they were.

On DuckDB the whole invocation holds the warehouse's exclusive lock (``duckdb_lock``), so
parallel stages take turns and readers never see a half-published stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smepulse.catalog import Catalog
from smepulse.dbt_results import (
    BuildProgress,
    NodeOutcome,
    duckdb_row_counter,
    failure_lines,
    observe_publish,
    outcome_from_result,
    summarise,
    warehouse_counter,
)
from smepulse.dbt_selection import Selection
from smepulse.dbt_selection import selection as dbt_selection
from smepulse.errors import StageError
from smepulse.settings import Settings
from smepulse.warehouse import duckdb_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    """The outcome of one ``dbt build``."""

    stage: str
    success: bool
    outcomes: list[NodeOutcome]
    elapsed_seconds: float
    results_path: Path
    error: str | None = None


def run_stage(settings: Settings, stage: str, catalog: Catalog | None = None) -> None:
    """The entry point of every dbt stage (``smepulse stage <name>``; the catalog's ``dbt:``
    block says what it builds): raises StageError naming the failed tests and models."""
    result = run_build(settings, stage, catalog=catalog)
    if not result.success:
        details = "; ".join(failure_lines(result.outcomes)) or result.error or "see the dbt log"
        raise StageError(
            f"{stage}: dbt build failed ({details}). The live silver/gold tables were left "
            f"unchanged. Results: {result.results_path}; dbt log: {_dbt_dir(settings) / 'logs'}"
        )


def run_build(
    settings: Settings,
    stage: str,
    extra_vars: Mapping[str, Any] | None = None,
    catalog: Catalog | None = None,
) -> BuildResult:
    """Run ``dbt build`` for ``stage``'s selection (from the catalog); write and return its
    results.

    ``extra_vars`` are merged into ``--vars`` (tests use it to force a failing invariant).
    Never raises for a failed build: the caller decides (the stage raises StageError).
    """
    selection = dbt_selection(stage, catalog)
    with _exclusive(settings, stage):
        exclude = selection.exclude
        for rule in selection.exclude_when_missing:
            if not _relation_exists(settings, rule.relation):
                log.warning(
                    "%s: %s is missing: building without %s%s",
                    stage,
                    rule.relation,
                    " ".join(rule.exclude),
                    f"; {rule.hint}" if rule.hint else "",
                )
                exclude = tuple(dict.fromkeys([*exclude, *rule.exclude]))
        args = _build_args(settings, stage, selection, exclude, extra_vars)
        started = time.monotonic()
        log.info(
            "%s: dbt build --select %s%s (target %s, logical date %s)",
            stage,
            " ".join(selection.select),
            f" --exclude {' '.join(exclude)}" if exclude else "",
            settings.warehouse,
            settings.business_date,
        )
        outcomes: list[NodeOutcome] = []
        success = False
        with dbt_environment(settings):
            error = None
            if settings.warehouse == "trino" and selection.bronze_sources:
                error = _register_bronze(settings, stage, selection.bronze_sources)
            if not error:
                manifest = _reused_manifest(settings, stage, extra_vars)
                if manifest is not None:
                    # The kept manifest is the one its parse already wrote to the target
                    # folder; dbt would serialise it again (and run_results.json, node by
                    # node) on every build: 0.6 s a stage at scale 1. This runner writes its
                    # own results file (below) either way.
                    args = ["--no-write-json", *args]
                success, outcomes, error = _invoke(stage, settings, args, manifest)
            published = False
            if success:
                # Observed, not assumed: the live tables must now be what was tested.
                with warehouse_counter(settings) as count:
                    published, why = observe_publish(outcomes, count)
                if not published:
                    success, error = False, f"publish not observed: {why}"
        elapsed = time.monotonic() - started
    path = _write_results(
        settings, stage, selection, exclude, success, published, outcomes, elapsed, error
    )
    summary = summarise(outcomes)
    log.info(
        "%s: %s in %.1fs: %d models, %d tests, %d failed",
        stage,
        "succeeded" if success else "FAILED",
        elapsed,
        summary["n_models"],
        summary["n_tests"],
        summary["n_failed"],
    )
    return BuildResult(stage, success, outcomes, elapsed, path, error)


def _dbt_dir(settings: Settings) -> Path:
    return settings.home / "dbt"


def _target_path(settings: Settings, stage: str) -> Path:
    """The stage's dbt target folder, seeded with the image's baked parse artefacts.

    DuckDB stages run one at a time (the warehouse lock), so they share one target folder
    and dbt's partial parsing carries from stage to stage. Trino stages may run in parallel
    on one machine: each gets its own folder. The image bakes ``partial_parse.msgpack`` and
    ``manifest.json`` per target into the (read-only) project at build time
    (``target/<warehouse>/``, :func:`bake_parse_artefacts`); a new target folder starts from
    the one of its warehouse instead of from nothing. dbt uses them when its state check
    passes: same dbt version, --vars, --target, profile connection keys and the env vars read
    in dbt_project.yml (see :func:`bake_parse_artefacts`); otherwise it parses in full, as
    without them.
    """
    if settings.warehouse == "duckdb":
        target = _dbt_dir(settings) / "target"
    else:
        target = _dbt_dir(settings) / f"target-{stage}"
    baked = settings.dbt_project_dir / "target" / settings.warehouse
    if not (target / PARTIAL_PARSE_FILE).exists() and (baked / PARTIAL_PARSE_FILE).exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in (PARTIAL_PARSE_FILE, "manifest.json"):
            if (baked / name).exists():
                shutil.copy2(baked / name, target / name)
    return target


#: dbt's saved parse state, which ``dbt`` reuses when its state check passes.
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def _common_args(settings: Settings, stage: str, extra_vars: Mapping[str, Any] | None) -> list[str]:
    """Arguments every dbt invocation of a stage shares.

    The run's logical date, time zone and extract lag are *not* passed with ``--vars``:
    dbt hashes ``--vars`` into its partial-parse state, so a new date would discard the
    saved parse and every stage would parse the whole project again (a few seconds each).
    They travel as environment variables instead (:func:`run_env`), read by the macros only
    at execution time (``run_value()`` in ``dbt/macros/as_of_date.sql``). ``extra_vars``
    (tests) still go through ``--vars`` and override them, at the cost of a full parse.
    """
    args = _location_args(settings, _target_path(settings, stage))
    if extra_vars:
        args += ["--vars", json.dumps(dict(extra_vars), sort_keys=True, default=str)]
    return args


def _location_args(settings: Settings, target_path: Path) -> list[str]:
    """Project, profiles, target and the folders dbt writes to: the same for a stage's build
    and for the image's baked parse, so the baked state check matches the stage's."""
    project = str(settings.dbt_project_dir)
    return [
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        settings.warehouse,
        "--target-path",
        str(target_path),
        "--log-path",
        str(_dbt_dir(settings) / "logs"),
    ]


def run_env(settings: Settings) -> dict[str, str]:
    """The run's values the dbt macros read with env_var() at execution time (run_value())."""
    return {
        "SMEPULSE_LOGICAL_DATE": settings.business_date.isoformat(),
        "SMEPULSE_TIMEZONE": settings.timezone,
        "SMEPULSE_EXTRACT_LAG_HOURS": str(settings.extract_lag_hours),
    }


def bake_parse_artefacts(settings: Settings) -> Path:
    """``dbt parse`` for ``settings.warehouse`` into ``<project>/target/<warehouse>``.

    The result is only useful if a stage's invocation later passes dbt's state check
    (``ManifestLoader.is_partial_parsable`` in dbt-core 1.11): the same dbt version; the same
    ``--vars`` (none: :func:`_common_args`), ``--target`` and ``--profile``; the same values
    of the profile's connection keys (Trino: method, host, port, user, database, schema,
    cert...; DuckDB: path, schema, extensions, settings...); the same values of the env vars
    dbt_project.yml reads (the silver/gold schema names). Arguments and environment come from
    the very functions a stage uses, so only the settings' values matter
    (:data:`BAKED_SETTINGS`). Env vars that sources YAML reads (the bronze root) make dbt
    reparse just those files when they differ. Only ``partial_parse.msgpack`` and
    ``manifest.json`` are kept.
    """
    from dbt.cli.main import dbtRunner

    target = settings.dbt_project_dir / "target" / settings.warehouse
    args = [*QUIET, "parse", *_location_args(settings, target)]
    with dbt_environment(settings):
        outcome = dbtRunner().invoke(args)
    if not outcome.success or not (target / PARTIAL_PARSE_FILE).exists():
        raise StageError(
            f"dbt parse for target {settings.warehouse} failed: "
            f"{outcome.exception or 'see ' + str(_dbt_dir(settings) / 'logs')}"
        )
    for path in target.iterdir():
        if path.name not in (PARTIAL_PARSE_FILE, "manifest.json"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    return target


#: The settings the stages image bakes dbt's parse for, per target: those a stage Job sees
#: in the default chart install (``helm install smepulse charts/smepulse -n smepulse``: the
#: chart's ConfigMap; tests/integration/dbt/test_partial_parse.py renders it and proves that
#: a stage accepts the baked parse), and for DuckDB the image's own defaults
#: (SMEPULSE_HOME=/var/lib/smepulse, local bronze). Another install (release name, namespace,
#: Trino user or catalog) still works: its first dbt invocation parses in full.
BAKED_SETTINGS: dict[str, dict[str, Any]] = {
    "trino": {
        "warehouse": "trino",
        "home": "/tmp/smepulse",
        "trino_host": "smepulse-trino.smepulse.svc",
        "trino_port": 8080,
        "trino_http_scheme": "http",
        "trino_user": "smepulse",
        "trino_catalog": "lakehouse",
        "trino_bronze_catalog": "bronze",
        "bronze_uri": "s3://smepulse/bronze",
    },
    "duckdb": {"warehouse": "duckdb", "home": "/var/lib/smepulse"},
}


def bake_image_artefacts(project_dir: Path) -> list[Path]:
    """The image build's step: :func:`bake_parse_artefacts` for every :data:`BAKED_SETTINGS`."""
    return [
        bake_parse_artefacts(Settings(**values, dbt_project_dir=project_dir))
        for values in BAKED_SETTINGS.values()
    ]


def _build_args(
    settings: Settings,
    stage: str,
    selection: Selection,
    exclude: tuple[str, ...],
    extra_vars: Mapping[str, Any] | None,
) -> list[str]:
    args = [
        "build",
        *_common_args(settings, stage, extra_vars),
        "--indirect-selection",
        selection.indirect_selection,
        "--select",
        *selection.select,
    ]
    if exclude:
        args += ["--exclude", *exclude]
    return [*QUIET, *args]


#: dbt's own console output is replaced by BuildProgress's log lines; its file log stays.
QUIET = ("--quiet", "--no-use-colors", "--no-send-anonymous-usage-stats")


def _register_bronze(settings: Settings, stage: str, bronze_sources: Sequence[str]) -> str | None:
    """Trino: create missing bronze tables and sync their partitions; the error, if any."""
    from dbt.cli.main import dbtRunner

    sources = list(bronze_sources)
    args = [
        *QUIET,
        "run-operation",
        "register_bronze_tables",
        *_common_args(settings, stage, None),
        "--args",
        json.dumps({"sources": sources}),
    ]
    log.info("%s: registering bronze tables of source(s) %s in Trino", stage, ", ".join(sources))
    outcome = dbtRunner().invoke(args)
    if outcome.success:
        return None
    return (
        f"registering the bronze tables in Trino failed: {outcome.exception or 'see the dbt log'}"
    )


#: Parsed manifests kept for the next invocation in this process, by location and
#: environment (:func:`enable_manifest_reuse`); None: every invocation loads its own.
_MANIFESTS: dict[str, Any] | None = None


def enable_manifest_reuse() -> None:
    """Reuse dbt's parsed manifest between the stages this process runs.

    For long-lived processes that run many stages (the local runner's warm dbt worker,
    :mod:`smepulse.runner.dbt_worker`). The first build of a target parses (``dbt parse``,
    partial parsing as usual) and keeps the manifest; later builds with the same project,
    target folder, ``--vars`` and dbt environment (profile and run values) hand it to
    ``dbtRunner(manifest=...)`` and skip loading it. A stage process (``smepulse stage``,
    a Kubernetes Job) runs one build and never enables this.
    """
    global _MANIFESTS
    if _MANIFESTS is None:
        _MANIFESTS = {}


def _reused_manifest(
    settings: Settings, stage: str, extra_vars: Mapping[str, Any] | None
) -> Any | None:
    """The kept manifest for this invocation's location and environment, parsed now if
    there is none yet; None when reuse is off or the parse failed (the build then parses)."""
    if _MANIFESTS is None:
        return None
    common = _common_args(settings, stage, extra_vars)
    key = json.dumps([common, settings.dbt_env(), run_env(settings)], sort_keys=True)
    if key not in _MANIFESTS:
        from dbt.cli.main import dbtRunner

        outcome = dbtRunner().invoke([*QUIET, "parse", *common])
        if not outcome.success or outcome.result is None:
            log.warning("%s: dbt parse failed; the build parses itself", stage)
            return None
        _MANIFESTS.clear()  # one environment at a time: a new run date replaces the old
        _MANIFESTS[key] = outcome.result
    return _MANIFESTS[key]


def _invoke(
    stage: str, settings: Settings, args: list[str], manifest: Any | None = None
) -> tuple[bool, list[NodeOutcome], str | None]:
    from dbt.cli.main import dbtRunner

    with duckdb_row_counter(settings) as counter:
        progress = BuildProgress(stage, row_counter=counter)
        try:
            outcome = dbtRunner(callbacks=[progress], manifest=manifest).invoke(args)
        except Exception as exc:  # dbt raised instead of reporting: configuration or a bug
            return False, [], f"dbt could not run: {exc}"
    results = getattr(outcome.result, "results", None) or []
    outcomes = [
        dataclasses.replace(o, rows=progress.rows_by_node.get(o.unique_id))
        for o in map(outcome_from_result, results)
    ]
    error = str(outcome.exception) if outcome.exception else None
    success = bool(outcome.success) and not any(o.failed for o in outcomes)
    return success, outcomes, error


@contextlib.contextmanager
def dbt_environment(settings: Settings) -> Iterator[None]:
    """Export Settings.dbt_env() and run_env() for one dbt invocation, then restore.

    dbt reads its profile through env_var() in profiles.yml and offers no other way to hand
    it configuration; the macros read the run's logical date the same way (not as --vars,
    which would void partial parsing: :func:`_common_args`). This is the one sanctioned
    place where SME Pulse writes the environment. The previous values come back afterwards,
    because the names double as Settings' own variables (SMEPULSE_DUCKDB_PATH,
    SMEPULSE_LOGICAL_DATE, ...) and must not leak into a Settings built later in the same
    process.
    """
    _dbt_dir(settings).mkdir(parents=True, exist_ok=True)
    values = {**settings.dbt_env(), **run_env(settings)}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _exclusive(settings: Settings, stage: str) -> Iterator[None]:
    if settings.warehouse != "duckdb":
        yield
        return
    with duckdb_lock(
        settings.warehouse_path,
        exclusive=True,
        timeout=settings.duckdb_lock_timeout_seconds,
        holder=f"dbt {stage}",
    ):
        yield


def _relation_exists(settings: Settings, relation: str) -> bool:
    """Whether ``silver.<name>`` / ``gold.<name>`` (the layer's schema from the settings)
    exists in the warehouse."""
    layer, _, name = relation.partition(".")
    schema = settings.silver_schema if layer == "silver" else settings.gold_schema
    if settings.warehouse != "duckdb":
        from smepulse.warehouse import TrinoWarehouse

        return TrinoWarehouse(settings).table_exists(schema, name)
    if not settings.warehouse_path.exists():
        return False
    import duckdb

    # Called with the exclusive lock held: a short read-only connection is safe.
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        row = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchone()
    finally:
        con.close()
    return bool(row and row[0])


def _write_results(
    settings: Settings,
    stage: str,
    selection: Selection,
    exclude: tuple[str, ...],
    success: bool,
    published: bool,
    outcomes: list[NodeOutcome],
    elapsed: float,
    error: str | None,
) -> Path:
    document = {
        "stage": stage,
        "select": list(selection.select),
        "exclude": list(exclude),
        "target": settings.warehouse,
        "logical_date": settings.business_date.isoformat(),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "elapsed_seconds": round(elapsed, 3),
        "success": success,
        "published": published,
        "error": error,
        **summarise(outcomes),
    }
    path = _dbt_dir(settings) / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str))
    tmp.replace(path)
    return path

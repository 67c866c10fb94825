"""The ``smepulse`` command line.

Every command builds the settings once, configures logging, and turns expected failures into
one line on stderr with a meaningful exit code: 0 success, 1 a failed stage or run, 2 bad
configuration or arguments. Heavy modules are imported inside the commands so that
``smepulse --help`` answers at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from smepulse import __version__
from smepulse.catchup import DEFAULT_MAX_RUNS as DEFAULT_CATCH_UP_RUNS
from smepulse.errors import ConfigError, StageError, StageSkipped
from smepulse.logs import setup_logging
from smepulse.settings import Settings

app = typer.Typer(
    name="smepulse",
    help="SME Pulse: a small business's data and ML pipelines, on one machine or on Kubernetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
log = logging.getLogger("smepulse")
T = TypeVar("T")

LogicalDate = Annotated[
    dt.datetime | None,
    typer.Option(
        "--logical-date",
        "-d",
        formats=["%Y-%m-%d"],
        help="Business date (YYYY-MM-DD); default today.",
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings.load(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        fail(str(exc), 2)
    setup_logging(settings)
    return settings


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; expected errors become one line and an exit code."""
    try:
        return fn()
    except ConfigError as exc:
        fail(str(exc), 2)
    except StageError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        from smepulse.unreachable import describe

        line = describe(exc)
        if line is None:
            raise
        log.debug("connection error in detail", exc_info=exc)
        fail(
            f"{line}; check the address in the settings (`smepulse settings`) and that it is up", 1
        )


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """SME Pulse: a small business's data and ML pipelines, on one machine or on Kubernetes."""


@app.command("generate-data")
def generate_data(
    end_date: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Last day of history (YYYY-MM-DD); default yesterday."
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same files.")
    ] = 42,
    scale: Annotated[
        float,
        typer.Option(min=0.01, max=100.0, help="Volume multiplier (1 = about 30,000 AR invoices)."),
    ] = 1.0,
    years: Annotated[float, typer.Option(min=0.25, max=10.0, help="Years of history.")] = 2.0,
    ingest_dates: Annotated[
        int,
        typer.Option(
            min=1,
            max=30,
            help="Ingest dates to spread the data over (later ones repeat updated rows).",
        ),
    ] = 3,
    bronze: Annotated[
        str | None,
        typer.Option(help="Bronze root (folder or s3://bucket/prefix); default from settings."),
    ] = None,
    business: Annotated[
        str,
        typer.Option(
            help="distributor (beverages/dairy/dry food) or highlands (agricultural inputs, "
            "Đắk Lắk; see docs/second-business.md)."
        ),
    ] = "distributor",
) -> None:
    """Generate a deterministic synthetic Vietnamese SME into bronze (Parquet), with anomaly labels beside it."""
    settings = load_settings(bronze_uri=bronze)
    from smepulse.synth.generate import GeneratorConfig, generate

    def make() -> GeneratorConfig:
        return GeneratorConfig(
            end_date=_date(end_date) or dt.date.today() - dt.timedelta(days=1),
            seed=seed,
            scale=scale,
            years=years,
            ingest_dates=ingest_dates,
            business=business,
        )

    guarded(lambda: generate(settings, make()))


@app.command("stage")
def stage(
    name: Annotated[
        str, typer.Argument(help="Stage name, e.g. validate-bronze (see `smepulse pipelines`).")
    ],
    logical_date: LogicalDate = None,
) -> None:
    """Run one stage: the entrypoint of every Kubernetes Job and every local run."""
    settings = load_settings(logical_date=_date(logical_date))
    from smepulse.stages import resolve

    try:
        fn = resolve(name)
    except KeyError as exc:
        fail(str(exc.args[0]), 2)
    try:
        guarded(lambda: fn(settings))
    except StageSkipped as exc:
        log.info("stage %s skipped: %s", name, exc)
        typer.echo(f"skipped: {exc}")
        return
    log.info("stage %s finished", name)


@app.command("pipelines")
def pipelines() -> None:
    """List the pipelines of the catalog with their stages."""
    load_settings()
    from smepulse.catalog import load_catalog

    for p in load_catalog().pipelines.values():
        typer.echo(f"{p.name}  ({p.schedule or 'triggered'})  {p.description}")
        for s in p.stages:
            needs = f"  <- {', '.join(s.needs)}" if s.needs else ""
            typer.echo(
                f"    {s.name}{' [trigger ' + (s.triggers or '') + ']' if s.kind == 'trigger' else ''}{needs}"
            )
        for s in p.finally_:
            typer.echo(f"    {s.name}  (finally)")


@app.command("run")
def run(
    pipeline: Annotated[
        str, typer.Argument(help="daily-etl, ml-predict, ml-training or external-sync.")
    ],
    logical_date: LogicalDate = None,
    from_stage: Annotated[
        str | None, typer.Option(help="Re-run this stage and everything downstream.")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(help="Comma-separated stages to run (their needs are taken as done)."),
    ] = None,
    no_trigger: Annotated[
        bool, typer.Option("--no-trigger", help="Do not start triggered pipelines.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the newest unfinished run of this pipeline and date (interrupted, "
            "failed or cancelled) from its first stage that did not succeed.",
        ),
    ] = False,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up",
            help="Run the days missed since the last logical date that succeeded, up to the "
            "logical date (default today), oldest first (daily pipelines).",
        ),
    ] = False,
    max_catch_up: Annotated[
        int, typer.Option(min=1, max=366, help="At most this many days per catch-up.")
    ] = DEFAULT_CATCH_UP_RUNS,
) -> None:
    """Run a pipeline on this machine: stages as subprocesses, in DAG order, parallel where allowed."""
    settings = load_settings()
    if catch_up:
        if from_stage or only or resume:
            fail("--catch-up runs whole days: drop --from-stage/--only/--resume", 2)
        from smepulse.runner.catchup import catch_up_locally

        ok = guarded(
            lambda: catch_up_locally(
                settings, pipeline, _date(logical_date), max_catch_up, not no_trigger
            )
        )
        raise typer.Exit(0 if ok else 1)
    from smepulse.runner import run_pipeline

    ok = guarded(
        lambda: run_pipeline(
            settings,
            pipeline,
            logical_date=_date(logical_date),
            from_stage=from_stage,
            only=[s.strip() for s in only.split(",") if s.strip()] if only else None,
            follow_triggers=not no_trigger,
            resume=resume,
        )
    )
    raise typer.Exit(0 if ok else 1)


@app.command("backfill")
def backfill(
    pipeline: Annotated[str, typer.Argument(help="Pipeline to run once per logical date.")],
    start: Annotated[
        dt.datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First logical date.")
    ],
    end: Annotated[
        dt.datetime,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last logical date (inclusive)."),
    ],
) -> None:
    """Run a pipeline for every date in a range, in order; re-running skips dates already done."""
    settings = load_settings()
    if end < start:
        fail("--to is before --from", 2)
    from smepulse.runner import backfill as do_backfill

    ok = guarded(lambda: do_backfill(settings, pipeline, start.date(), end.date()))
    raise typer.Exit(0 if ok else 1)


@app.command("runs")
def runs(limit: Annotated[int, typer.Option(min=1, help="How many runs to list.")] = 20) -> None:
    """List the history of local runs (newest first)."""
    settings = load_settings()
    from smepulse.runner import print_history

    guarded(lambda: print_history(settings, limit))


@app.command("demo")
def demo(
    end_date: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="Last day of synthetic history; default yesterday."
        ),
    ] = None,
    scale: Annotated[
        float, typer.Option(min=0.01, max=100.0, help="Data volume multiplier.")
    ] = 1.0,
) -> None:
    """Fresh machine to results: generate data, external-sync, daily-etl, ml-training, ml-predict."""
    settings = load_settings()
    from smepulse.demo import run_demo

    ok = guarded(lambda: run_demo(settings, end_date=_date(end_date), scale=scale))
    raise typer.Exit(0 if ok else 1)


@app.command("submit")
def submit(
    pipeline: Annotated[str, typer.Argument(help="Pipeline to run in the cluster.")],
    logical_date: LogicalDate = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Namespace; default from settings/kubeconfig."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE passed to stages (repeatable)."),
    ] = None,
    catch_up: Annotated[
        bool,
        typer.Option(
            "--catch-up",
            help="Also submit the days missed since the last logical date that succeeded, "
            "oldest first, queued (daily pipelines).",
        ),
    ] = False,
    max_catch_up: Annotated[
        int, typer.Option(min=1, max=366, help="At most this many days per catch-up.")
    ] = DEFAULT_CATCH_UP_RUNS,
) -> None:
    """Create a PipelineRun in the cluster, idempotently (deterministic name <pipeline>-<YYYYMMDD>)."""
    settings = load_settings(kube_namespace=namespace)
    params: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--param {item!r}: expected KEY=VALUE", 2)
        params[key] = value
    from smepulse_operator.submit import submit_catch_up, submit_run

    if catch_up:
        guarded(
            lambda: submit_catch_up(settings, pipeline, _date(logical_date), params, max_catch_up)
        )
        return
    guarded(lambda: submit_run(settings, pipeline, _date(logical_date), params))


Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Namespace; default from settings/kubeconfig."),
]
RunName = Annotated[str, typer.Argument(help="PipelineRun name, e.g. daily-etl-20260630.")]


@app.command("watch")
def watch(run: RunName, namespace: Namespace = None) -> None:
    """Follow a PipelineRun with the local run's stage table until it ends (exit code as `run`)."""
    settings = load_settings(kube_namespace=namespace)
    from smepulse_operator.follow import watch_run

    raise typer.Exit(guarded(lambda: watch_run(settings, run)))


@app.command("logs")
def logs(
    run: RunName,
    stage: Annotated[str | None, typer.Option("--stage", "-s", help="Only this stage.")] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep streaming new stages' Pods until the run ends."),
    ] = False,
    namespace: Namespace = None,
) -> None:
    """Print a PipelineRun's stage Pod logs, prefixed with the stage when several."""
    settings = load_settings(kube_namespace=namespace)
    from smepulse_operator.follow import print_logs

    raise typer.Exit(guarded(lambda: print_logs(settings, run, stage, follow)))


def _control(action: str, run: str, namespace: str | None) -> None:
    settings = load_settings(kube_namespace=namespace)
    from smepulse_operator.control import set_control

    guarded(lambda: set_control(settings, run, action))


@app.command("cancel")
def cancel(run: RunName, namespace: Namespace = None) -> None:
    """Cancel a PipelineRun (spec.cancel=true): running stages stop, finally stages run."""
    _control("cancel", run, namespace)


@app.command("suspend")
def suspend(run: RunName, namespace: Namespace = None) -> None:
    """Suspend a PipelineRun (spec.suspend=true): running stages finish, no new one starts."""
    _control("suspend", run, namespace)


@app.command("resume")
def resume_run(run: RunName, namespace: Namespace = None) -> None:
    """Resume a suspended PipelineRun (spec.suspend=false)."""
    _control("resume", run, namespace)


@app.command("retry")
def retry(run: RunName, namespace: Namespace = None) -> None:
    """Re-run a Failed PipelineRun from its failed stage, as a new run <run>-retry<n> (idempotent)."""
    settings = load_settings(kube_namespace=namespace)
    from smepulse_operator.control import retry_run

    guarded(lambda: retry_run(settings, run))


@app.command("operator")
def operator_cmd(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Namespace(s) to watch; default all."),
    ] = None,
    standalone: Annotated[
        bool, typer.Option(help="Run without kopf peering (one replica).")
    ] = True,
) -> None:
    """Start the kopf operator that runs PipelineRuns as Kubernetes Jobs."""
    settings = load_settings()
    from smepulse_operator.main import run_operator

    guarded(lambda: run_operator(settings, namespaces=namespace or [], standalone=standalone))


alerts_app = typer.Typer(
    help="UC10 alerts: list this week's, record verdicts (confirmed / false positive).",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts_list(ctx: typer.Context) -> None:
    """List the alerts of the last uc10-detect run, with any verdict recorded."""
    if ctx.invoked_subcommand is not None:
        return
    from smepulse.ml.uc10_feedback import current_alerts

    settings = load_settings()
    frame = guarded(lambda: current_alerts(settings))
    typer.echo(f"{len(frame)} alert(s) of the last uc10-detect run")
    for row in frame.to_dict("records"):
        verdict = row["verdict"] if isinstance(row["verdict"], str) else "not reviewed"
        amount = float(row["amount_vnd"])
        typer.echo(
            f"{row['anomaly_rank']:>4}  {row['txn_id']}  {row['txn_at']} UTC  {amount:>15,.0f} ₫  "
            f"{row['counterparty']}  score {row['anomaly_score']:.3f}  "
            f"[{row['model_name']} v{row['model_version']}]  {verdict}"
        )
        typer.echo(f"      {row['reasons']}")


@alerts_app.command("review")
def alerts_review(
    txn_id: Annotated[str, typer.Argument(help="The bank transaction (txn_id) reviewed.")],
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="A real problem (an anomaly).")
    ] = False,
    false_positive: Annotated[
        bool, typer.Option("--false-positive", help="Nothing wrong (a false alarm).")
    ] = False,
    note: Annotated[str | None, typer.Option(help="Free-text note.")] = None,
) -> None:
    """Record a verdict on an alert (a new file in the bronze table alert_feedback)."""
    from smepulse.ml.uc10_feedback import CONFIRMED, FALSE_POSITIVE, review

    if confirmed == false_positive:
        fail("say exactly one of --confirmed or --false-positive", 2)
    settings = load_settings()
    verdict = CONFIRMED if confirmed else FALSE_POSITIVE
    uri = guarded(lambda: review(settings, txn_id, verdict, note))
    typer.echo(f"{txn_id}: {verdict} recorded in {uri}")


@app.command("settings")
def show_settings() -> None:
    """Print the effective configuration (secrets masked)."""
    settings = load_settings()
    for key, value in settings.model_dump().items():
        typer.echo(f"{key} = {value}")
    typer.echo(f"(derived) bronze_root = {settings.bronze_root}")
    typer.echo(f"(derived) warehouse_path = {settings.warehouse_path}")
    typer.echo(f"(derived) tracking_uri = {settings.tracking_uri}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigError as exc:  # pragma: no cover - guarded() handles the usual paths
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

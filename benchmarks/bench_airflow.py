"""Side by side: ``smepulse run daily-etl`` against Apache Airflow 3 running the same stages.

Airflow is the seed's orchestrator. This script installs it in its own virtualenv
(``$SMEPULSE_CACHE/bench/airflow-<version>``, made once and reused, pinned by
``benchmarks/airflow-<version>-pins.txt``), starts PostgreSQL on a free loopback port for its
metadata database (``tests.services.procs.postgres``, as the tests do), runs ``airflow db
migrate`` and then Airflow's own processes with the LocalExecutor: ``api-server`` (loopback
only), ``dag-processor`` and ``scheduler``. ``AIRFLOW_HOME`` is a temporary folder.

The DAG it writes is the seed's shape for daily-etl, derived from the catalog
(``smepulse.catalog``): one BashOperator per stage, running exactly the command the local
runner runs (``<python> -m smepulse.cli stage <name> --logical-date D``) with exactly the
environment the runner gives that stage (``smepulse.runner.env``: the settings written back as
``SMEPULSE_*`` plus the per-run fields), the catalog's ``needs`` as dependencies, its retries
and timeouts; the trigger stage is an EmptyOperator (the runner's ``--no-trigger`` records it
done without running anything) and the finally stage ``notify`` runs after every other task
whatever happened (``trigger_rule=all_done``).

After an untimed warm-up of each, it alternates ``smepulse run daily-etl --no-trigger`` and an
Airflow DAG run (triggered through the REST API and polled until terminal) ``--runs`` times on
the same data and logical date, and prints min/median/max wall, the sum of stage times, the
critical path, the orchestration overhead and the smepulse/Airflow ratio of median walls.
Every process it started is stopped on exit, Ctrl-C and SIGTERM included.

    python benchmarks/bench_airflow.py [--runs 3] [--scale 1] [--airflow-version 3.3.2]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.venvs import UV, cached_venv  # noqa: E402
from smepulse.catalog import Pipeline, load_catalog  # noqa: E402
from smepulse.runner import history as runs_store  # noqa: E402
from smepulse.runner.env import settings_env, stage_env  # noqa: E402
from smepulse.runner.execute import default_command  # noqa: E402
from smepulse.settings import Settings  # noqa: E402
from tests.services.procs import free_port, postgres  # noqa: E402

AIRFLOW_VERSION = "3.3.2"
PIPELINE = "daily-etl"
DAG_ID = "sme_pulse_daily_etl"
# Environment variables a stage may need from the caller; everything else is left out so
# both orchestrators hand their stages the same, known environment.
PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE")

OVERHEAD_DEFINITION = (
    "overhead = wall - critical path, where wall runs from the command (smepulse) or the "
    "REST trigger (Airflow) until the run is seen finished, and the critical path is the "
    "longest chain of stage times along the DAG's edges (daily-etl is a chain, so it equals "
    "the stage sum); stage times are what each orchestrator records for its stages "
    "(smepulse: run.json duration; Airflow: task instance duration)"
)


# -- the DAG ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One Airflow task of the generated DAG (a catalog stage)."""

    name: str
    operator: str  # "bash" | "empty"
    upstream: tuple[str, ...]
    command: str
    env: Mapping[str, str]
    retries: int
    retry_delay_seconds: int
    timeout_seconds: int
    trigger_rule: str  # "all_success" | "all_done"


def dag_tasks(pipeline: Pipeline, base_env: Mapping[str, str], logical_date: dt.date) -> list[Task]:
    """The tasks of ``pipeline`` as the local runner would run them for ``logical_date``.

    The command and the per-stage environment come from the runner's own functions
    (``default_command``, ``stage_env``); Airflow's run id replaces the runner's
    (``{{ run_id }}``, rendered by Airflow). A finally stage depends on every main stage
    and runs whatever they did; it is told the run succeeded (a failed run stops the
    benchmark anyway).
    """
    main = [s.name for s in pipeline.stages]
    tasks: list[Task] = []
    for stage in pipeline.all_stages:
        is_finally = stage.name not in main
        env = stage_env(
            base_env,
            logical_date=logical_date,
            run_id="{{ run_id }}",
            pipeline=pipeline.name,
            params={},
            outcome="Succeeded" if is_finally else None,
        )
        tasks.append(
            Task(
                name=stage.name,
                operator="empty" if stage.kind == "trigger" else "bash",
                upstream=tuple(main) if is_finally else stage.needs,
                command=shlex.join(default_command(stage.name, logical_date)),
                env=env,
                retries=stage.retries.limit,
                retry_delay_seconds=stage.retries.backoff_seconds,
                timeout_seconds=stage.timeout_seconds,
                trigger_rule="all_done" if is_finally else "all_success",
            )
        )
    return tasks


_DAG_TEMPLATE = '''"""daily-etl as the seed ran it: one BashOperator per stage (written by bench_airflow.py)."""

import datetime
import json

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

SPEC = json.loads({spec!r})

with DAG(
    dag_id=SPEC["dag_id"],
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["smepulse-bench"],
) as dag:
    ops = {{}}
    for t in SPEC["tasks"]:
        if t["operator"] == "empty":
            ops[t["name"]] = EmptyOperator(task_id=t["name"], trigger_rule=t["trigger_rule"])
            continue
        ops[t["name"]] = BashOperator(
            task_id=t["name"],
            bash_command=t["command"],
            env=t["env"],
            append_env=False,
            retries=t["retries"],
            retry_delay=datetime.timedelta(seconds=t["retry_delay_seconds"]),
            execution_timeout=datetime.timedelta(seconds=t["timeout_seconds"]),
            trigger_rule=t["trigger_rule"],
        )
    for t in SPEC["tasks"]:
        for up in t["upstream"]:
            ops[up] >> ops[t["name"]]
'''


def dag_source(tasks: Sequence[Task], dag_id: str = DAG_ID) -> str:
    """The DAG file: the task list as JSON data and a loop that builds the operators."""
    spec = {
        "dag_id": dag_id,
        "tasks": [
            {
                "name": t.name,
                "operator": t.operator,
                "upstream": list(t.upstream),
                "command": t.command,
                "env": dict(t.env),
                "retries": t.retries,
                "retry_delay_seconds": t.retry_delay_seconds,
                "timeout_seconds": t.timeout_seconds,
                "trigger_rule": t.trigger_rule,
            }
            for t in tasks
        ],
    }
    return _DAG_TEMPLATE.format(spec=json.dumps(spec, sort_keys=True))


def critical_path(upstream: Mapping[str, Sequence[str]], seconds: Mapping[str, float]) -> float:
    """The longest sum of ``seconds`` along any chain of ``upstream`` edges."""
    memo: dict[str, float] = {}

    def finish(name: str) -> float:
        if name not in memo:
            memo[name] = seconds.get(name, 0.0) + max(
                (finish(u) for u in upstream.get(name, ())), default=0.0
            )
        return memo[name]

    return max((finish(n) for n in upstream), default=0.0)


# -- processes -------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return kids


def stop_tree(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM ``proc`` and every descendant (Airflow's task processes start their own
    sessions, so a process group is not enough), then SIGKILL what is left after ``grace``."""
    kids = _children()
    tree, todo = [], [proc.pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(kids.get(pid, []))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            if not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in tree):
                return
            time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextlib.contextmanager
def started(
    argv: list[str], env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running in its own session, output to ``log``; stopped (with its tree) at exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_tree(proc)


def settings_from(env: Mapping[str, str]) -> Settings:
    """The Settings a process started with exactly ``env`` builds (as ``smepulse run`` does)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


# -- Airflow ---------------------------------------------------------------------------------
def airflow_venv(version: str) -> Path:
    """Airflow's own virtualenv, created once under the cache (never the project's)."""

    def install(venv: Path, env: dict[str, str]) -> None:
        pins = REPO / "benchmarks" / f"airflow-{version}-pins.txt"
        extra = ["-c", str(pins)] if pins.exists() else []
        if not extra:
            print(f"  (no {pins.name}: unpinned resolution)", flush=True)
        subprocess.run(
            [str(UV), "pip", "install", "-q", "--python", str(venv / "bin/python"),
             f"apache-airflow[postgres]=={version}", *extra],
            env=env,
            check=True,
        )  # fmt: skip

    return cached_venv(f"airflow-{version}", f"apache-airflow[postgres]=={version}", install)


class AirflowApi:
    """The few REST calls the benchmark needs (api-server on loopback, all users admin)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""

    def call(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def wait_ready(self, timeout: float, logs: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                self.token = self.call("GET", "/auth/token")["access_token"]
                return
            time.sleep(0.5)
        sys.exit(
            f"Airflow's api-server did not answer on {self.base} in {timeout:.0f}s; see {logs}"
        )

    def wait_dag(self, dag_id: str, timeout: float, logs: Path) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(urllib.error.HTTPError):
                dag = self.call("GET", f"/api/v2/dags/{dag_id}")
                if dag.get("is_paused"):
                    self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
                return
            time.sleep(1.0)
        sys.exit(f"DAG {dag_id} not parsed by the dag-processor in {timeout:.0f}s; see {logs}")


@dataclass
class Timing:
    wall: float
    stages: dict[str, float]


def airflow_run(api: AirflowApi, run_id: str, timeout: float) -> Timing:
    started_at = time.monotonic()
    api.call(
        "POST",
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        {"dag_run_id": run_id, "logical_date": None, "conf": {}},
    )
    deadline = started_at + timeout
    while True:
        state = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            wall = time.monotonic() - started_at
            break
        if time.monotonic() > deadline:
            sys.exit(f"Airflow run {run_id} still {state} after {timeout:.0f}s")
        time.sleep(0.2)
    tis = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    if state != "success":
        bad = [f"{t['task_id']}={t['state']}" for t in tis["task_instances"]]
        sys.exit(
            f"Airflow run {run_id} {state}: {', '.join(bad)} (task logs under AIRFLOW_HOME/logs)"
        )
    return Timing(wall, {t["task_id"]: float(t["duration"] or 0.0) for t in tis["task_instances"]})


# -- smepulse --------------------------------------------------------------------------------
def smepulse_run(env: Mapping[str, str], settings: Settings, day: dt.date, log: Path) -> Timing:
    argv = [
        sys.executable,
        "-m",
        "smepulse.cli",
        "run",
        PIPELINE,
        "-d",
        day.isoformat(),
        "--no-trigger",
    ]
    started_at = time.monotonic()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait()
        finally:
            stop_tree(proc)
    wall = time.monotonic() - started_at
    record = runs_store.runs_for(settings.runs_dir, PIPELINE, day)[-1]
    if code != 0 or record.status != "Succeeded":
        sys.exit(
            f"smepulse run {PIPELINE} failed (exit {code}, {record.run_id} {record.status}); see {log}"
        )
    return Timing(wall, {s.name: s.duration_seconds or 0.0 for s in record.stages})


def _prepare(env: Mapping[str, str], home: Path, scale: float, day: dt.date) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smepulse.cli", "generate-data", "--end-date", day.isoformat(), "--scale", str(scale)],
        env=dict(env), capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"generate-data into {home} failed:\n{done.stderr[-3000:]}")


def _summary(name: str, runs: Sequence[Timing], upstream: Mapping[str, Sequence[str]]) -> float:
    walls = [r.wall for r in runs]
    sums = [sum(r.stages.values()) for r in runs]
    over = [r.wall - critical_path(upstream, r.stages) for r in runs]
    med = statistics.median(walls)
    print(
        f"{name:<30} wall min/median/max {min(walls):6.1f} / {med:6.1f} / {max(walls):6.1f} s"
        f"   stage sum (median) {statistics.median(sums):6.1f} s"
        f"   overhead (median) {statistics.median(over):5.1f} s"
    )
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (alternated)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="data volume (1 = ~30,000 AR invoices)"
    )
    parser.add_argument("--logical-date", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    parser.add_argument("--airflow-version", default=AIRFLOW_VERSION)
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (data, AIRFLOW_HOME, logs)"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _sigterm)

    venv = airflow_venv(args.airflow_version)
    work = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    keep = bool(args.keep)
    home, af_home = work / "home", work / "airflow"
    (af_home / "dags").mkdir(parents=True)
    try:
        # The caller's SMEPULSE_* reach both sides alike (e.g. SMEPULSE_RUNNER_DBT_WORKER=false).
        env = {
            k: v for k, v in os.environ.items() if k in PASS_THROUGH or k.startswith("SMEPULSE_")
        }
        env.update(
            SMEPULSE_HOME=str(home),
            # The World Bank API is out of reach: a closed port, so nothing waits on it.
            SMEPULSE_WORLDBANK_BASE_URL="http://127.0.0.1:9",
            SMEPULSE_HTTP_RETRIES="0",
        )
        settings = settings_from(env)
        base_env = settings_env(settings, env)
        pipeline = load_catalog().pipeline(PIPELINE)
        tasks = dag_tasks(pipeline, base_env, args.logical_date)
        upstream = {t.name: t.upstream for t in tasks}
        (af_home / "dags" / f"{DAG_ID}.py").write_text(dag_source(tasks))

        t0 = time.monotonic()
        _prepare(env, home, args.scale, args.logical_date)
        print(
            f"data: scale {args.scale:g} for {args.logical_date} in {home} ({time.monotonic() - t0:.1f}s)"
        )

        with contextlib.ExitStack() as stack:
            dsn = stack.enter_context(postgres(work / "pg"))
            port = free_port()
            af_env = {
                "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "HOME": os.environ.get("HOME", "/root"),
                "LANG": "C.UTF-8",
                "AIRFLOW_HOME": str(af_home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(af_home / "dags"),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn.replace(
                    "postgresql://", "postgresql+psycopg2://", 1
                ),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(af_home / "logs"),
            }
            airflow = str(venv / "bin" / "airflow")
            t0 = time.monotonic()
            migrate = subprocess.run(
                [airflow, "db", "migrate"], env=af_env, capture_output=True, text=True
            )
            if migrate.returncode != 0:
                sys.exit(
                    f"airflow db migrate failed:\n{migrate.stdout[-2000:]}{migrate.stderr[-2000:]}"
                )
            print(
                f"airflow {args.airflow_version}: db migrate on PostgreSQL {dsn.rsplit('@', 1)[1]} ({time.monotonic() - t0:.1f}s)"
            )
            stack.enter_context(
                started([airflow, "api-server"], af_env, af_home / "api-server.log")
            )
            stack.enter_context(
                started([airflow, "dag-processor"], af_env, af_home / "dag-processor.log")
            )
            stack.enter_context(
                started(
                    [airflow, "scheduler", "--skip-serve-logs"], af_env, af_home / "scheduler.log"
                )
            )
            api = AirflowApi(port)
            api.wait_ready(120, af_home / "api-server.log")
            api.wait_dag(DAG_ID, 180, af_home / "dag-processor.log")
            print(
                f"airflow: api-server, dag-processor and scheduler up, DAG {DAG_ID} parsed ({time.monotonic() - t0:.1f}s)"
            )

            mine: list[Timing] = []
            theirs: list[Timing] = []
            log = work / "smepulse-run.log"
            for i in range(args.warmup + args.runs):
                timed = i >= args.warmup
                label = f"run {i - args.warmup + 1}" if timed else f"warm-up {i + 1}"
                a = smepulse_run(env, settings, args.logical_date, log)
                b = airflow_run(api, f"bench-{i + 1}", 3600)
                print(
                    f"{label}: smepulse {a.wall:6.1f} s   airflow {b.wall:6.1f} s   (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                if timed:
                    mine.append(a)
                    theirs.append(b)

        print(
            f"\ndaily-etl, scale {args.scale:g}, {args.runs} runs each, alternated, on "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end"
        )
        ours = _summary("smepulse run daily-etl", mine, upstream)
        airflow_med = _summary(f"Airflow {args.airflow_version} LocalExecutor", theirs, upstream)
        print(f"ratio smepulse/Airflow median wall: {ours / airflow_med:.2f}")
        print(f"({OVERHEAD_DEFINITION})")
        print("per stage, median s:   smepulse   airflow")
        for t in tasks:
            s = statistics.median(r.stages.get(t.name, 0.0) for r in mine)
            f = statistics.median(r.stages.get(t.name, 0.0) for r in theirs)
            print(f"  {t.name:<20} {s:8.1f}  {f:8.1f}")
    except KeyboardInterrupt:
        print("interrupted: stopping every process started here", file=sys.stderr)
        raise SystemExit(130) from None
    except SystemExit as exc:
        # A failed run: keep the logs its message points at.
        keep = keep or exc.code not in (0, None)
        raise
    finally:
        if keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The runner's scheduling with fake stage commands (tiny ``python -c`` processes).

The real ``smepulse stage`` path is covered by the e2e tests; here each stage is a short
script chosen per stage name, so failures, retries, timeouts and parallelism are exercised
with real subprocesses but no data.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from smepulse.catalog import Catalog, parse_catalog
from smepulse.runner import backfill, print_history, run_pipeline
from smepulse.runner import history as runs_store
from smepulse.runner.execute import StageCommand
from smepulse.settings import Settings

pytestmark = pytest.mark.unit

DAY = dt.date(2025, 3, 14)
#: What the catalog says the stages run; never called here (the stage command is faked).
RUN = "smepulse.stages.notify:run"


def catalog(timeout: int = 30, retries: int = 0) -> Catalog:
    doc = {
        "defaults": {"timeoutSeconds": timeout, "retries": {"limit": retries, "backoffSeconds": 0}},
        "pipelines": {
            "p": {
                "stages": [
                    {"name": "a", "run": RUN},
                    {"name": "b", "needs": ["a"], "run": RUN},
                    {"name": "c", "run": RUN},
                    {"name": "d", "needs": ["b", "c"], "run": RUN},
                    {"name": "go", "kind": "trigger", "triggers": "child", "needs": ["d"]},
                ],
                "finally": [{"name": "notify", "run": RUN}],
            },
            "child": {"stages": [{"name": "x", "run": RUN}]},
        },
    }
    return parse_catalog(doc)


def fake(scripts: dict[str, str], marks: Path) -> StageCommand:
    """Every stage appends its name to ``marks/ran``; then runs its script (default: ok)."""

    def command(name: str, logical_date: dt.date) -> list[str]:
        prelude = (
            "import os, sys, time, json, pathlib\n"
            f"pathlib.Path({str(marks)!r}).mkdir(exist_ok=True)\n"
            f"with open({str(marks / 'ran')!r}, 'a') as fh: fh.write({name!r} + '\\n')\n"
        )
        return [sys.executable, "-c", prelude + scripts.get(name, "pass")]

    return command


def ran(marks: Path) -> list[str]:
    path = marks / "ran"
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", runner_max_parallel=2)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def record(settings: Settings, run_id: str) -> runs_store.RunRecord:
    loaded = runs_store.load(settings.runs_dir / run_id / "run.json")
    assert loaded is not None
    return loaded


def states(rec: runs_store.RunRecord) -> dict[str, str]:
    return {s.name: s.state for s in rec.stages}


def test_success_runs_everything_in_order_then_the_triggered_child(
    settings: Settings, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    ok = run_pipeline(
        settings, "p", DAY, catalog=catalog(), command=fake({}, marks), console=quiet()
    )
    assert ok
    order = ran(marks)
    assert (
        order.index("a")
        < order.index("b")
        < order.index("d")
        < order.index("notify")
        < order.index("x")
    )
    parent = record(settings, "p-20250314")
    assert parent.status == "Succeeded"
    assert parent.triggered == ["child-20250314"]
    assert record(settings, "child-20250314").triggered_by == "p-20250314"
    assert (settings.runs_dir / "p-20250314" / "a.log").exists()


def test_failure_stops_dependants_not_independent_branches_and_notify_gets_outcome(
    settings: Settings, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    scripts = {
        "a": "print('error: bronze file x.parquet row 3: null key', file=sys.stderr); sys.exit(1)",
        "notify": f"pathlib.Path({str(marks / 'env.json')!r}).write_text(json.dumps({{k: v for k, v in os.environ.items() if k.startswith('SMEPULSE_')}}))",
    }
    ok = run_pipeline(
        settings, "p", DAY, catalog=catalog(), command=fake(scripts, marks), console=quiet()
    )
    assert not ok
    assert sorted(ran(marks)) == ["a", "c", "notify"]  # b, d blocked; no child started
    rec = record(settings, "p-20250314")
    assert rec.status == "Failed" and rec.failed_stage == "a"
    assert rec.failure_message == "bronze file x.parquet row 3: null key"
    assert states(rec) == {
        "a": "Failed", "b": "Skipped", "c": "Succeeded", "d": "Skipped",
        "go": "Skipped", "notify": "Succeeded",
    }  # fmt: skip
    env = json.loads((marks / "env.json").read_text())
    assert env["SMEPULSE_RUN_OUTCOME"] == "Failed"
    assert env["SMEPULSE_FAILED_STAGE"] == "a"
    assert env["SMEPULSE_FAILURE_MESSAGE"] == "bronze file x.parquet row 3: null key"
    assert env["SMEPULSE_RUN_ID"] == "p-20250314" and env["SMEPULSE_LOGICAL_DATE"] == "2025-03-14"
    assert env["SMEPULSE_HOME"] == str(settings.home.resolve())  # settings passed explicitly


def test_retries_until_success_with_one_log_per_attempt(settings: Settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    counter = marks / "c.count"
    flaky = (
        f"p = pathlib.Path({str(counter)!r}); n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1)); sys.exit(0 if n >= 2 else 3)"
    )
    ok = run_pipeline(
        settings,
        "p",
        DAY,
        catalog=catalog(retries=2),
        command=fake({"c": flaky}, marks),
        console=quiet(),
        follow_triggers=False,
    )
    assert ok
    rec = record(settings, "p-20250314")
    c = rec.stage("c")
    assert c.attempts == 3 and c.state == "Succeeded"
    assert [Path(p).name for p in c.logs] == ["c.log", "c.2.log", "c.3.log"]
    go = rec.stage("go")  # follow_triggers=False: done, nothing started
    assert go.state == "Succeeded" and go.message == "child not started (triggers disabled)"


def test_retries_exhausted_fail_the_stage(settings: Settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    ok = run_pipeline(
        settings,
        "p",
        DAY,
        catalog=catalog(retries=1),
        command=fake({"d": "sys.exit(2)"}, marks),
        console=quiet(),
    )
    assert not ok
    rec = record(settings, "p-20250314")
    assert rec.stage("d").attempts == 2 and rec.stage("d").state == "Failed"
    assert ran(marks).count("d") == 2


def test_timeout_kills_the_whole_process_group(settings: Settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    pidfile = marks / "grandchild.pid"
    sleeper = (
        "import subprocess\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"pathlib.Path({str(pidfile)!r}).write_text(str(child.pid))\n"
        "time.sleep(60)"
    )
    started = time.monotonic()
    ok = run_pipeline(
        settings,
        "p",
        DAY,
        catalog=catalog(timeout=2),
        command=fake({"a": sleeper}, marks),
        console=quiet(),
    )
    assert not ok
    assert time.monotonic() - started < 20
    rec = record(settings, "p-20250314")
    assert rec.status == "TimedOut" and rec.stage("a").state == "Failed"
    assert rec.stage("a").message == "timed out after 2s (attempt 1)"
    grandchild = int(pidfile.read_text())
    assert not alive(grandchild)


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting for a reaper that is not ours counts as dead)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        if state in {"Z", "X"}:
            return False
        time.sleep(0.1)
    return True


def test_independent_stages_run_in_parallel_within_the_bound(
    settings: Settings, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    slow = {"a": "time.sleep(1.5)", "c": "time.sleep(1.5)"}
    run_pipeline(
        settings,
        "p",
        DAY,
        catalog=catalog(),
        command=fake(slow, marks),
        console=quiet(),
        follow_triggers=False,
    )
    rec = record(settings, "p-20250314")
    a, c = rec.stage("a"), rec.stage("c")
    assert a.started_at and c.started_at and a.finished_at and c.finished_at
    assert c.started_at < a.finished_at and a.started_at < c.finished_at  # overlapped

    serial = settings.model_copy(update={"runner_max_parallel": 1})
    run_pipeline(
        serial,
        "p",
        DAY,
        catalog=catalog(),
        command=fake(slow, marks),
        console=quiet(),
        follow_triggers=False,
    )
    rec = record(settings, "p-20250314-2")
    a, c = rec.stage("a"), rec.stage("c")
    assert a.finished_at and c.started_at and a.finished_at <= c.started_at


def test_from_stage_resumes_downstream_only_with_a_new_run_id(
    settings: Settings, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    assert not run_pipeline(
        settings,
        "p",
        DAY,
        catalog=catalog(),
        command=fake({"b": "sys.exit(1)"}, marks),
        console=quiet(),
    )
    (marks / "ran").unlink()
    ok = run_pipeline(
        settings,
        "p",
        DAY,
        from_stage="b",
        catalog=catalog(),
        command=fake({}, marks),
        console=quiet(),
        follow_triggers=False,
    )
    assert ok
    assert sorted(ran(marks)) == ["b", "d", "notify"]
    rec = record(settings, "p-20250314-2")
    assert rec.from_stage == "b" and [s.name for s in rec.stages] == ["b", "d", "go", "notify"]


def test_skipped_stage_is_recorded_with_its_reason(settings: Settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    ok = run_pipeline(
        settings,
        "p",
        DAY,
        only=["c"],
        catalog=catalog(),
        command=fake({"c": "print('skipped: nothing configured')"}, marks),
        console=quiet(),
    )
    assert ok
    c = record(settings, "p-20250314").stage("c")
    assert c.state == "Succeeded" and c.message == "skipped: nothing configured"


def test_backfill_is_resumable(settings: Settings, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    fail_15 = {"a": "sys.exit(1 if os.environ['SMEPULSE_LOGICAL_DATE'] == '2025-03-15' else 0)"}
    last = DAY + dt.timedelta(days=2)

    def p_runs() -> list[str]:
        return sorted(r.run_id for r in runs_store.history(settings.runs_dir) if r.pipeline == "p")

    assert not backfill(
        settings, "p", DAY, last, catalog=catalog(), command=fake(fail_15, marks), console=quiet()
    )
    assert p_runs() == ["p-20250314", "p-20250315"]  # stopped at the failed date
    assert backfill(
        settings, "p", DAY, last, catalog=catalog(), command=fake({}, marks), console=quiet()
    )
    assert p_runs() == ["p-20250314", "p-20250315", "p-20250315-2", "p-20250316"]  # 14th not re-run
    assert ran(marks).count("x") == 3  # each successful date triggered its child once


def test_from_stage_is_refused_on_an_upstream_another_date_published_last(
    settings: Settings, tmp_path: Path
) -> None:
    """d publishes on top of b and c (and a): each must have succeeded last for this date."""
    from smepulse.errors import ConfigError

    marks = tmp_path / "marks"
    with pytest.raises(ConfigError) as never:
        run_pipeline(settings, "p", DAY, from_stage="d", catalog=catalog(), console=quiet())
    assert str(never.value) == (
        "cannot start p at d for 2025-03-14: upstream stage a has never succeeded; "
        "run the whole p pipeline for 2025-03-14 first"
    )
    assert not marks.exists() and not list(settings.runs_dir.glob("*"))
    later = DAY + dt.timedelta(days=1)
    for day in (DAY, later):
        assert run_pipeline(
            settings, "p", day, catalog=catalog(), command=fake({}, marks), console=quiet(),
            follow_triggers=False,
        )  # fmt: skip
    with pytest.raises(ConfigError, match=r"stage a last published for 2025-03-15, not 2025-03-14"):
        run_pipeline(settings, "p", DAY, from_stage="d", catalog=catalog(), console=quiet())
    # The newest day is fine. Re-running a for D also re-runs d, which needs c: c too.
    kinds = {"catalog": catalog(), "command": fake({}, marks), "console": quiet()}
    assert run_pipeline(settings, "p", later, from_stage="d", follow_triggers=False, **kinds)
    with pytest.raises(ConfigError, match=r"stage c last published for 2025-03-15, not .*whole"):
        run_pipeline(settings, "p", DAY, from_stage="a", follow_triggers=False, **kinds)
    with pytest.raises(ConfigError, match=r"stage a last .*; run the whole p pipeline for 2025"):
        run_pipeline(settings, "p", DAY, from_stage="c", follow_triggers=False, **kinds)
    # A whole run of D rebuilds everything for D; then a partial run of D may start anywhere.
    assert run_pipeline(settings, "p", DAY, follow_triggers=False, **kinds)
    assert run_pipeline(settings, "p", DAY, from_stage="d", follow_triggers=False, **kinds)


def test_unknown_names_are_configuration_errors(settings: Settings) -> None:
    from smepulse.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown pipeline 'nope'"):
        run_pipeline(settings, "nope", DAY, catalog=catalog(), console=quiet())
    with pytest.raises(ConfigError, match="no stage 'zz'"):
        run_pipeline(settings, "p", DAY, from_stage="zz", catalog=catalog(), console=quiet())


def test_history_lists_runs(settings: Settings, tmp_path: Path) -> None:
    run_pipeline(
        settings,
        "p",
        DAY,
        only=["a"],
        catalog=catalog(),
        command=fake({}, tmp_path / "m"),
        console=quiet(),
    )
    out = Console(record=True, width=200)
    print_history(settings, 10, console=out)
    text = out.export_text()
    assert "p-20250314" in text and "Succeeded" in text


CANCEL_SCRIPT = """
import datetime as dt, sys
from pathlib import Path
from rich.console import Console
from smepulse.runner import run_pipeline
from smepulse.settings import Settings
from tests.unit.runner.test_runner import DAY, catalog, fake

home, marks = Path(sys.argv[1]), Path(sys.argv[2])
ok = run_pipeline(Settings(home=home), "p", DAY, catalog=catalog(), console=Console(force_terminal=True),
                  command=fake({"a": "time.sleep(60)", "c": "time.sleep(60)"}, marks))
sys.exit(0 if ok else 1)
"""


def test_ctrl_c_cancels_running_stages_and_still_runs_finally(tmp_path: Path) -> None:
    import signal
    import subprocess

    marks = tmp_path / "marks"
    proc = subprocess.Popen([sys.executable, "-c", CANCEL_SCRIPT, str(tmp_path / "home"), str(marks)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 30
    while sorted(ran(marks)) != ["a", "c"]:
        assert time.monotonic() < deadline and proc.poll() is None, (
            proc.stdout.read() if proc.stdout else ""
        )
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    settings = Settings(home=tmp_path / "home")
    rec = record(settings, "p-20250314")
    assert rec.status == "Cancelled"
    assert states(rec) == {
        "a": "Cancelled", "b": "Skipped", "c": "Cancelled", "d": "Skipped",
        "go": "Skipped", "notify": "Succeeded",
    }  # fmt: skip
    assert "notify" in ran(marks)


KILLED_SCRIPT = """
import sys
from pathlib import Path
from rich.console import Console
from smepulse.runner import run_pipeline
from smepulse.settings import Settings
from tests.unit.runner.test_runner import DAY, catalog, fake

home, marks = Path(sys.argv[1]), Path(sys.argv[2])
script = "pathlib.Path(%r).write_text(str(os.getpid())); time.sleep(120)" % str(marks / "b.pid")
run_pipeline(Settings(home=home, runner_max_parallel=1), "p", DAY, catalog=catalog(),
             console=Console(file=sys.stderr), command=fake({"b": script}, marks))
"""


def test_sigkilled_run_shows_interrupted_and_resume_continues_from_the_first_unfinished_stage(
    tmp_path: Path,
) -> None:
    import signal
    import subprocess

    marks = tmp_path / "marks"
    settings = Settings(home=tmp_path / "home", runner_max_parallel=1)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SCRIPT, str(settings.home), str(marks)])
    deadline = time.monotonic() + 30
    while not (marks / "b.pid").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    stage_pid = int((marks / "b.pid").read_text())
    time.sleep(0.3)  # the runner records b as Running right after starting it
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)

    # The record on disk still says Running; what people see says Interrupted.
    on_disk = record(settings, "p-20250314")
    assert on_disk.status == "Running" and on_disk.stage("b").state == "Running"
    (listed,) = runs_store.history(settings.runs_dir)
    assert listed.status == "Interrupted"
    out = Console(record=True, width=200)
    print_history(settings, 10, console=out)
    assert "Interrupted" in out.export_text()
    assert alive(stage_pid)  # the dead runner's stage is still running, orphaned

    before = ran(marks)
    assert before == ["a", "c", "b"]  # one slot: topological order, roots first
    ok = run_pipeline(
        settings, "p", DAY, catalog=catalog(), command=fake({}, marks), console=quiet(),
        follow_triggers=False, resume=True,
    )  # fmt: skip
    assert ok
    assert ran(marks)[len(before) :] == ["b", "d", "notify"]  # go is a trigger: no process
    assert not alive(stage_pid)  # resume stopped the orphan first
    rec = record(settings, "p-20250314")  # the same run, continued
    assert rec.status == "Succeeded" and len(rec.resumed_at) == 1
    assert states(rec) == dict.fromkeys(["a", "b", "c", "d", "go", "notify"], "Succeeded")
    assert rec.stage("a").attempts == 1 and rec.stage("b").attempts == 1
    assert [r.run_id for r in runs_store.history(settings.runs_dir)] == ["p-20250314"]


def test_resume_refuses_when_there_is_nothing_to_resume(settings: Settings, tmp_path: Path) -> None:
    from smepulse.errors import ConfigError

    with pytest.raises(ConfigError, match="no unfinished run of p for 2025-03-14"):
        run_pipeline(settings, "p", DAY, catalog=catalog(), console=quiet(), resume=True)
    assert run_pipeline(
        settings, "p", DAY, catalog=catalog(), command=fake({}, tmp_path / "m"),
        console=quiet(), follow_triggers=False,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"the newest, p-20250314, succeeded"):
        run_pipeline(settings, "p", DAY, catalog=catalog(), console=quiet(), resume=True)


def test_a_runner_on_another_host_is_dead_once_its_heartbeat_is_stale() -> None:
    now = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)
    rec = runs_store.RunRecord(
        run_id="p-20250314", pipeline="p", logical_date=DAY, started_at=now,
        runner_pid=1, runner_host="another-machine",
    )  # fmt: skip
    fresh = rec.model_copy(update={"heartbeat_at": now - dt.timedelta(seconds=30)})
    stale = rec.model_copy(update={"heartbeat_at": now - dt.timedelta(seconds=121)})
    assert not runs_store.runner_gone(fresh, now)
    assert runs_store.runner_gone(stale, now)
    done = stale.model_copy(update={"status": "Failed"})
    assert not runs_store.runner_gone(done, now)  # only Running records can be interrupted

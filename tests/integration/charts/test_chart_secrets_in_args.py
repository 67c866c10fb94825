"""No password in a process's arguments, checked on the real programs: Redis and the MLflow
server are started from the chart's rendered container (command, args and env; only paths,
ports and host names swapped for local ones) with the password the chart's Secret would give,
then each must enforce/use that password while no process of theirs carries it in
/proc/<pid>/cmdline, which every local user can read."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.needs import KUBE, missing
from tests.services.procs import free_port
from tests.unit.charts.helmlib import CHART, Helm, HelmUnavailable, Manifest, find, find_helm

pytestmark = pytest.mark.integration

#: Characters Redis's config parser and a URI would trip on, and a shell would expand.
PASSWORD = 'p@ss w"o\\rd$HOME`x`:/%'


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    try:
        helm = Helm(find_helm(), tmp_path_factory.mktemp("helm"))
    except HelmUnavailable as exc:
        missing(f"Helm ({exc})", setting=KUBE)
    return helm.template([CHART / "ci" / "full-values.yaml"])


def _container(manifests: list[Manifest], deployment: str) -> dict[str, Any]:
    pod = find(manifests, "Deployment", deployment)["spec"]["template"]["spec"]
    return dict(pod["containers"][0])


def _cmdlines_of_tree(root: int) -> list[str]:
    """The command lines of ``root`` and all its descendants (from /proc, as `ps` shows)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        with suppress(OSError):
            out.append(
                (Path("/proc") / str(pid) / "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        todo += children.get(pid, [])
    return out


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


def test_redis_requires_the_password_it_was_not_given_on_its_command_line(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    if not shutil.which("redis-server"):
        missing("redis-server")
    container = _container(rendered, "smepulse-redis")
    argv = [*container["command"], *container["args"]]
    assert not [a for a in argv if "PASSWORD" in a and a.startswith("$(")]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    local = tmp_path / "auth"
    local.mkdir()
    # The script writes to the auth volume's mount path: the same path, here in tmp_path.
    argv = [a.replace(mounts["auth"], str(local)) for a in argv]
    port = free_port()
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": PASSWORD}
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            assert proc.poll() is None, f"redis-server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "redis-server did not listen within 20 s"
            time.sleep(0.2)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong").ping()
        with pytest.raises(redis.AuthenticationError):  # no password: "Authentication required"
            redis.Redis(port=port).set("k", "v")
        assert redis.Redis(port=port, password=PASSWORD).ping() is True
        # exec: redis-server replaced the shell (it is PID 1 in the Pod, and gets SIGTERM).
        assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == "redis-server"
        cmdlines = _cmdlines_of_tree(proc.pid)
        assert cmdlines and not [c for c in cmdlines if PASSWORD in c], cmdlines
        assert oct((local / "auth.conf").stat().st_mode & 0o777) == "0o600"
    finally:
        _stop(proc)

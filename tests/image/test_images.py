"""The two images of the Dockerfile, built from a clean clone and run as Kubernetes would run
them: uid 10001, read-only root file system, no network (the operator: only loopback, to the
test control plane)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.conftest import BuiltImages, Docker
from tests.kube.controlplane import ControlPlane

pytestmark = pytest.mark.image

DATE = "2026-06-30"
#: How a Job runs a stage: no root, nothing writable but /tmp and the home volume.
LOCKED_DOWN = ("--read-only", "--user", "10001:10001", "--network", "none", "--tmpfs", "/tmp")


@pytest.fixture
def home_volume(docker: Docker) -> Iterator[str]:
    """A named volume at /var/lib/smepulse (SMEPULSE_HOME), shared by several containers."""
    name = f"smepulse-test-{uuid.uuid4().hex[:8]}"
    docker.run("volume", "create", name)
    try:
        yield name
    finally:
        docker.run("volume", "rm", "-f", name, check=False)


def test_images_are_configured_for_restricted_pods(docker: Docker, images: BuiltImages) -> None:
    for target, tag in images.tags.items():
        config = json.loads(docker.run("image", "inspect", tag).stdout)[0]["Config"]
        assert config["User"] == "10001:10001", target
        assert config["Entrypoint"] == ["/usr/bin/tini", "-g", "--"], target
        # No compiler, no installer: nothing a stage does needs them at run time.
        found = docker.run(
            "run", "--rm", *LOCKED_DOWN, tag, "sh", "-c",
            "for t in gcc cc c++ make pip pip3 uv apt-get; do command -v $t || true; done",
        ).stdout.split()  # fmt: skip
        assert [p for p in found if "apt-get" not in p] == [], target
        ca = docker.run("run", "--rm", *LOCKED_DOWN, tag, "ls", "/src", check=False).returncode
        assert ca != 0, f"{target}: the build stage's /src (and its CA bundle) leaked in"


def test_operator_image_is_small_and_has_no_data_stack(docker: Docker, images: BuiltImages) -> None:
    tag = images.tags["operator"]
    size = int(docker.run("image", "inspect", "--format", "{{.Size}}", tag).stdout)
    assert size < 300 * 1024 * 1024, f"operator image is {size / 2**20:.0f} MiB"
    probe = (
        "import importlib.util as u, json; "
        "print(json.dumps({m: u.find_spec(m) is not None for m in "
        "('kopf', 'kubernetes', 'smepulse_operator', 'dbt', 'prophet', 'mlflow', 'matplotlib', "
        "'duckdb', 'sklearn')}))"
    )
    found = json.loads(docker.run("run", "--rm", *LOCKED_DOWN, tag, "python", "-c", probe).stdout)
    assert found == {
        "kopf": True,
        # The operator calls the API with urllib3; kopf would import this package (~65 MiB)
        # whenever it is installed (smepulse_operator/kube.py).
        "kubernetes": False,
        "smepulse_operator": True,
        "dbt": False,
        "prophet": False,
        "mlflow": False,
        "matplotlib": False,
        "duckdb": False,
        "sklearn": False,
    }
    # `smepulse submit` (the CronJobs) starts in the operator image.
    out = docker.run("run", "--rm", *LOCKED_DOWN, tag, "smepulse", "submit", "--help").stdout
    assert "PipelineRun" in out


def test_stages_image_validates_bronze_and_builds_silver(
    docker: Docker, images: BuiltImages, home_volume: str
) -> None:
    tag = images.tags["stages"]

    def smepulse(*args: str) -> str:
        proc = docker.run(
            "run", "--rm", *LOCKED_DOWN, "-v", f"{home_volume}:/var/lib/smepulse",
            tag, "smepulse", *args, timeout=900,
        )  # fmt: skip
        return proc.stdout + proc.stderr

    smepulse("generate-data", "--end-date", DATE, "--scale", "0.05", "--years", "0.5")
    smepulse("stage", "validate-bronze", "--logical-date", DATE)
    log = smepulse("stage", "dbt-silver", "--logical-date", DATE)
    assert "dbt-silver: succeeded" in log, log[-3000:]
    # Silver has one row per customer key of bronze: counted straight from the Parquet files.
    query = (
        "import duckdb, json; "
        "db = duckdb.connect('/var/lib/smepulse/warehouse.duckdb', read_only=True); "
        'bronze = db.sql("select count(distinct customer_id) from '
        "read_parquet('/var/lib/smepulse/bronze/customers/*/*.parquet')\").fetchone()[0]; "
        "silver, keys = db.sql('select count(*), count(distinct customer_id) "
        "from silver.stg_bronze__customers').fetchone(); "
        "print(json.dumps([bronze, silver, keys]))"
    )
    out = docker.run(
        "run", "--rm", *LOCKED_DOWN, "-v", f"{home_volume}:/var/lib/smepulse",
        tag, "python", "-c", query,
    ).stdout  # fmt: skip
    bronze, silver, keys = json.loads(out)
    assert bronze > 0
    assert silver == keys == bronze
    # dbt started from the parse baked into the image (target/duckdb), not from nothing: its
    # log notes a partial parse with no file changed, and no reason for a full one.
    dbt_log = docker.run(
        "run", "--rm", *LOCKED_DOWN, "-v", f"{home_volume}:/var/lib/smepulse", tag,
        "sh", "-c", "grep -hi 'partial pars' /var/lib/smepulse/dbt/logs/dbt.log || true",
    ).stdout  # fmt: skip
    print(f"\ndbt-silver in the image, dbt's partial-parse notes:\n{dbt_log}")
    assert "Unable to do partial parsing" not in dbt_log, dbt_log
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed" in dbt_log, (
        dbt_log
    )

    # A running dbt stage stops on SIGTERM (what Kubernetes sends when a run is cancelled),
    # and the silver built before is still whole afterwards.
    name = f"smepulse-dbt-stop-{uuid.uuid4().hex[:8]}"
    docker.run(
        "run", "-d", "--name", name, *LOCKED_DOWN, "-v", f"{home_volume}:/var/lib/smepulse",
        tag, "smepulse", "stage", "dbt-silver", "--logical-date", DATE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        building = "[dbt-silver] model "  # the stage logs each model dbt has built
        while True:
            out = docker.run("logs", name)
            logs = out.stdout + out.stderr
            running = json.loads(docker.run("inspect", name).stdout)[0]["State"]["Running"]
            if building in logs or not running or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert running and building in logs, f"dbt was not seen building: {logs[-2000:]}"
        started = time.monotonic()
        docker.run("stop", "--time", "30", name)  # SIGKILL only after 30 s
        elapsed = time.monotonic() - started
        code = json.loads(docker.run("inspect", name).stdout)[0]["State"]["ExitCode"]
        print(f"docker stop of a running dbt-silver: {elapsed:.2f} s, exit code {code}")
        assert code == 143, docker.run("logs", name).stderr[-2000:]
        assert elapsed < 10
    finally:
        docker.run("rm", "-f", name, check=False)
    after = docker.run(
        "run", "--rm", *LOCKED_DOWN, "-v", f"{home_volume}:/var/lib/smepulse",
        tag, "python", "-c", query,
    ).stdout  # fmt: skip
    assert json.loads(after) == [bronze, silver, keys]


def test_docker_stop_ends_a_long_command_within_seconds(
    docker: Docker, images: BuiltImages
) -> None:
    """SIGTERM reaches the smepulse process through tini (-g: its whole process group)."""
    tag = images.tags["stages"]
    name = f"smepulse-stop-{uuid.uuid4().hex[:8]}"
    # A long CPU-bound command: generating a large business (minutes at this scale).
    docker.run(
        "run", "-d", "--name", name, *LOCKED_DOWN, "--tmpfs", "/var/lib/smepulse:uid=10001",
        tag, "smepulse", "generate-data", "--end-date", DATE, "--scale", "20",
    )  # fmt: skip
    try:
        time.sleep(5)
        state = json.loads(docker.run("inspect", name).stdout)[0]["State"]
        assert state["Running"], f"the command ended before the stop: {state}"
        started = time.monotonic()
        docker.run("stop", "--time", "30", name)  # SIGKILL only after 30 s
        elapsed = time.monotonic() - started
        code = json.loads(docker.run("inspect", name).stdout)[0]["State"]["ExitCode"]
        print(f"\ndocker stop of a running generate-data: {elapsed:.2f} s, exit code {code}")
        assert code == 143  # 128 + SIGTERM: ended by the signal, not by the SIGKILL
        assert elapsed < 5
    finally:
        docker.run("rm", "-f", name, check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_operator_image_starts_and_answers_its_probes(
    docker: Docker, images: BuiltImages, kube_cluster: ControlPlane, tmp_path: Path
) -> None:
    """The operator container against the test control plane on loopback (host network)."""
    kubectl = str(kube_cluster.bin_dir / "kubectl")
    crd = Path(__file__).resolve().parents[2] / "charts/smepulse/files/crds"
    subprocess.run(
        [kubectl, "--kubeconfig", str(kube_cluster.kubeconfig), "apply", "-f", str(crd)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    # uid 10001 must be able to read the admin kubeconfig it is given.
    config_dir = tmp_path / "kube"
    config_dir.mkdir()
    shutil.copyfile(kube_cluster.kubeconfig, config_dir / "kubeconfig")
    os.chmod(config_dir, 0o755)
    os.chmod(config_dir / "kubeconfig", 0o644)
    health, metrics = _free_port(), _free_port()
    name = f"smepulse-operator-{uuid.uuid4().hex[:8]}"
    docker.run(
        "run", "-d", "--name", name, "--read-only", "--user", "10001:10001", "--tmpfs", "/tmp",
        "--network", "host", "-v", f"{config_dir}:/etc/smepulse:ro",
        "-e", "SMEPULSE_KUBECONFIG=/etc/smepulse/kubeconfig",
        "-e", f"SMEPULSE_OPERATOR_HEALTH_PORT={health}",
        "-e", f"SMEPULSE_OPERATOR_METRICS_PORT={metrics}",
        images.tags["operator"], "smepulse", "operator",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        ready: tuple[int, str] = (0, "")
        while time.monotonic() < deadline:
            try:
                ready = _get(f"http://127.0.0.1:{health}/readyz")
            except OSError:
                ready = (0, "")
            if ready[0] == 200:
                break
            time.sleep(1)
        logs = docker.run("logs", name).stderr[-3000:]
        assert ready[0] == 200, f"readyz: {ready}; operator log:\n{logs}"
        assert json.loads(ready[1]) == {"status": "ok", "startup": True, "api": True}
        assert _get(f"http://127.0.0.1:{health}/healthz") == (200, '{"status": "ok"}')
        status, text = _get(f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200 and "# TYPE" in text
        started = time.monotonic()
        docker.run("stop", "--time", "30", name)
        assert time.monotonic() - started < 10
    finally:
        docker.run("rm", "-f", name, check=False)

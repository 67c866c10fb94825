"""Fixtures of the image layer: a Docker engine, a clean clone of HEAD, both targets built.

``scripts/test.sh`` runs ``scripts/docker-tools.sh`` first and exports what it prints
(``DOCKER_HOST``, ``SMEPULSE_DOCKER_BIN``, ``SMEPULSE_BASE_IMAGE``). Without an engine these
tests skip with the reason, or fail when ``SMEPULSE_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from tests.images.build import DEBIAN_BASE, DataImage, build_data_images

REPO = Path(__file__).resolve().parents[2]
#: Targets of the Dockerfile, in the order the classic builder would build them anyway.
TARGETS = ("operator", "stages")


def _missing(what: str) -> NoReturn:
    if os.environ.get("SMEPULSE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (SMEPULSE_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f'{what} not available (run: eval "$(bash scripts/docker-tools.sh)")')


@dataclass
class Docker:
    """The docker CLI bound to one daemon."""

    bin: str
    env: dict[str, str]

    def run(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.bin, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args[:3])}... exited {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc


@dataclass
class BuiltImages:
    """Tags of the two targets built from a clean clone, and how long each build took."""

    tags: dict[str, str]
    build_seconds: dict[str, float] = field(default_factory=dict)
    context: Path | None = None

    @property
    def chart(self) -> Path:
        """The chart of the same clean clone: what is installed matches what was built
        (uncommitted chart edits in the working tree stay out of these tests)."""
        return (self.context or REPO) / "charts" / "smepulse"


@pytest.fixture(scope="session")
def docker() -> Docker:
    binary = os.environ.get("SMEPULSE_DOCKER_BIN") or shutil.which("docker")
    if not binary:
        _missing("a docker CLI")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    probe = subprocess.run(
        [binary, "version", "--format", "{{.Server.Version}}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        _missing(f"a Docker daemon ({probe.stderr.strip()[:200]})")
    return Docker(binary, env)


@pytest.fixture(scope="session")
def base_image(docker: Docker) -> str:
    """The local python3 base (Docker Hub is unreachable here), or the upstream default."""
    name = os.environ.get("SMEPULSE_BASE_IMAGE")
    if not name:
        _missing("SMEPULSE_BASE_IMAGE (the local base image from scripts/docker-tools.sh)")
    if docker.run("image", "inspect", name, check=False).returncode != 0:
        _missing(f"base image {name}")
    return name


@pytest.fixture(scope="session")
def clean_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``git clone`` of this repository's HEAD: the image builds from committed files only."""
    dest = tmp_path_factory.mktemp("clone") / "smepulse"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(dest)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # A TLS-inspecting proxy may sit in front of PyPI: the build stages read this bundle
    # (see the Dockerfile); it is not in git and never in an image.
    bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(bundle).is_file():
        shutil.copyfile(bundle, dest / "build-ca.pem")
    return dest


def build(
    docker: Docker, context: Path, target: str, tag: str, base: str, extra: Sequence[str] = ()
) -> float:
    """``docker build --target`` with the classic builder; the wall time in seconds."""
    started = time.monotonic()
    docker.run(
        "build",
        "--network",
        "host",
        "--target",
        target,
        "--build-arg",
        f"BUILD_BASE={base}",
        "--build-arg",
        f"RUNTIME_BASE={base}",
        "-t",
        tag,
        *extra,
        str(context),
        timeout=3600,
    )
    return time.monotonic() - started


@pytest.fixture(scope="session")
def images(docker: Docker, base_image: str, clean_clone: Path) -> Iterator[BuiltImages]:
    run = uuid.uuid4().hex[:8]
    built = BuiltImages(tags={t: f"smepulse-test/{t}:{run}" for t in TARGETS}, context=clean_clone)
    try:
        for target in TARGETS:
            built.build_seconds[target] = build(
                docker, clean_clone, target, built.tags[target], base_image
            )
            print(f"\nbuilt {target} from a clean clone in {built.build_seconds[target]:.0f} s")
        yield built
    finally:
        # The layers stay in the daemon's cache (the next build is warm); only the tags go.
        docker.run("image", "rm", "--no-prune", *built.tags.values(), check=False)


@pytest.fixture(scope="session")
def data_images(docker: Docker) -> dict[str, DataImage]:
    """The data-stack test images (tests/images/), built on the local Debian base unless their
    content-hash tags exist already; ``{name: DataImage}``, ``.ref`` for ``docker run`` and
    ``chart_set_args`` for ``helm``. The tags stay (the next run reuses them)."""
    if docker.run("image", "inspect", DEBIAN_BASE, check=False).returncode != 0:
        _missing(f"base image {DEBIAN_BASE}")
    started = time.monotonic()
    images = build_data_images(docker.bin, docker.env, log=print)
    print(f"\ndata images ready in {time.monotonic() - started:.1f} s: " + ", ".join(
        f"{i.name} {'reused' if i.reused else 'built'} {i.seconds:.1f} s" for i in images.values()
    ))  # fmt: skip
    return images

"""The tools behind the data-stack test images, without Docker: the content hash that makes a
second build a no-op (tests/images/build.py), and how a rendered Pod becomes ``docker run``
arguments (tests/images/dockerpod.py), checked on the chart's default render."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.images import build, dockerpod
from tests.unit.charts.helmlib import Helm

pytestmark = pytest.mark.unit


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in tests/images/ with one image folder, ``probe``."""
    monkeypatch.setattr(build, "HERE", tmp_path)
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "Dockerfile").write_text("FROM base\n")
    (tmp_path / "probe" / "CONTRACT.md").write_text("v1\n")
    return tmp_path / "probe"


def test_input_hash_follows_the_build_inputs_only(folder: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 10)
    first = build.input_hash("probe", "sha256:base", {"big": big})
    assert build.input_hash("probe", "sha256:base", {"big": big}) == first
    # Documentation is not an input: editing it rebuilds nothing.
    (folder / "CONTRACT.md").write_text("v2\n")
    assert build.input_hash("probe", "sha256:base", {"big": big}) == first
    # Each real input changes the tag: the base image, a file of the folder, a big input.
    assert build.input_hash("probe", "sha256:other", {"big": big}) != first
    (folder / "Dockerfile").write_text("FROM base\nUSER 1\n")
    second = build.input_hash("probe", "sha256:base", {"big": big})
    assert second != first
    big.write_bytes(b"x" * 11)
    assert build.input_hash("probe", "sha256:base", {"big": big}) != second


def test_big_inputs_enter_the_context_as_hard_links(tmp_path: Path) -> None:
    tree = tmp_path / "cache" / "server"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "a.jar").write_bytes(b"jar")
    (tree / "lib").chmod(0o700)
    dest = tmp_path / "ctx" / "server"
    dest.parent.mkdir()
    build._link_tree(tree, dest)
    copied = dest / "lib" / "a.jar"
    assert os.stat(copied).st_ino == os.stat(tree / "lib" / "a.jar").st_ino
    # The image's non-root user must be able to enter every folder.
    assert (dest / "lib").stat().st_mode & 0o755 == 0o755


def test_trino_pod_becomes_a_locked_down_docker_run(helm: Helm, tmp_path: Path) -> None:
    rendered = helm.template()
    spec = dockerpod.PodContainer.of(
        rendered, "Deployment", "smepulse-trino-coordinator", "trino", tmp_path
    )
    args = spec.run_args("img", "probe")
    image = args.index("img")
    assert args[image - 2 : image] == ["--entrypoint", "/usr/lib/trino/bin/launcher"]
    # The chart's command, with $(POD_NAME) expanded as Kubernetes expands it.
    assert args[image + 1 :] == [
        "run", "--etc-dir=/etc/trino", "--data-dir=/data/trino",
        "-Dnode.id=smepulse-trino-coordinator-0",
    ]  # fmt: skip
    head = args[:image]
    for flag in ("--read-only", "--network", "--cap-drop", "--security-opt"):
        assert flag in head, flag
    assert head[head.index("--user") + 1] == "1000:1000"
    assert head[head.index("--memory") + 1] == str(4 * 2**30)
    tmpfs = [head[i + 1].split(":")[0] for i, a in enumerate(head) if a == "--tmpfs"]
    binds = [head[i + 1].split(":") for i, a in enumerate(head) if a == "-v"]
    assert tmpfs == ["/data/trino", "/tmp"]
    assert sorted((b[1], b[2]) for b in binds) == [
        ("/etc/trino", "ro"), ("/etc/trino/catalog", "ro"),
    ]  # fmt: skip
    # The ConfigMap items are on disk, read-only mounted, the nested mount point present.
    etc = Path(next(b[0] for b in binds if b[1] == "/etc/trino"))
    assert sorted(p.name for p in etc.iterdir()) == [
        "catalog", "config.properties", "jvm.config", "log.properties", "node.properties",
    ]  # fmt: skip

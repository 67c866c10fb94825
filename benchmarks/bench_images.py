"""Sizes (and optionally build times) of the Dockerfile's two images.

    eval "$(bash scripts/docker-tools.sh)"
    python benchmarks/bench_images.py --build            # build both from a clean clone of HEAD
    python benchmarks/bench_images.py --build --cold     # the same with --no-cache (cold)
    python benchmarks/bench_images.py --tag operator=IMG --tag stages=IMG   # already built

Prints per image: its size, the base image's share, and the largest installed packages (what
the size is made of). Build times are wall clock on this machine (classic builder,
``--network host``, base images from ``SMEPULSE_BASE_IMAGE``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("operator", "stages")
MIB = 1024 * 1024


def docker(*args: str, capture: bool = True) -> str:
    binary = os.environ.get("SMEPULSE_DOCKER_BIN") or shutil.which("docker") or "docker"
    proc = subprocess.run(
        [binary, *args],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=capture,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"docker {' '.join(args[:2])} failed: {(proc.stderr or '')[-2000:]}")
    return proc.stdout or ""


def size_mib(image: str) -> float:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image)) / MIB


def build(context: Path, base: str, cold: bool) -> tuple[dict[str, str], dict[str, float]]:
    tags = {t: f"smepulse-bench/{t}:latest" for t in TARGETS}
    seconds: dict[str, float] = {}
    for target in TARGETS:
        args = ["build", "-q", "--network", "host", "--target", target, "-t", tags[target]]
        args += ["--build-arg", f"BUILD_BASE={base}", "--build-arg", f"RUNTIME_BASE={base}"]
        if cold:
            args.append("--no-cache")
        started = time.monotonic()
        docker(*args, str(context))
        seconds[target] = time.monotonic() - started
    return tags, seconds


def clean_clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(dest)], check=True)
    bundle = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(bundle).is_file():
        shutil.copyfile(bundle, dest / "build-ca.pem")
    return dest


def largest_packages(image: str, count: int = 8) -> list[tuple[int, str]]:
    out = docker(
        "run", "--rm", "--network", "none", "--read-only", image, "sh", "-c",
        "du -sm /opt/venv/lib/python3*/site-packages/* | sort -rn | head -n " + str(count),
    )  # fmt: skip
    rows = []
    for line in out.splitlines():
        mib, path = line.split(maxsplit=1)
        rows.append((int(mib), Path(path).name))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="build both targets first")
    parser.add_argument("--cold", action="store_true", help="with --build: --no-cache")
    parser.add_argument("--tag", action="append", default=[], help="TARGET=IMAGE, already built")
    opts = parser.parse_args()
    base = os.environ.get("SMEPULSE_BASE_IMAGE", "python:3.11-slim-bookworm")
    tags = dict(t.split("=", 1) for t in opts.tag)
    if opts.build:
        with tempfile.TemporaryDirectory(prefix="smepulse-bench-") as tmp:
            tags, seconds = build(clean_clone(Path(tmp) / "repo"), base, opts.cold)
        kind = "cold (--no-cache)" if opts.cold else "warm (layer cache)"
        for target in TARGETS:
            print(f"build {target:8s} {kind}: {seconds[target]:7.1f} s")
    if not tags:
        parser.error("give --build or --tag TARGET=IMAGE")
    base_mib = size_mib(base)
    print(f"base image {base}: {base_mib:.0f} MiB")
    for target, image in tags.items():
        total = size_mib(image)
        print(f"\n{target}: {image}: {total:.0f} MiB ({total - base_mib:.0f} MiB above the base)")
        for mib, name in largest_packages(image):
            print(f"  {mib:5d} MiB  {name}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Render an HTML report in headless Chromium and save a PNG screenshot.

    python scripts/screenshot_report.py .smepulse/reports/daily-etl-2025-06-30.html out.png

Needs the ``chromium`` Debian package. Offline-safe: a fresh profile, no background
networking, no component updates, no sync. Exit code 0 when the PNG was written.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html: Path, png: Path, width: int = 1280, height: int = 2400, timeout: float = 120.0
) -> Path:
    """Render ``html`` into ``png``; RuntimeError with the browser's output when it fails."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found: apt-get install -y chromium")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="smepulse-chromium-") as profile:
        argv = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
            f"--window-size={width},{height}", html.resolve().as_uri(),
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.exists():
        raise RuntimeError(
            f"Chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr.strip()[-800:]}"
        )
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    if not args.html.exists():
        print(f"error: {args.html} does not exist", file=sys.stderr)
        return 2
    try:
        out = screenshot(args.html, args.png, args.width, args.height)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the values table of ``charts/smepulse/README.md`` from the ``# --`` comments.

In ``values.yaml`` a comment block that starts with ``# --`` and sits right above a key
documents that key (helm-docs' convention; later ``#`` lines continue it). Every key whose value
is not a block mapping must be documented; block mappings are just groups and may be
documented too. The table goes between the README's ``<!-- values-table:start -->`` and
``<!-- values-table:end -->`` markers.

Usage: ``python charts/scripts/values_table.py [--check]`` (``--check``: exit 1 if the README
is stale or a key is undocumented). A unit test runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parents[1] / "smepulse"
README_PATH = CHART_DIR / "README.md"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):(?P<rest>.*)$")
_DOC = re.compile(r"^ *# -- ?(?P<text>.*)$")
_MORE = re.compile(r"^ *#(?: (?P<text>.*))?$")

Path_ = tuple[str, ...]


def _scan(text: str) -> list[tuple[Path_, str | None, bool]]:
    """(path, comment or None, is_group) for each key line, in file order."""
    out: list[tuple[Path_, str | None, bool]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in text.splitlines():
        doc = _DOC.match(line)
        if doc:
            pending = [doc.group("text").strip()]
            continue
        more = _MORE.match(line)
        if more:
            if pending is not None:
                pending.append((more.group("text") or "").strip())
            continue
        key = _KEY.match(line)
        if not key:
            pending = None
            continue
        indent = len(key.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key.group("key")))
        rest = key.group("rest").split(" #")[0].strip()
        comment = " ".join(p for p in pending if p) if pending is not None else None
        out.append((tuple(k for _, k in stack), comment, rest == ""))
        pending = None
    return out


def parse_comments(text: str) -> dict[Path_, str]:
    """Dotted key path -> its ``# --`` comment."""
    return {path: comment for path, comment, _ in _scan(text) if comment is not None}


def undocumented_keys(text: str) -> list[str]:
    """Keys that need a ``# --`` comment and have none."""
    return [".".join(p) for p, comment, group in _scan(text) if comment is None and not group]


def _lookup(values: Any, path: Path_) -> Any:
    for key in path:
        values = values[key]
    return values


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def table(text: str) -> str:
    values = yaml.safe_load(text)
    rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
    for path, comment, group in _scan(text):
        if comment is None or group:
            continue
        value = _lookup(values, path)
        default = json.dumps(value, ensure_ascii=False).replace("|", "\\|")
        description = comment.replace("|", "\\|")
        rows.append(f"| `{'.'.join(path)}` | {_type(value)} | `{default}` | {description} |")
    return "\n".join(rows)


def render_readme(readme: str, text: str) -> str:
    head, sep, tail = readme.partition(START)
    if not sep or END not in tail:
        raise SystemExit(f"{README_PATH}: the markers {START} / {END} are missing")
    return f"{head}{START}\n{table(text)}\n{END}{tail.split(END, 1)[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args()
    text = (CHART_DIR / "values.yaml").read_text(encoding="utf-8")
    missing = undocumented_keys(text)
    if missing:
        print(f"values.yaml: keys without a '# --' comment: {', '.join(missing)}", file=sys.stderr)
        return 1
    readme = README_PATH.read_text(encoding="utf-8")
    new = render_readme(readme, text)
    if args.check:
        if new != readme:
            print(
                f"{README_PATH} is stale: run python charts/scripts/values_table.py",
                file=sys.stderr,
            )
            return 1
        return 0
    README_PATH.write_text(new, encoding="utf-8")
    print(f"wrote the values table of {README_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

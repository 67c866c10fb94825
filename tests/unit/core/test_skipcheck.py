"""The skip check of scripts/test.sh (tests/skipcheck.py), run by a real pytest in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
SAMPLE = """
import pytest

def test_green():
    pass

def test_skipped():
    pytest.skip("no chromium")

@pytest.mark.xfail(reason="known bug")
def test_expected_failure():
    assert False
"""


def _pytest(tmp_path: Path, allowlist: str | None, body: str = SAMPLE) -> tuple[int, str]:
    (tmp_path / "test_sample.py").write_text(body)
    args = [sys.executable, "-m", "pytest", "-p", "tests.skipcheck", "-p", "no:cacheprovider"]
    if allowlist is not None:
        (tmp_path / "allow.txt").write_text(allowlist)
        args.append("--skip-allowlist=allow.txt")
    proc = subprocess.run(
        [*args, "test_sample.py"],
        cwd=tmp_path,
        # Only this plugin: site-packages plugins (fugue's) cost seconds per start.
        env={**os.environ, "PYTHONPATH": str(REPO), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_without_the_option_skips_pass_as_before(tmp_path: Path) -> None:
    code, out = _pytest(tmp_path, None)
    assert code == 0, out


def test_unlisted_skips_and_xfails_fail_the_run_and_are_named(tmp_path: Path) -> None:
    code, out = _pytest(tmp_path, "# nothing allowed\n")
    assert code == 1, out
    assert "test_sample.py::test_skipped: no chromium" in out
    assert "test_sample.py::test_expected_failure: xfail: known bug" in out
    assert "2 skipped test(s) fail this run" in out


def test_listed_skips_with_a_reason_pass(tmp_path: Path) -> None:
    allow = (
        "test_sample.py::test_skipped | CI has no browser (reviewed)\n"
        "test_sample.py::test_expected_failure | upstream bug #1  # a comment\n"
    )
    code, out = _pytest(tmp_path, allow)
    assert code == 0, out


def test_a_module_level_skip_counts(tmp_path: Path) -> None:
    body = 'import pytest\npytest.importorskip("no_such_module_here")\n\ndef test_x():\n    pass\n'
    code, out = _pytest(tmp_path, "", body)
    assert code == 1, out
    assert "test_sample.py: could not import 'no_such_module_here'" in out


def test_an_entry_without_a_reason_is_refused_with_its_line(tmp_path: Path) -> None:
    code, out = _pytest(tmp_path, "# header\ntest_sample.py::test_skipped\n")
    assert code == 4, out  # pytest's usage error
    assert "allow.txt:2: expected '<node id> | <reason>', got 'test_sample.py::test_skipped'" in out


def test_a_real_failure_keeps_its_exit_code(tmp_path: Path) -> None:
    code, out = _pytest(tmp_path, "", "def test_red():\n    assert 1 == 2\n")
    assert code == 1 and "1 failed" in out

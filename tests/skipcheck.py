"""pytest plugin: with ``--skip-allowlist FILE`` any skipped test not listed in FILE fails the run.

``scripts/test.sh`` (and so CI) passes the option, so a missing browser, package or service
cannot turn into a quiet skip. FILE holds one entry per line, ``<node id> | <reason>``
(``#`` starts a comment); an entry without a reason is refused. Skips of collected modules
count too, and so do expected failures (``xfail``): each hides a test that did not run green.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_KEY = pytest.StashKey[dict[str, str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--skip-allowlist",
        metavar="FILE",
        default=None,
        help="fail the run when a test is skipped unless FILE lists it ('<node id> | <reason>')",
    )


def read_allowlist(path: Path) -> dict[str, str]:
    """``{node id: reason}`` from ``path``; a malformed line is a UsageError naming it."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        node, sep, reason = (part.strip() for part in line.partition("|"))
        if not sep or not node or not reason:
            raise pytest.UsageError(
                f"{path}:{number}: expected '<node id> | <reason>', got {raw.strip()!r}"
            )
        entries[node] = reason
    return entries


def pytest_configure(config: pytest.Config) -> None:
    option = config.getoption("--skip-allowlist")
    if option is None:
        return
    path = Path(option)
    if not path.is_file():
        raise pytest.UsageError(f"--skip-allowlist: no such file {path}")
    config.stash[_KEY] = {}
    config.pluginmanager.register(_SkipCheck(read_allowlist(path), path), "smepulse-skipcheck")


class _SkipCheck:
    def __init__(self, allowed: dict[str, str], path: Path) -> None:
        self.allowed = allowed
        self.path = path
        self.unlisted: dict[str, str] = {}

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if not report.skipped or report.nodeid in self.allowed:
            return
        reason = getattr(report, "wasxfail", None)
        if reason is not None:
            reason = f"xfail: {reason}" if reason else "xfail"
        elif isinstance(report.longrepr, tuple):
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        else:
            reason = str(report.longrepr)
        self.unlisted[report.nodeid] = reason

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.unlisted and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.unlisted:
            return
        terminalreporter.section("skipped tests not in the allowlist", red=True)
        for node, reason in sorted(self.unlisted.items()):
            terminalreporter.line(f"{node}: {reason}")
        terminalreporter.line(
            f"{len(self.unlisted)} skipped test(s) fail this run: install what is missing, "
            f"or list them in {self.path} with a reason"
        )

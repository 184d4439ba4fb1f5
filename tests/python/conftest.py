"""pytest hooks for lowp's Python tests (tests/python): every skipped test is
appended to the file named by $LOWP_SKIP_LOG, which scripts/test.sh lists at
the end of the run; under CI (CI=true) a session with any skip fails, since
nothing may pass there by skipping."""

import os

import pytest

_skipped = []  # (test id, reason)


def _under_ci():
    return os.environ.get("CI") in ("true", "1")


def _reason(report):
    # A skip's longrepr is (path, line, "Skipped: reason").
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append((report.nodeid, _reason(report)))


def pytest_collectreport(report):  # a whole module skipped (pytest.importorskip)
    if report.skipped:
        _skipped.append((report.nodeid, _reason(report)))


def pytest_terminal_summary(terminalreporter):
    if _skipped and _under_ci():
        terminalreporter.write_line(f"CI=true: {len(_skipped)} skipped, which fails the run "
                                    "(nothing may pass by skipping under CI)", red=True)


def pytest_sessionfinish(session, exitstatus):
    log = os.environ.get("LOWP_SKIP_LOG")
    if log and _skipped:
        with open(log, "a") as f:
            for test, why in _skipped:
                f.write(f"{test}: {why}\n")
    if _skipped and _under_ci() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

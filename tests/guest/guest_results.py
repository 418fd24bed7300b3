"""Pytest plugin used inside the guest (``-p guest_results``): writes
$GUEST_RESULTS (default /share/out/results.json) for the host to report from.

One entry per test nodeid (and per module that failed to collect):
    {"nodeid", "outcome": passed|failed|skipped|error, "when", "longrepr",
     "message" (one line: the exception or skip reason),
     "sections": [[title, text], ...], "duration"}
The file is rewritten after every test, so a guest killed mid-run still tells
which tests had finished.
"""

import json
import os
import time

PATH = os.environ.get("GUEST_RESULTS", "/share/out/results.json")
_tests = {}  # nodeid -> entry, in run order
_state = {"exitstatus": None, "started": time.time()}


def _longrepr(report):
    if hasattr(report, "wasxfail") and report.skipped:
        return f"xfail: {report.wasxfail}"
    if report.skipped and isinstance(report.longrepr, tuple):
        return report.longrepr[2]  # (path, lineno, reason)
    return str(report.longrepr) if report.longrepr else ""


def _message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    lines = _longrepr(report).strip().splitlines()
    return lines[-1] if lines else ""


def _write():
    data = dict(_state, tests=list(_tests.values()))
    tmp = PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, PATH)


def _record(nodeid, outcome, when, report):
    entry = _tests.setdefault(nodeid, {"nodeid": nodeid, "outcome": "passed", "when": when,
                                       "longrepr": "", "message": "", "sections": [],
                                       "duration": 0.0})
    entry["duration"] += getattr(report, "duration", 0.0) or 0.0
    entry["sections"] = [list(s) for s in report.sections]
    # The first failure or skip wins; a teardown error after a failure is appended.
    if outcome != "passed":
        if entry["outcome"] == "passed":
            entry.update(outcome=outcome, when=when, longrepr=_longrepr(report),
                         message=_message(report))
        else:
            entry["longrepr"] += f"\n\n--- then, in {when} ({outcome}) ---\n{_longrepr(report)}"


def pytest_runtest_logreport(report):
    if report.passed:
        outcome = "passed"
    elif report.skipped:
        outcome = "skipped"  # xfail included: its longrepr says so
    else:
        outcome = "failed" if report.when == "call" else "error"
    _record(report.nodeid, outcome, report.when, report)
    if report.when == "teardown":
        _write()


def pytest_collectreport(report):
    if report.failed:
        _record(report.nodeid or "<collection>", "error", "collect", report)
        _write()


def pytest_sessionfinish(session, exitstatus):
    _state["exitstatus"] = int(exitstatus)
    _state["duration"] = time.time() - _state["started"]
    _write()

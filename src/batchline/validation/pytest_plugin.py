"""A pytest plugin that records the OQ: each test, the requirement IDs it carries, its result, its output.

Loaded by the project's pytest settings (``-p batchline.validation.pytest_plugin``)
and silent unless ``BATCHLINE_OQ_RESULTS`` names a file: then, at the end of the
run, it writes there one JSON document with every test's node id, file (and the
file's SHA-256, so a later package can tell which tests changed), requirement
IDs, outcome, duration and output (the failure's report, or what the test
printed), beside when and where it ran. ``batchline validate`` runs the suite
with it, or reads the file a CI run left (``--oq-results``). Works under
pytest-xdist: the marks travel with each report to the controller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ENV = "BATCHLINE_OQ_RESULTS"
OUTPUT_MAX = 4000  # characters of a test's output kept as its evidence
_results: dict[str, dict[str, Any]] = {}
_started = dt.datetime.now(dt.UTC)


@cache
def _sha256(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "setup":
        reqs = sorted({rid for mark in item.iter_markers("req") for rid in mark.args})
        path = str(item.path)
        report.user_properties.append(("batchline_reqs", reqs))
        report.user_properties.append(("batchline_file", os.path.relpath(path)))
        report.user_properties.append(("batchline_sha256", _sha256(path)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not os.environ.get(ENV):
        return
    entry = _results.setdefault(
        report.nodeid,
        {"nodeid": report.nodeid, "reqs": [], "outcome": "passed", "duration": 0.0, "output": ""},
    )
    for key, value in report.user_properties:
        if key == "batchline_reqs":
            entry["reqs"] = list(value)  # type: ignore[call-overload]
        elif key == "batchline_file":
            entry["file"] = value
        elif key == "batchline_sha256":
            entry["file_sha256"] = value
    if report.when == "setup":  # a parametrised schemathesis test runs many times under one node id
        entry["runs"] = entry.get("runs", 0) + 1
    entry["duration"] = round(entry["duration"] + report.duration, 3)
    if report.failed:
        entry["outcome"] = "failed"
        entry["output"] = (entry["output"] + f"[{report.when}]\n{report.longreprtext}\n")[-OUTPUT_MAX:]
    elif report.skipped and entry["outcome"] != "failed":
        entry["outcome"] = "skipped"
        entry["output"] = str(report.longrepr)[-OUTPUT_MAX:]
    elif report.when == "call" and report.passed:
        printed = "".join(content for _name, content in report.sections)
        entry["output"] = printed[-OUTPUT_MAX:]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(ENV)
    if not target or hasattr(session.config, "workerinput"):  # the xdist controller writes, not a worker
        return
    document = {
        "format": 1,
        "started": _started.isoformat(),
        "finished": dt.datetime.now(dt.UTC).isoformat(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "database": os.environ.get("DATABASE_URL", "").split("@")[-1] or "sqlite",
        "arguments": [str(a) for a in session.config.invocation_params.args],
        "exit_status": int(exitstatus),
        "tests": sorted(_results.values(), key=lambda r: r["nodeid"]),
    }
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")

"""Operational qualification (VAL-05): the requirement-marked tests, run in place against a scratch database.

The suite shipped with the release (``tests/`` of the checkout) runs in a child
process with the recording plugin (pytest_plugin.py): on SQLite in a scratch
``BATCHLINE_HOME`` of its own, on PostgreSQL in the scratch database pytest-django
makes beside the installation's (``test_<name>``; the role needs CREATEDB). The
installation's own data is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .iq import PROJECT_ROOT
from .pytest_plugin import ENV

TESTS = PROJECT_ROOT / "tests"


class OqProblem(Exception):
    """The OQ could not run; the message says what to do."""


def run(
    paths: Sequence[str] = (), *, marked_only: bool = True, workdir: Path | None = None
) -> tuple[dict[str, Any], Path]:
    """Run the tests (all requirement-marked ones, or those under ``paths``); their results and the
    directory holding the run's artefacts (screenshots)."""
    if not TESTS.is_dir():
        raise OqProblem(
            f"The OQ runs the test suite shipped with the release ({TESTS}), and this installation has "
            "none: run it from the release's checkout, or give --oq-results from a run of the suite."
        )
    scratch = Path(workdir or tempfile.mkdtemp(prefix="batchline-oq-"))
    results = scratch / "oq-results.json"
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the suite's own settings (pyproject.toml)
    env[ENV] = str(results)
    env["BATCHLINE_ARTEFACTS"] = str(scratch / "artefacts")
    if not env.get("DATABASE_URL"):
        env["BATCHLINE_HOME"] = str(scratch / "home")  # SQLite: a scratch database of its own
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if marked_only:
        command += ["-m", "req"]
    command += list(paths)
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=False)  # noqa: S603 (our own interpreter)
    if not results.exists():
        raise OqProblem(f"The test run ended (exit status {done.returncode}) without writing its results.")
    return json.loads(results.read_text(encoding="utf-8")), scratch / "artefacts"

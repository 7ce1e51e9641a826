"""``batchline validate`` end to end: it runs tests in a child process, writes the signed archive, and
exits non-zero while a P0 requirement is not shown (VAL-04, VAL-05)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from batchline.validation import risk, urs

pytestmark = pytest.mark.django_db


@pytest.mark.req("VAL-03", "VAL-04", "VAL-05")
def test_validate_runs_the_chosen_tests_in_a_scratch_database_and_lists_the_gaps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)  # the child's scratch database: SQLite of its own
    with pytest.raises(CommandError, match="findings: the package records them") as refused:
        call_command("validate", "tests/rules/test_changes.py", "--out", str(tmp_path))
    assert refused.value.returncode == 1
    out = capsys.readouterr().out
    [archive] = tmp_path.glob("batchline-validation-*.zip")
    assert f"Validation package: {archive}" in out and "finding: P0 requirement P11-01 not shown" in out
    with zipfile.ZipFile(archive) as z:
        content = json.loads(z.read("package.json"))
        results = json.loads(z.read("evidence/oq-results.json"))
    ran = {t["nodeid"].split("::")[0] for t in content["oq"]["tests"]}
    assert ran == {"tests/rules/test_changes.py"} and results["tests"] == content["oq"]["tests"]
    assert all(t["outcome"] == "passed" and len(t["file_sha256"]) == 64 for t in content["oq"]["tests"])
    p0 = {r.id for r in urs.requirements() if risk.priority_of(r, risk.assessment()) == "P0"}
    rows = {r["id"]: r for r in content["trace"]["rows"]}
    shown = {rid for t in content["oq"]["tests"] for rid in t["reqs"]}
    assert p0 <= set(rows) and {g["id"] for g in content["trace"]["summary"]["gaps"]} == p0 - shown
    assert rows["VAL-06"]["status"] == "shown"  # what tests/rules/test_changes.py shows
    assert content["project"]["commit"] and content["iq"]

    call_command("validate", "--verify", str(archive))
    assert "every file as signed" in capsys.readouterr().out


def every_p0_passed() -> list[dict]:
    """Results as a run of the suite records them, one passing test per P0 requirement."""
    assessment = risk.assessment()
    return [
        {"nodeid": f"tests/x.py::test_{r.id}", "reqs": [r.id], "outcome": "passed", "file_sha256": "a"}
        for r in urs.requirements()
        if risk.priority_of(r, assessment) == "P0"
    ]


@pytest.mark.req("VAL-05", "VAL-03")
def test_validate_judges_the_results_a_ci_run_left_and_names_what_changed(tmp_path: Path) -> None:
    tests = every_p0_passed()
    results = tmp_path / "oq-results.json"
    results.write_text(json.dumps({"started": "s", "finished": "f", "tests": tests}))
    call_command("validate", "--oq-results", str(results), "--out", str(tmp_path / "first"))
    [first] = (tmp_path / "first").glob("*.zip")

    tests[0] = {**tests[0], "file_sha256": "b"}
    results.write_text(json.dumps({"started": "s", "finished": "f", "tests": tests}))
    call_command(
        "validate", "--oq-results", str(results), "--previous", str(first), "--out", str(tmp_path / "second")
    )
    [second] = (tmp_path / "second").glob("*.zip")
    with zipfile.ZipFile(second) as z:
        change = json.loads(z.read("package.json"))["change"]
    assert change["tests"] == [tests[0]["nodeid"]] and change["requirements"] == tests[0]["reqs"]

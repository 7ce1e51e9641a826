"""The IQ of this installation and the signed package (VAL-04, VAL-05)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from django.db import connection

from batchline.audit.db import triggers_drop, triggers_install
from batchline.validation import iq, package, risk, urs
from batchline.validation.trace import trace
from tests.audit.test_checkpoints import OtherKey
from tests.validation.test_trace import every_p0_shown

pytestmark = pytest.mark.django_db


@pytest.mark.req("VAL-04")
def test_a_package_version_other_than_the_pinned_one_is_an_iq_finding() -> None:
    pinned = iq.pins(iq.CONSTRAINTS.read_text(encoding="utf-8"), iq.PYPROJECT.read_text(encoding="utf-8"))
    present = iq.installed()
    assert pinned["django"] == present["django"][0]  # this environment is the release's
    clean = {c.name: c for c in iq.packages(pinned, present)}
    assert clean["django"].ok and clean["django"].detail.startswith("RECORD sha256:")

    changed = iq.pins(iq.CONSTRAINTS.read_text(encoding="utf-8").replace("lxml==", "lxml==0.0.1+"))
    found = {c.name: c for c in iq.packages({**pinned, "lxml": changed["lxml"]}, present)}
    assert (
        found["lxml"].ok is False
        and found["lxml"].detail == f"pinned at {changed['lxml']}, installed {present['lxml'][0]}"
    )
    gone = {c.name: c for c in iq.packages({**pinned, "left-pad": "1.0"}, present)}
    assert gone["left-pad"].detail == "pinned at 1.0, not installed"


@pytest.mark.req("VAL-04", "P11-05")
def test_the_iq_reads_the_database_migrations_triggers_configuration_and_key() -> None:
    checks = {(c.area, c.name): c for c in iq.qualification()}
    assert checks[("database", "engine")].value == connection.vendor
    assert checks[("database", "migrations")].ok and checks[("database", "append-only triggers")].ok
    assert checks[("configuration", "GMP configuration in force")].detail.startswith("sha256:")
    assert checks[("keys", "installation key")].value.startswith("ed25519:")
    assert not [c for c in checks.values() if c.area == "packages" and not c.ok]

    triggers_drop(connection, ("audit_auditentry",))
    try:
        missing = {(c.area, c.name): c for c in iq.qualification()}[("database", "append-only triggers")]
        assert missing.ok is False and "audit_auditentry" in missing.detail
    finally:
        triggers_install(connection, ("audit_auditentry",))


OQ = {"started": "2026-12-07T10:00:00+00:00", "finished": "2026-12-07T10:05:00+00:00", "tests": []}
PROJECT = {"version": "0.1.0", "commit": "abc", "describe": "abc", "clean": True}


def content_of(results, checks=()):
    matrix = trace(urs.requirements(), risk.assessment(), results)
    oq = {
        **OQ,
        "tests": [
            {"nodeid": r.nodeid, "reqs": list(r.reqs), "outcome": r.outcome, "file_sha256": "1"}
            for r in results
        ],
    }
    return package.document(iq=list(checks), oq=oq, trace=matrix, project=PROJECT)


@pytest.mark.req("VAL-03", "VAL-04", "VAL-05", "P11-01")
def test_the_archive_verifies_offline_and_names_a_file_altered_after_signing(tmp_path: Path) -> None:
    key = OtherKey()
    built = package.build(
        content_of(every_p0_shown()), out_dir=tmp_path, evidence={"oq-results.json": b"{}"}, key=key
    )
    assert built.document["verdict"] == {"ok": True, "findings": []}
    result = package.verify(built.path, key.public_key_pem())
    assert result.ok and result.fingerprint.startswith("ed25519:")
    with zipfile.ZipFile(built.path) as archive:
        names = set(archive.namelist())
        html = archive.read("index.html").decode()
        assert archive.read("package.pdf").startswith(b"%PDF")
    assert {
        "package.json",
        "package.pdf",
        "index.html",
        "urs.md",
        "risk.toml",
        "evidence/oq-results.json",
    } <= names
    assert 'id="P11-05"' in html and "passed: no findings" in html

    # Altered after signing: one file changed, everything else copied as it was.
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(built.path) as src, zipfile.ZipFile(forged, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "package.json":
                data = data.replace(b'"ok": true', b'"ok": false')
            dst.writestr(name, data)
    assert package.verify(forged, key.public_key_pem()).problems == [
        "package.json differs from the manifest (altered after signing)"
    ]
    other = package.verify(built.path, OtherKey().public_key_pem())
    assert other.problems == ["the manifest's signature does not verify with this public key"]


@pytest.mark.req("VAL-07", "VAL-05")
def test_the_change_since_the_last_package_names_packages_tests_and_their_requirements(
    tmp_path: Path,
) -> None:
    before = content_of(every_p0_shown(), [iq.Check("packages", "lxml", "6.1.3", True)])
    after = content_of(every_p0_shown(), [iq.Check("packages", "lxml", "6.2.0", True)])
    after["oq"]["tests"][0] = {**after["oq"]["tests"][0], "file_sha256": "2"}
    change = package.change_since({**before, "package_sha256": "f00"}, after)
    assert change is not None
    assert change["packages"] == [{"name": "lxml", "was": "6.1.3", "now": "6.2.0"}]
    assert change["tests"] == [after["oq"]["tests"][0]["nodeid"]]
    assert change["requirements"] == after["oq"]["tests"][0]["reqs"]
    assert change["previous"]["sha256"] == "f00" and not change["urs_changed"]
    # An archive is read back as the previous package, with its own hash.
    built = package.build(before, out_dir=tmp_path, key=OtherKey())
    assert package.read_previous(built.path)["package_sha256"] == built.sha256


@pytest.mark.req("VAL-03")
def test_the_hand_kept_compliance_matrix_is_checked_against_the_catalogue_and_the_suite() -> None:
    matrix = trace(urs.requirements(), risk.assessment(), [])
    document = (
        "| ID | what | where | tests |\n|---|---|---|---|\n"
        "| P11-05, XX-99 | trail | `audit/` | `test_the_iq_reads_the_database_migrations_triggers_configuration_and_key`, `test_nobody_wrote_this` |\n"
    )
    assert package.hand_kept_findings(document, matrix, package.defined_tests()) == [
        "docs/compliance-matrix.md line 3: XX-99 is not in the catalogue",
        "docs/compliance-matrix.md line 3: the suite has no test test_nobody_wrote_this",
    ]
    real = (iq.PROJECT_ROOT / "docs" / "compliance-matrix.md").read_text(encoding="utf-8")
    assert package.hand_kept_findings(real, matrix, package.defined_tests()) == []


def test_the_package_json_is_what_the_pdf_and_html_are_made_from(tmp_path: Path) -> None:
    built = package.build(content_of(every_p0_shown()[:-1]), out_dir=tmp_path, key=OtherKey())
    with zipfile.ZipFile(built.path) as archive:
        stored = json.loads(archive.read("package.json"))
        html = archive.read("index.html").decode()
    assert stored["verdict"]["ok"] is False and len(stored["verdict"]["findings"]) == 1
    assert stored["verdict"]["findings"][0] in html

"""A validation package is a GMP record: its lead signs it, then a QA approver, another person,
approves it; each signature binds the archive's hash (VAL-04, P11-13, P11-14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from batchline.audit.services import Actor
from batchline.validation.models import ValidationPackage
from batchline.validation.services import PackageRefused, package_sign, signatures_of
from tests.configuration.test_configuration import signer
from tests.conftest import PASSWORD, make_user
from tests.validation.test_validate_command import every_p0_passed

pytestmark = pytest.mark.django_db


@pytest.fixture
def built(tmp_path: Path) -> ValidationPackage:
    results = tmp_path / "oq-results.json"
    results.write_text(json.dumps({"started": "s", "finished": "f", "tests": every_p0_passed()}))
    call_command("validate", "--oq-results", str(results), "--out", str(tmp_path))
    return ValidationPackage.objects.get()


def sign(user, package, meaning):
    return package_sign(actor=Actor.of(user, via="web"), signer=signer(user, meaning), package=package)


@pytest.mark.req("VAL-04", "P11-13", "P11-14", "A11-14")
def test_the_lead_signs_then_another_person_approves_each_binding_the_archive(built, personas) -> None:
    lead = make_user("lead", ["qa_reviewer"])
    both = make_user("both", ["qa_reviewer", "qa_approver"])
    approver = personas["qa_approver"]
    assert built.verdict_ok and built.p0_shown == built.p0 and len(built.sha256) == 64
    entry = built.signed_content()
    assert entry["sha256"] == built.sha256 and entry["key_fingerprint"].startswith("ed25519:")

    with pytest.raises(PackageRefused, match="The validation lead signs a package first"):
        sign(approver, built, "reviewed")
    sign(both, built, "reviewed")
    with pytest.raises(
        PackageRefused, match="You signed this package as its lead: another person approves it"
    ):
        sign(both, built, "approved")
    with pytest.raises(PackageRefused, match="A QA approver approves a package"):
        sign(lead, built, "approved")
    sign(approver, built, "approved")
    assert [(s.signer_username, s.meaning) for s in signatures_of(built)] == [
        ("both", "reviewed"),
        ("qa_approver", "approved"),
    ]
    with pytest.raises(PackageRefused, match="is approved already"):
        sign(lead, built, "reviewed")


@pytest.mark.req("VAL-04", "P11-14")
def test_an_archive_changed_since_it_was_built_is_not_signed(built) -> None:
    lead = make_user("lead", ["qa_reviewer"])
    path = Path(built.path)
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(PackageRefused, match="is not the one built"):
        sign(lead, built, "reviewed")
    path.unlink()
    with pytest.raises(PackageRefused, match="cannot be read"):
        sign(lead, built, "reviewed")
    assert signatures_of(built) == []


@pytest.mark.req("VAL-04", "P11-13")
def test_the_validation_page_lists_the_package_and_signs_it_in_the_dialog(built, personas, login) -> None:
    lead = make_user("lead", ["qa_reviewer"])
    page = login(lead).get("/validation/").content.decode()
    assert built.file_name in page and f"{built.p0_shown} of {built.p0}" in page
    client = login(lead)
    detail = client.get(f"/validation/{built.pk}/").content.decode()
    assert "waiting for its validation lead" in detail and "Sign as validation lead…" in detail
    wrong = client.post(
        f"/validation/{built.pk}/sign/",
        {"signer_username": "lead", "signer_password": "nope", "meaning": "reviewed"},
    )
    assert wrong.status_code == 422 and 'data-testid="dialog-refusal"' in wrong.content.decode()
    signed = client.post(
        f"/validation/{built.pk}/sign/",
        {
            "signer_username": "lead",
            "signer_password": PASSWORD,
            "meaning": "reviewed",
            "signer_comment": "IQ/OQ read",
        },
    )
    assert signed.status_code == 302
    detail = client.get(f"/validation/{built.pk}/").content.decode()
    assert "Reviewed by the validation lead" in detail and "waiting for QA approval" in detail
    assert "Approve and sign…" not in detail  # the lead may not approve
    archive = client.get(f"/validation/{built.pk}/archive/")
    assert archive.status_code == 200 and b"".join(archive.streaming_content).startswith(b"PK")
    assert login(personas["operator"]).get("/validation/").status_code == 403


def test_the_list_reads_the_packages_signatures_in_one_query_however_many_there_are(
    built, personas, login, tmp_path: Path
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(personas["qa_approver"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as seen:
            assert client.get("/validation/").status_code == 200
        return len(seen)

    queries()  # the first request of a session reads what later ones keep
    one = queries()
    sign(make_user("lead", ["qa_reviewer"]), built, "reviewed")
    results = tmp_path / "more.json"
    for n in range(2):  # two other runs: two other archives
        results.write_text(json.dumps({"started": f"run {n}", "finished": "f", "tests": every_p0_passed()}))
        call_command("validate", "--oq-results", str(results), "--out", str(tmp_path / f"more{n}"))
    assert ValidationPackage.objects.count() == 3 and queries() == one

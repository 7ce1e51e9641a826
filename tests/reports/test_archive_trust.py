"""Archives that can be trusted (issue 10 item 3): every signature of the batch, a manifest signed with the
installation key, the archived trail replayed against the archived record, each export in the audit trail."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection

from batchline.execution.models import StepValue
from batchline.keys import fingerprint, installation_public_key
from batchline.reports.archive import archive_export, archive_exports
from batchline.reports.content import content_sha256
from batchline.reports.documents import json_bytes
from batchline.reports.pdf import render_pdf
from batchline.reports.verify import sha256, verify_archive
from tests.quality.test_quality_services import make_people
from tests.reports.helpers import complete_batch
from tests.reports.test_archive import members, rezip
from tests.signatures.test_status import released

pytestmark = pytest.mark.django_db


def check(data: bytes, **kw):
    return verify_archive(data, public_key=installation_public_key(), **kw)


def forge(files: dict[str, bytes], edit, *, key: Ed25519PrivateKey | None = None) -> bytes:
    """A careful forger: edits the record JSON, renders the PDF again from it, rewrites the manifest, its
    hash and (with their own key, lacking the installation's) its signature."""
    files = dict(files)
    record = json.loads(files["record.json"])
    edit(record)
    files["record.json"] = json_bytes(record)
    files["record.pdf"] = render_pdf(record)
    manifest = json.loads(files["manifest.json"])
    manifest["content_sha256"] = content_sha256(record)
    manifest["members"] = {n: sha256(d) for n, d in files.items() if n in manifest["members"]}
    if key is not None:
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        manifest["key_fingerprint"] = fingerprint(pem)
    files["manifest.json"] = json_bytes(manifest)
    files["manifest.sha256"] = f"{sha256(files['manifest.json'])}\n".encode()
    if key is not None:
        files["manifest.sig"] = f"{key.sign(files['manifest.json']).hex()}\n".encode()
    return rezip(files)


def value_of(record, name):
    return next(v for s in record["steps"] for v in s["values"] if v["name"] == name)


@pytest.mark.req("P11-03", "P11-14", "RBE-07")
def test_the_archive_of_a_released_batch_holds_its_release_and_every_other_signature() -> None:
    people, recipe = make_people()
    batch = released(people, recipe)
    data, manifest_hash = archive_export(batch)
    report = check(data, manifest_sha256=manifest_hash)
    assert report.ok, report.problems
    signatures = json.loads(members(data)["signatures.json"])
    kinds = {(s["record_type"], s["meaning"]) for s in signatures}
    assert {
        ("execution.batch", "performed"),  # release to the floor, hold, resume
        ("execution.batchstep", "performed"),
        ("execution.batchstep", "verified"),
        ("execution.exceptiondisposition", "approved"),
        ("quality.deviation", "performed"),
        ("quality.deviation", "approved"),
        ("quality.reviewstage", "reviewed"),
        ("quality.reviewstage", "released"),
    } <= kinds
    assert all(s["status"]["state"] in ("valid", "superseded") for s in signatures)
    release = next(s for s in signatures if s["meaning"] == "released")
    assert any(
        n.startswith(f"signature {release['id']} (released, ") and n.endswith("exactly what was signed")
        for n in report.notes
    )
    # The export is in the audit trail with its manifest's hash.
    exports = archive_exports(batch.number)
    assert exports[-1]["manifest_sha256"] == manifest_hash and exports[-1]["signatures"] == len(signatures)


@pytest.mark.req("P11-03", "P11-01", "P11-14")
def test_an_archive_regenerated_with_a_changed_value_is_refused() -> None:
    _people, batch = complete_batch()
    data, _ = archive_export(batch)
    files = members(data)

    def edit(record):
        value_of(record, "w1")["text"] = "600"

    # Without the installation key the manifest's signature does not verify.
    report = check(forge(files, edit))
    assert any(p.startswith("the manifest's signature does not verify") for p in report.problems)
    # Signed with a key of the forger's own, the key is not the installation's.
    own = check(forge(files, edit, key=Ed25519PrivateKey.generate()))
    assert any("not the one given" in p for p in own.problems), own.problems
    # Either way the archived trail, replayed against the archived record, names the edit.
    value = value_of(json.loads(files["record.json"]), "w1")
    edited = (
        f"execution.stepvalue #{value['id']}: text reads '600' in the record but '598' in its audit trail: "
        "edited behind the application's back"
    )
    assert any(p.startswith(edited) for p in report.problems), report.problems
    assert any(p.startswith(edited) for p in own.problems)
    # Untouched, the same archive verifies; without the public key it is not accepted.
    assert check(data).ok
    unchecked = verify_archive(data)
    assert not unchecked.ok and unchecked.problems[0].startswith("no public key to check")


@pytest.mark.req("P11-03", "P11-14", "DI-05")
def test_a_legitimate_correction_is_told_from_an_edit_behind_the_applications_back(no_triggers) -> None:
    _people, batch = complete_batch()
    data, _ = archive_export(batch)
    report = check(data)
    assert report.ok, report.problems
    correction = StepValue.objects.get(step__batch=batch, corrects__isnull=False, name="w2")
    assert any(
        n.startswith(f"legitimate correction #{correction.pk} of w2 (640 → 604) by ")
        and "transcription error: balance showed 604" in n
        for n in report.notes
    ), report.notes
    assert not any("later correction" in p for p in report.problems)

    # The verified mean edited in the database: the export carries it, and its verifier refuses it.
    mean = StepValue.objects.filter(step__batch=batch, name="mean_weight").order_by("id").last()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE execution_stepvalue SET text = %s WHERE id = %s", ["602.00", mean.pk])
    tampered, _ = archive_export(batch)
    report = check(tampered)
    assert not report.ok
    assert any(
        p.startswith(f"execution.stepvalue #{mean.pk}: text reads '602.00' in the record but")
        for p in report.problems
    ), report.problems
    assert any(" (verified, " in p and "BROKEN: the signed content changed" in p for p in report.problems)
    assert not any("legitimate correction" in p for p in report.problems)


@pytest.mark.req("P11-03")
def test_a_signature_left_out_of_the_archive_is_named() -> None:
    _people, batch = complete_batch()
    data, _ = archive_export(batch)
    files = members(data)
    sigs = json.loads(files["signatures.json"])
    dropped = sigs.pop()
    files["signatures.json"] = json_bytes(sigs)
    report = check(rezip(files))
    assert any(f"#{dropped['id']} are in the audit extract but missing" in p for p in report.problems)

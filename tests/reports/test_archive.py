"""``batchline archive export`` and ``archive verify``: a self-contained archive, checked without a database."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from batchline.keys import installation_public_key
from batchline.reports.archive import archive_export
from batchline.reports.verify import sha256
from batchline.reports.verify import verify_archive as verify_with
from tests.reports.helpers import complete_batch

SRC = Path(__file__).resolve().parents[2] / "src"


def verify_archive(data, **kw):
    """Verify with this installation's public key, as ``batchline archive verify`` does."""
    return verify_with(data, public_key=installation_public_key(), **kw)


@pytest.fixture
def archive(db) -> tuple[bytes, str]:
    _people, batch = complete_batch()
    return archive_export(batch)


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rezip(files: dict[str, bytes], *, reseal: bool = False) -> bytes:
    """Write ``files`` back; ``reseal`` plays a careful forger who also rewrites the manifest and its hash."""
    files = dict(files)
    if reseal:
        manifest = json.loads(files["manifest.json"])
        manifest["members"] = {n: sha256(d) for n, d in files.items() if n in manifest["members"]}
        files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
        files["manifest.sha256"] = sha256(files["manifest.json"]).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.req("P11-03", "BR-03", "DI-02")
def test_an_exported_archive_verifies_and_holds_every_part(archive, tmp_path) -> None:
    data, manifest_hash = archive
    files = members(data)
    assert set(files) == {
        "record.json",
        "record.pdf",
        "record.xml",
        "audit.json",
        "signatures.json",
        "manifest.json",
        "manifest.sha256",
        "manifest.sig",
    }
    report = verify_archive(data, manifest_sha256=manifest_hash)
    assert report.ok, report.problems
    assert report.batch == "B-REC-1" and report.manifest_sha256 == manifest_hash
    assert any(n.endswith("valid: the record holds exactly what was signed") for n in report.notes)
    signatures = json.loads(files["signatures.json"])
    assert {s["meaning"] for s in signatures} == {"performed", "verified", "approved"}
    assert all(len(s["binding_hash"]) == 64 for s in signatures)


@pytest.mark.req("P11-03")
def test_the_commands_export_and_verify(db, tmp_path, capsys) -> None:
    complete_batch()
    out = tmp_path / "b.zip"
    call_command("archive", "export", "B-REC-1", "-o", str(out))
    assert "manifest SHA-256" in capsys.readouterr().out
    call_command("archive", "verify", str(out))
    assert "OK: archive of batch B-REC-1 verifies" in capsys.readouterr().out
    files = members(out.read_bytes())
    files["record.pdf"] = files["record.pdf"].replace(b"Batchline", b"Batchlime", 1)
    out.write_bytes(rezip(files))
    with pytest.raises(CommandError, match=r"(?s)TAMPERED: .*record\.pdf does not match its SHA-256"):
        call_command("archive", "verify", str(out))


@pytest.mark.req("P11-01", "P11-03")
def test_a_changed_member_is_named_as_tampered(archive) -> None:
    data, _ = archive
    files = members(data)
    record = json.loads(files["record.json"])
    record["steps"][4]["values"][0]["text"] = "600"
    files["record.json"] = json.dumps(record).encode()
    report = verify_archive(rezip(files))
    assert "member record.json does not match its SHA-256 in the manifest: it was changed" in report.problems
    # A forger who also rewrites the manifest is caught by the hash printed in the PDF.
    resealed = verify_archive(rezip(files, reseal=True))
    assert any("the record JSON's content hash is not the manifest's" in p for p in resealed.problems)


@pytest.mark.req("P11-03")
def test_a_changed_manifest_is_named_as_tampered(archive) -> None:
    data, manifest_hash = archive
    files = members(data)
    manifest = json.loads(files["manifest.json"])
    manifest["batch"] = "B-OTHER"
    files["manifest.json"] = json.dumps(manifest).encode()
    assert (
        "manifest.json does not match manifest.sha256: the manifest was changed"
        in verify_archive(rezip(files)).problems
    )
    # Resealed, it still differs from the hash recorded at export.
    files["manifest.sha256"] = sha256(files["manifest.json"]).encode()
    report = verify_archive(rezip(files), manifest_sha256=manifest_hash)
    assert report.problems[0] == (
        "the manifest's SHA-256 is not the one recorded at export: the manifest was replaced"
    )
    assert report.problems[1].startswith("the manifest's signature does not verify")
    assert len(report.problems) == 2


@pytest.mark.req("P11-03")
def test_a_removed_member_is_named_as_tampered(archive) -> None:
    data, _ = archive
    files = members(data)
    del files["signatures.json"]
    report = verify_archive(rezip(files))
    assert report.problems[0] == "member signatures.json is missing: removed from the archive"
    files = members(data)
    files["extra.txt"] = b"hello"
    assert "member extra.txt is not in the manifest: it was added" in verify_archive(rezip(files)).problems


@pytest.mark.req("P11-01", "P11-03")
def test_an_edited_audit_entry_is_named_even_when_the_manifest_is_resealed(archive) -> None:
    data, _ = archive
    files = members(data)
    audit = json.loads(files["audit.json"])
    victim = next(
        a for a in audit["entries"] if a["record_type"] == "execution.stepvalue" and '"640"' in a["changes"]
    )
    victim["changes"] = victim["changes"].replace("640", "604")
    files["audit.json"] = json.dumps(audit).encode()
    assert (
        "member audit.json does not match its SHA-256 in the manifest: it was changed"
        in verify_archive(rezip(files)).problems
    )
    report = verify_archive(rezip(files, reseal=True))
    assert (
        f"audit entry #{victim['id']} does not match its hash: the entry was edited after export"
        in report.problems
    )
    assert "the record's audit trail appendix differs from the audit extract" in report.problems


@pytest.mark.req("P11-03", "P11-14")
def test_a_signature_that_disagrees_with_its_chained_entry_is_named(archive) -> None:
    data, _ = archive
    files = members(data)
    sigs = json.loads(files["signatures.json"])
    sigs[0]["signer_name"] = "Somebody Else"
    files["signatures.json"] = json.dumps(sigs).encode()
    report = verify_archive(rezip(files, reseal=True))
    assert any(p.startswith(f"signature {sigs[0]['id']}: signer_name differs") for p in report.problems)


def test_verify_runs_without_django_or_a_database(archive, tmp_path) -> None:
    data, _ = archive
    path = tmp_path / "b.zip"
    path.write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    env["PYTHONPATH"] = str(SRC)
    key = tmp_path / "installation.pub"
    key.write_bytes(installation_public_key())
    code = (
        "import sys; from batchline.reports import verify; "
        "rc = verify.main([sys.argv[1], '--public-key', sys.argv[2]]); "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'; "
        "sys.exit(rc)"
    )
    ok = subprocess.run(
        [sys.executable, "-c", code, str(path), str(key)], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: archive of batch B-REC-1 verifies")
    files = members(data)
    del files["record.xml"]
    path.write_bytes(rezip(files))
    bad = subprocess.run(
        [sys.executable, "-c", code, str(path), str(key)], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "TAMPERED" in bad.stderr and "member record.xml is missing" in bad.stderr

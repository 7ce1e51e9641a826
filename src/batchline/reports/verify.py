"""Check a batch archive years later, without Django or a database (issue 5 item 7).

Imports only the standard library and ``batchline.rules``, so it runs with
``python -m batchline.reports.verify ARCHIVE.zip`` on any Python 3.11 with
the package's source at hand. What it checks, each failure named:

1. every member the format requires is there, and nothing unlisted was added;
2. the manifest's own SHA-256 (``manifest.sha256``, and the one given with
   ``--manifest-sha256`` when it was recorded elsewhere at export);
3. every member's SHA-256 against the manifest;
4. the record JSON's canonical SHA-256 against the manifest and against the
   hash printed in the PDF (read from its uncompressed information dictionary);
5. every audit entry's hash from its predecessor's hash and its own content
   (``rules.hashchain``), and the link between consecutive entries; the
   record's appendix must be the same entries;
6. every signature against its chained ``sign`` audit entry, and, where the
   signed content is in the archive, its binding hash (a binding broken by a
   later correction is reported as a note, as the pages do, not as tampering).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchline.rules import canonical, hashchain

FORMAT = "batchline.archive/1"
MANIFEST, MANIFEST_HASH = "manifest.json", "manifest.sha256"
REQUIRED = ("record.json", "record.pdf", "record.xml", "audit.json", "signatures.json")
PDF_HASH = re.compile(rb"batchline-content-sha256:([0-9a-f]{64})")


@dataclass
class ArchiveReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    batch: str = ""
    manifest_sha256: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def binding_hash(signature: dict[str, Any], content: Any) -> str:
    """The signature binding of ``signatures.services.binding_hash``, over the archived fields."""
    payload = canonical.dumps(
        {
            "record_type": signature["record_type"],
            "record_id": signature["record_id"],
            "meaning": signature["meaning"],
            "signer_id": signature["signer_id"],
            "signer_username": signature["signer_username"],
            "signer_name": signature["signer_name"],
            "signed_at": signature["signed_at"],
            "comment": signature["comment"],
            "method": signature["method"],
            "witness": signature["witness"],
            "content": content,
        }
    )
    return sha256(payload.encode())


def _fields(a: dict[str, Any]) -> hashchain.Fields:
    return (
        a["at"],
        a["actor_id"],
        a["actor_username"],
        a["actor_name"],
        a["action"],
        a["record_type"],
        a["record_id"],
        a["changes"],
        a["reason"],
        a["via"],
    )


def _check_audit(entries: list[dict[str, Any]], report: ArchiveReport) -> None:
    previous: dict[str, Any] | None = None
    for a in entries:
        try:
            recomputed = hashchain.entry_hash(a["prev_hash"], _fields(a))
        except (KeyError, TypeError, ValueError) as exc:
            report.problems.append(f"audit entry #{a.get('id')} is malformed: {exc}")
            continue
        if recomputed != a["hash"]:
            report.problems.append(
                f"audit entry #{a['id']} does not match its hash: the entry was edited after export"
            )
        if previous is not None:
            if a["id"] <= previous["id"]:
                report.problems.append(f"audit entry #{a['id']} is out of order")
            elif a["id"] == previous["id"] + 1 and a["prev_hash"] != previous["hash"]:
                report.problems.append(
                    f"audit entry #{a['id']} does not link to entry #{previous['id']}: the chain is broken"
                )
        previous = a


def _check_signatures(
    signatures: list[dict[str, Any]], entries: list[dict[str, Any]], report: ArchiveReport
) -> None:
    signed = {
        a["record_id"]: a
        for a in entries
        if a["record_type"] == "signatures.signature" and a["action"] == "sign"
    }
    for s in signatures:
        entry = signed.get(str(s["id"]))
        if entry is None:
            report.problems.append(f"signature {s['id']} has no sign entry in the audit extract")
            continue
        recorded = {k: v[1] for k, v in json.loads(entry["changes"]).items()}
        for key in (
            "binding_hash",
            "signer_name",
            "signer_username",
            "meaning",
            "signed_at",
            "record_type",
            "record_id",
            "comment",
        ):
            if recorded.get(key) != s.get(key):
                report.problems.append(
                    f"signature {s['id']}: {key} differs from its audit entry #{entry['id']} "
                    f"({s.get(key)!r} against {recorded.get(key)!r})"
                )
        if "content" in s:
            if binding_hash(s, s["content"]) == s["binding_hash"]:
                report.notes.append(
                    f"signature {s['id']} ({s['meaning']}, {s['signer_name']}): binding intact"
                )
            else:
                report.notes.append(
                    f"signature {s['id']} ({s['meaning']}, {s['signer_name']}): the signed content changed after "
                    "signing (a later correction), as the record shows"
                )


def verify_archive(source: str | Path | bytes, *, manifest_sha256: str | None = None) -> ArchiveReport:
    """Check an archive (a path or its bytes); the report names everything wrong with it."""
    report = ArchiveReport()
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        zf = zipfile.ZipFile(io.BytesIO(raw))
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    except (OSError, zipfile.BadZipFile) as exc:
        report.problems.append(f"not a readable archive: {exc}")
        return report

    for name in (MANIFEST, MANIFEST_HASH, *REQUIRED):
        if name not in members:
            report.problems.append(f"member {name} is missing: removed from the archive")
    if MANIFEST not in members:
        return report
    manifest_bytes = members[MANIFEST]
    report.manifest_sha256 = sha256(manifest_bytes)
    stored = members.get(MANIFEST_HASH, b"").decode("ascii", "replace").strip()
    if MANIFEST_HASH in members and stored != report.manifest_sha256:
        report.problems.append("manifest.json does not match manifest.sha256: the manifest was changed")
    if manifest_sha256 and manifest_sha256.lower() != report.manifest_sha256:
        report.problems.append(
            "the manifest's SHA-256 is not the one recorded at export: the manifest was replaced"
        )
    try:
        manifest = json.loads(manifest_bytes)
        listed: dict[str, str] = manifest["members"]
        report.batch = manifest.get("batch", "")
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(f"manifest.json is unreadable: {exc}")
        return report
    if manifest.get("format") != FORMAT:
        report.problems.append(f"unknown archive format {manifest.get('format')!r}")

    for name, digest in sorted(listed.items()):
        if name not in members:
            if name not in REQUIRED:
                report.problems.append(f"member {name} is missing: removed from the archive")
        elif sha256(members[name]) != digest:
            report.problems.append(
                f"member {name} does not match its SHA-256 in the manifest: it was changed"
            )
    for name in sorted(set(members) - set(listed) - {MANIFEST, MANIFEST_HASH}):
        report.problems.append(f"member {name} is not in the manifest: it was added")

    try:
        record = json.loads(members["record.json"])
        audit = json.loads(members["audit.json"])
        signatures = json.loads(members["signatures.json"])
    except (KeyError, ValueError) as exc:
        report.problems.append(f"a record member is unreadable: {exc}")
        return report

    content_hash = sha256(canonical.dumps(record).encode())
    if content_hash != manifest.get("content_sha256"):
        report.problems.append("the record JSON's content hash is not the manifest's")
    printed = PDF_HASH.findall(members.get("record.pdf", b""))
    if not printed:
        report.problems.append("the PDF carries no content hash")
    elif any(p.decode() != content_hash for p in printed):
        report.problems.append(
            "the hash printed in the PDF is not the record JSON's: they are different records"
        )

    entries = audit.get("entries", [])
    _check_audit(entries, report)
    if record.get("audit_trail") != entries:
        report.problems.append("the record's audit trail appendix differs from the audit extract")
    _check_signatures(signatures, entries, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Batchline batch archive without a database.")
    parser.add_argument("archive")
    parser.add_argument(
        "--manifest-sha256", help="the manifest hash recorded at export, if it was kept elsewhere"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the notes on each signature")
    args = parser.parse_args(argv)
    report = verify_archive(args.archive, manifest_sha256=args.manifest_sha256)
    if args.verbose:
        for note in report.notes:
            print(f"note: {note}")
    if report.ok:
        print(f"OK: archive of batch {report.batch} verifies; manifest SHA-256 {report.manifest_sha256}")
        return 0
    print(f"TAMPERED: {args.archive} does not verify:", file=sys.stderr)
    for problem in report.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""``archive export``: one batch's record, its renderings, audit extract and signatures in one zip.

The archive is self-contained: ``verify.py`` checks it without the database.
Members are written with a fixed date so that only their content matters.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from batchline.audit.models import AuditEntry
from batchline.execution.models import Batch
from batchline.rules import canonical
from batchline.signatures.models import Signature

from .batchml import render_batchml
from .content import content_sha256, record_content
from .documents import json_bytes
from .pdf import render_pdf
from .verify import FORMAT, MANIFEST, MANIFEST_HASH, sha256

_EPOCH = (1980, 1, 1, 0, 0, 0)


def _step_contents(content: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What each step signature binds (``execution.services.step_content``), from the record's values."""
    out = {}
    for s in content["steps"]:
        values = sorted(s["values"], key=lambda v: v["id"])
        step_id = next(
            (x["record_id"] for x in s["signatures"] if x["record_type"] == "execution.batchstep"), None
        )
        if step_id is not None:
            out[step_id] = {
                "batch": content["header"]["batch"],
                "step": s["key"],
                "values": [
                    {
                        "id": v["id"],
                        "name": v["name"],
                        "text": v["text"],
                        "unit": v["unit"],
                        "corrects": v["corrects"],
                    }
                    for v in values
                ],
            }
    return out


def _signatures(content: dict[str, Any]) -> list[dict[str, Any]]:
    ids = [s["id"] for s in content["signatures"]] + [
        x["id"] for s in content["steps"] for x in s["signatures"]
    ]
    steps = _step_contents(content)
    out = []
    for s in Signature.objects.filter(pk__in=ids).order_by("id"):
        row: dict[str, Any] = {
            "id": s.pk,
            "record_type": s.record_type,
            "record_id": s.record_id,
            "meaning": s.meaning,
            "signer_id": s.signer_id,
            "signer_username": s.signer_username,
            "signer_name": s.signer_name,
            "signed_at": content_time(s.signed_at),
            "comment": s.comment,
            "method": s.method,
            "witness": s.witness,
            "manifestation": s.manifestation(),
            "binding_hash": s.binding_hash,
        }
        if s.record_type == "execution.batchstep" and s.record_id in steps:
            row["content"] = steps[s.record_id]
        out.append(row)
    return out


def content_time(value: Any) -> str:
    return str(canonical.normalise(value))


def archive_export(batch: Batch) -> tuple[bytes, str]:
    """The archive's bytes and its manifest's SHA-256 (worth recording elsewhere: a ticket, a log)."""
    content = record_content(batch)
    head = AuditEntry.objects.order_by("-id").values_list("id", "hash").first()
    audit = {
        "entries": content["audit_trail"],
        "trail_head_at_export": {"id": head[0], "hash": head[1]} if head else None,
        "how_to_check": "hash = sha256(prev_hash + sha256(payload)), payload as in batchline/rules/hashchain.py",
    }
    members = {
        "record.json": json_bytes(content),
        "record.pdf": render_pdf(content),
        "record.xml": render_batchml(content),
        "audit.json": json_bytes(audit),
        "signatures.json": json_bytes(_signatures(content)),
    }
    manifest = {
        "format": FORMAT,
        "batch": content["header"]["batch"],
        "generated_at": content["generated_at"],
        "content_sha256": content_sha256(content),
        "members": {name: sha256(data) for name, data in members.items()},
    }
    manifest_bytes = json_bytes(manifest)
    manifest_hash = sha256(manifest_bytes)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in [
            *members.items(),
            (MANIFEST, manifest_bytes),
            (MANIFEST_HASH, f"{manifest_hash}\n".encode()),
        ]:
            zf.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue(), manifest_hash


def read_manifest(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read(MANIFEST))

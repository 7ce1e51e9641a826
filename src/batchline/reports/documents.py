"""One record, three renderings: what the command, the page's download and the archive call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from batchline.equipment.selectors import display_zone
from batchline.execution.models import Batch

from .batchml import render_batchml
from .content import record_content
from .pdf import render_pdf

FORMATS = ("pdf", "json", "batchml")


@dataclass(frozen=True)
class Document:
    data: bytes
    content_type: str
    filename: str


def json_bytes(content: Any) -> bytes:
    """Readable JSON; its hash is over the canonical form of the same data (``content.content_sha256``)."""
    return (json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def render(content: dict[str, Any], fmt: str) -> Document:
    number = content["header"]["batch"]
    if fmt == "pdf":
        return Document(render_pdf(content), "application/pdf", f"batch-record-{number}.pdf")
    if fmt == "json":
        return Document(json_bytes(content), "application/json", f"batch-record-{number}.json")
    if fmt == "batchml":
        return Document(render_batchml(content), "application/xml", f"batch-record-{number}.xml")
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def batch_document(batch: Batch, fmt: str) -> Document:
    # In the site's zone whoever asks (a page, the command line): manifestations and times agree.
    with timezone.override(display_zone()):
        return render(record_content(batch), fmt)

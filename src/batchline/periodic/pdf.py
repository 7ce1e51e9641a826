"""A periodic report as a PDF/A-2b document, with the helpers of the batch record (``reports/``).

Printed from the report's stored content (``periodic/sections.py``), never the
live records: the PDF shows what was signed. Every page names the report, when
it was prepared and the SHA-256 of its content; the signature's manifestation
and its status (valid, or BROKEN when the content no longer matches) close it.
"""

from __future__ import annotations

import io
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from batchline.reports.layout import Story, Times
from batchline.reports.pdf import landscape_document, numbered_canvas
from batchline.reports.pdfa import fonts
from batchline.rules import canonical

from .sections import sections_of


def header_fields(view: dict[str, Any], when: Any) -> list[tuple[str, str]]:
    """The report's own particulars, as the page and the PDF head them."""
    report = view["report"]
    data = view["data"]
    period = data["period"]
    start = when(period["start"]) if period["start"] else "the installation's start"
    rows = [
        ("Report", f"{report.number}: {report.get_kind_display()}"),
        ("Period", f"after {start}, up to {when(period['end'])}"),
        ("Prepared", f"{when(canonical.normalise(report.prepared_at))} by {report.prepared_by.printed_name}"),
        ("State", report.get_state_display()),
        ("Content SHA-256", report.content_sha256),
    ]
    previous = data.get("previous")
    if previous:
        rows.insert(
            2,
            (
                "Previous",
                f"{previous['number']}, signed {when(previous['signed_at'])} by {previous['signed_by']['name']}",
            ),
        )
    if not view["content_intact"]:
        rows.append(("CONTENT", "CHANGED outside Batchline: it no longer matches its SHA-256"))
    return rows


def signature_line(view: dict[str, Any]) -> str:
    sig = view["signature"]
    if sig is None:
        return "Not signed."
    comment = f" — “{sig.comment}”" if sig.comment else ""
    return f"{sig.manifestation()}{comment} — signature {view['signature_status']}"


def render_report_pdf(view: dict[str, Any]) -> bytes:
    """The report as PDF/A-2b bytes, times in the zone in force (the site's, set by the caller)."""
    fonts()
    report = view["report"]
    times = Times(ZoneInfo(timezone.get_current_timezone_name()))
    prepared = str(canonical.normalise(report.prepared_at))
    title = f"{report.get_kind_display()} {report.number}"
    buffer = io.BytesIO()
    doc = landscape_document(
        buffer,
        title=title,
        digest=report.content_sha256,
        keywords=[report.get_kind_display().lower(), report.number, "PDF/A-2b"],
    )
    story = Story(doc.width)
    story.say(title, "title")
    story.fields(header_fields(view, times))
    for n, section in enumerate(sections_of(view["data"], times), start=1):
        story.section(f"{n}. {section.title}")
        for note in section.notes:
            story.say(note)
        if section.fields:
            story.fields([(label, str(value)) for label, value in section.fields])
        if section.has_table:
            story.table(section.head, section.rows, section.widths)
    story.section("Signature of the reviewer")
    story.say(signature_line(view), "sig")
    doc.build(
        story.flowables, canvasmaker=numbered_canvas(title, prepared, times(prepared), report.content_sha256)
    )
    return buffer.getvalue()

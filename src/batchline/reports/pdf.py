"""The executed batch record as a PDF (ReportLab platypus), rendered from :func:`content.record_content`.

Every page carries the batch, the generation time, the SHA-256 of the
record's canonical JSON content and "page x of y". The hash is also written
into the document information dictionary (``/Subject``), which ReportLab
leaves uncompressed, so an archive can be checked with the standard library
alone (``reports/verify.py``).

PDF/A: ReportLab's open-source edition has no PDF/A switch (no XMP metadata
stream, no output intent, no conformance declaration; those are in the
commercial ReportLab PLUS). What it does allow is done: every font is
embedded (Bitstream Vera, shipped with ReportLab, instead of the
non-embedded standard 14), no encryption, no JavaScript, no external links.
The document is therefore not *declared* PDF/A-1b; docs/records.md says so.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Table,
    TableStyle,
)

from .content import content_sha256

REGULAR, BOLD, ITALIC = "BatchlineVera", "BatchlineVeraBold", "BatchlineVeraItalic"
HASH_PREFIX = "batchline-content-sha256:"
CHANGED = "‡"  # the marker on a value that was changed after its first entry

# 21 CFR 211.188(b): what a batch production and control record must hold, and where this one holds it.
CFR_211_188_B: list[tuple[str, str, str]] = [
    ("(1)", "Dates", "every step: started, completed, verified; every value, signature and entry"),
    ("(2)", "Identity of individual major equipment and lines used", "section 3, Equipment used"),
    (
        "(3)",
        "Specific identification of each batch of component or in-process material used",
        "section 4, Materials",
    ),
    (
        "(4)",
        "Weights and measures of components used in the course of processing",
        "section 4, Materials; step values",
    ),
    ("(5)", "In-process and laboratory control results", "section 5, In-process control results"),
    (
        "(6)",
        "Inspection of the packaging and labeling area before and after use",
        "section 6, Line clearance",
    ),
    ("(7)", "Actual yield and percentage of theoretical yield at appropriate phases", "section 7, Yields"),
    (
        "(8)",
        "Complete labeling control records, including specimens or copies of all labeling used",
        "section 8, Labeling",
    ),
    ("(9)", "Description of drug product containers and closures", "section 9, Containers and closures"),
    ("(10)", "Any sampling performed", "section 10, Sampling"),
    (
        "(11)",
        "Identification of the persons performing and directly supervising or checking each significant step",
        "every step: performer, verifier, signature manifestations",
    ),
    ("(12)", "Any investigation made according to 211.192", "section 12, Deviations and investigations"),
    ("(13)", "Results of examinations made in accordance with 211.134", "section 8, Labeling (examinations)"),
]
NONE = "None recorded."


@cache
def _fonts() -> None:
    pdfmetrics.registerFont(TTFont(REGULAR, "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(BOLD, "VeraBd.ttf"))
    pdfmetrics.registerFont(TTFont(ITALIC, "VeraIt.ttf"))
    pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD, italic=ITALIC, boldItalic=BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=REGULAR, fontSize=8, leading=10)
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=8.5),
        "cell": ParagraphStyle("cell", parent=base, fontSize=7, leading=8.5),
        "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=15, leading=19, spaceAfter=6),
        "h1": ParagraphStyle(
            "h1", parent=base, fontName=BOLD, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4
        ),
        "h2": ParagraphStyle(
            "h2", parent=base, fontName=BOLD, fontSize=9, leading=11, spaceBefore=6, spaceAfter=2
        ),
        "sig": ParagraphStyle("sig", parent=base, fontName=ITALIC),
        "alert": ParagraphStyle("alert", parent=base, textColor=colors.HexColor("#a00000")),
    }


def _zone(time_zone: str | None) -> ZoneInfo:
    # The zone signature manifestations are written in, so that every time on the page agrees.
    return ZoneInfo(time_zone or settings.TIME_ZONE)


class _Times:
    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def __call__(self, iso: str | None) -> str:
        if not iso:
            return ""
        at = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(self.zone)
        return at.strftime("%Y-%m-%d %H:%M:%S %Z")


def _recorded(v: dict[str, Any]) -> str:
    """The number in the site's notation, and what was typed where that reads otherwise (DI-05)."""
    shown = v.get("shown", v["text"])
    return f"{shown} (typed {v['typed']})" if v.get("typed") else shown


def _who(person: Any) -> str:
    """The name as it stood when the person acted; a later change of name shows beside it."""
    if not person:
        return ""
    if isinstance(person, dict):
        now = f", now {person['name_now']}" if person.get("name_now") else ""
        return f"{person.get('name', '')} ({person.get('username', '')}{now})"
    return str(person)


def _configuration_text(config: dict[str, Any] | None, t: Any) -> str:
    """The configuration versions a batch ran under, in words (docs/configuration.md)."""
    if not config or config.get("at_creation") is None:
        return "not recorded"
    text = f"version {config['at_creation']} in force at creation"
    later = config.get("came_into_force") or []
    if later:
        text += "; then " + ", ".join(f"version {v['number']} from {t(v['effective_at'])}" for v in later)
    stages = config.get("at_stages") or []
    if stages:
        text += "; at the review stages: " + ", ".join(
            f"{s['stage'].replace('_', ' ')} {s['version']}" for s in stages
        )
    return text


def _status(s: dict[str, Any]) -> str:
    """``[valid]``, ``[superseded by correction #12 …]`` or ``[BROKEN: …]`` after a signature."""
    status = s.get("status")
    if not status:
        return ""
    return f" [{status['text']}]"


def _numbered_canvas(batch: str, generated: str, digest: str) -> type[Canvas]:
    """A canvas that holds its pages until the end, so each can say "page x of y"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            width, _ = self._pagesize
            self.saveState()
            self.setFont(REGULAR, 6.5)
            self.setFillColor(colors.HexColor("#333333"))
            self.drawString(12 * mm, 8 * mm, f"Executed batch record {batch} · generated {generated}")
            self.drawString(12 * mm, 5 * mm, f"Content SHA-256: {digest}")
            self.drawRightString(width - 12 * mm, 8 * mm, f"Page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


_ROW_LINES = 40  # lines of 7-point text in one table row: well inside a landscape page's frame


def _wrap(value: Any, width: float, font: str = REGULAR, size: float = 7) -> str:
    """``value`` as lines no wider than ``width`` points: broken at spaces, and inside a word (JSON,
    hashes) only where the word alone is too wide, so nothing runs into the next column."""
    text = "" if value is None else str(value)
    if "\n" not in text and (len(text) <= 28 or pdfmetrics.stringWidth(text, font, size) <= width):
        return text  # short text stays whole, as in the other tables (it may use the cell's padding)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if pdfmetrics.stringWidth(candidate, font, size) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for ch in word:
                if pdfmetrics.stringWidth(line + ch, font, size) > width and line:
                    lines.append(line)
                    line = ""
                line += ch
        lines.append(line)
    return "\n".join(lines)


_GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), REGULAR, 7),
        ("FONT", (0, 0), (-1, 0), BOLD, 7),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]
)


class _Doc:
    """Builds the flowables of one document."""

    def __init__(self, content: dict[str, Any], times: _Times, width: float) -> None:
        self.c = content
        self.t = times
        self.width = width
        self.s = _styles()
        self.story: list[Any] = []

    def p(self, text: str, style: str = "body") -> Paragraph:
        return Paragraph(text, self.s[style])

    def para(self, text: str, style: str = "body") -> None:
        self.story.append(self.p(text, style))

    def cell(self, text: Any) -> Any:
        """Short text stays a plain string (fast); long text wraps in a paragraph."""
        text = "" if text is None else str(text)
        if len(text) <= 28 and "\n" not in text:
            return text
        return Paragraph(escape(text), self.s["cell"])

    def table(
        self,
        head: Sequence[str],
        rows: Iterable[Sequence[Any]],
        widths: Sequence[float],
        marks: Sequence[int] = (),
        *,
        plain: bool = False,
    ) -> None:
        """A grid; with ``plain``, long text is wrapped into lines here instead of into paragraphs
        (the audit appendix: thousands of cells of data, no markup, a few times faster to lay out)."""
        if plain:
            inner = [w * self.width - 4 for w in widths]  # less the cell's left and right padding
            data = [list(head)]
            for r in rows:
                cells = [_wrap(x, inner[i]).split("\n") for i, x in enumerate(r)]
                # A table row cannot break across pages: a cell longer than a page's worth of lines
                # (a recipe document in a batch's creation entry) goes on in the rows below it.
                for start in range(0, max(len(c) for c in cells), _ROW_LINES):
                    data.append(["\n".join(c[start : start + _ROW_LINES]) for c in cells])
        else:
            data = [list(head), *([self.cell(x) for x in r] for r in rows)]
        if len(data) == 1:
            self.para(NONE)
            return
        t = Table(data, colWidths=[w * self.width for w in widths], repeatRows=1)
        style = TableStyle(_GRID.getCommands())
        for row in marks:
            style.add("BACKGROUND", (0, row + 1), (-1, row + 1), colors.HexColor("#fde8e8"))
        t.setStyle(style)
        self.story.append(t)

    # -- sections ---------------------------------------------------------------------------------

    def header(self) -> None:
        h = self.c["header"]
        site = h.get("site")
        self.para(f"Executed batch record — batch {escape(h['batch'])}", "title")
        rows = [
            ("Product", f"{h['product_name']} ({h['product_code']})"),
            ("Strength", h.get("strength") or "not held in the master data"),
            ("Batch", h["batch"]),
            ("Master recipe", f"{h['recipe_code']} version {h['recipe_version']} — {h['recipe_name']}"),
            (
                "Batch size",
                f"{h['planned_quantity']} {h['unit']} (nominal {h['nominal_quantity']} {h['unit']})",
            ),
            ("Site", f"{site['name']} ({site['code']})" if site else "not recorded"),
            ("Batch state", h["state"]),
            ("Created", f"{self.t(h['created_at'])} by {_who(h['created_by'])}"),
            ("GMP configuration", _configuration_text(h.get("configuration"), self.t)),
            ("Generated", f"{self.t(self.c['generated_at'])} (times in {self.t.zone.key})"),
            ("Content SHA-256", content_sha256(self.c)),
        ]
        t = Table([[k, self.cell(v)] for k, v in rows], colWidths=[0.22 * self.width, 0.78 * self.width])
        t.setStyle(
            TableStyle(
                [
                    *_GRID.getCommands()[:1],
                    ("FONT", (0, 0), (0, -1), BOLD, 7),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        self.story.append(t)
        self.para(
            f"{CHANGED} marks a value changed after its first entry; the original stays readable beside its "
            "correction, with the reason and who changed it.",
            "small",
        )
        self.story.append(self.p("Batch signatures", "h2"))
        self.signatures(self.c["signatures"])
        self.story.append(self.p("Contents and 21 CFR 211.188(b)", "h2"))
        self.table(
            ["211.188(b)", "What the regulation asks for", "Where this record holds it"],
            CFR_211_188_B,
            [0.08, 0.52, 0.40],
        )

    def signatures(self, sigs: list[dict[str, Any]]) -> None:
        if not sigs:
            self.para(NONE, "small")
        for s in sigs:
            comment = f" — “{escape(s['comment'])}”" if s.get("comment") else ""
            status = escape(_status(s))
            broken = (s.get("status") or {}).get("state") == "broken"
            self.para(f"Signed: {escape(s['manifestation'])}{comment}{status}", "alert" if broken else "sig")

    def signature_statuses(self) -> None:
        """Every signature of the batch and its status (21 CFR 11.70): what each signs and whether it holds."""
        self.para("14. Signatures and their status (21 CFR 11.50, 11.70)", "h1")
        self.para(
            "Every signature of the batch: its steps and corrections, dispositions, deviations, review stages "
            "and release. Valid: the record holds exactly what was signed. Superseded: what was signed is "
            "intact and a later change made through the application (named, with who, when and why) stands "
            "beside it. BROKEN: the signed content changed outside the application.",
            "small",
        )
        records = self.c.get("signature_records", [])
        if not records:
            self.para(NONE)
            return
        rows, marks = [], []
        for i, s in enumerate(records):
            status = s.get("status") or {}
            if status.get("state") == "broken":
                marks.append(i)
            rows.append(
                [
                    f"#{s['id']}",
                    f"{s['record_type']}:{s['record_id']}",
                    s["manifestation"],
                    status.get("text", ""),
                ]
            )
        self.table(["#", "Signs", "Manifestation", "Status"], rows, [0.05, 0.17, 0.33, 0.45], marks)

    def steps(self) -> None:
        self.story.append(PageBreak())
        self.para("1. Steps", "h1")
        for n, s in enumerate(self.c["steps"], start=1):
            self.step(n, s)

    def step(self, n: int, s: dict[str, Any]) -> None:
        t = self.t
        block: list[Any] = [
            self.p(
                f"1.{n} {escape(s['title'])} — {escape(s['operation'])} · {escape(s['key'])} · {s['state']}",
                "h2",
            )
        ]
        if s["instruction"]:
            block.append(self.p(f"Instruction: {escape(s['instruction'])}"))
        if s["sop"]:
            block.append(self.p(f"SOP: {escape(s['sop'])}"))
        if s["checklist"]:
            block.append(self.p("Checklist: " + "; ".join(escape(x) for x in s["checklist"])))
        who = []
        if s["started_at"]:
            who.append(f"Started {t(s['started_at'])} by {escape(_who(s['started_by']))}")
        if s["completed_at"]:
            who.append(f"performed (completed) {t(s['completed_at'])} by {escape(_who(s['completed_by']))}")
        if s["verified_at"]:
            who.append(f"verified {t(s['verified_at'])} by {escape(_who(s['verified_by']))}")
        block.append(self.p(" · ".join(who) if who else "Not started.", "small"))
        self.story.append(KeepTogether(block))
        if s["values"]:
            rows, marks = [], []
            for i, v in enumerate(s["values"]):
                result = (
                    "in specification"
                    if v["in_specification"]
                    else ("OUT OF SPECIFICATION" if v["in_specification"] is False else "")
                )
                mark = f" {CHANGED} changed after entry" if v["changed_after_entry"] else ""
                corr = f" correction: {v['reason']}" if v["corrects"] else ""
                label = (
                    v["label"]
                    + (" (calculated)" if v["source"] == "calculated" else "")
                    + (" [critical]" if v["critical"] else "")
                )
                rows.append(
                    [
                        label,
                        f"{_recorded(v)}{mark}{corr}",
                        v["unit"],
                        v["target"],
                        v["specification"],
                        result,
                        f"{_who(v['entered_by'])}, {t(v['entered_at'])}",
                    ]
                )
                if v["in_specification"] is False:
                    marks.append(i)
            self.table(
                ["Value", "Recorded", "Unit", "Target", "Specification", "Result", "Entered by, at"],
                rows,
                [0.17, 0.2, 0.06, 0.07, 0.13, 0.12, 0.25],
                marks,
            )
        for m in s["materials"]:
            self.para(
                f"Material used: {escape(m['material_code'])} {escape(m['material_name'])}, lot {escape(m['lot'])}, "
                f"container {escape(m['container'])}, {m['quantity']} {escape(m['unit'])} at {t(m['at'])}",
                "small",
            )
        for e in s["equipment"]:
            self.para(
                f"Equipment used: {escape(e['equipment'])} {escape(e['name'])} ({escape(e['class'])}), claimed {t(e['at'])}",
                "small",
            )
        if s["signatures"]:
            self.signatures(s["signatures"])
        for e in (x for x in self.c["exceptions"] if x["step"] == s["key"]):
            self.para(f"Exception {escape(e['code'])} ({e['severity']}): {escape(e['message'])}", "alert")

    def equipment(self) -> None:
        self.para("2. Exceptions and their dispositions", "h1")
        rows = []
        for e in self.c["exceptions"]:
            d = e.get("disposition")
            disp = (
                f"{d['decision']}: {d.get('comment', '')} — {d.get('manifestation', '')}"
                if d
                else "not dispositioned"
            )
            rows.append(
                [
                    e["at"] and self.t(e["at"]),
                    e["code"],
                    e.get("category") or "",
                    e["severity"],
                    e["step"] or "",
                    e["message"],
                    _who(e.get("user")),
                    disp,
                ]
            )
        self.table(
            ["At", "Code", "Category", "Severity", "Step", "Message", "User", "Disposition"],
            rows,
            [0.12, 0.12, 0.08, 0.06, 0.08, 0.26, 0.12, 0.16],
        )
        self.para("3. Equipment used (21 CFR 211.188(b)(2))", "h1")
        self.table(
            ["Unit", "Name", "Class", "Event", "At", "By", "Text"],
            [
                [e["equipment"], e["name"], e["class"], e["kind"], self.t(e["at"]), _who(e["by"]), e["text"]]
                for e in self.c["equipment"]
            ],
            [0.1, 0.15, 0.12, 0.1, 0.15, 0.18, 0.2],
        )

    def materials(self) -> None:
        self.para("4. Materials: components used, lots and containers (211.188(b)(3), (4))", "h1")
        self.table(
            ["Step", "Material", "Lot", "Supplier lot", "Expiry", "Container", "Quantity", "At", "By"],
            [
                [
                    m["step"],
                    f"{m['material_code']} {m['material_name']}",
                    m["lot"],
                    m["supplier_lot"],
                    self.t(m["expires_at"]),
                    m["container"],
                    f"{m['quantity']} {m['unit']}",
                    self.t(m["at"]),
                    _who(m["by"]),
                ]
                for m in self.c["materials"]
            ],
            [0.08, 0.15, 0.08, 0.08, 0.13, 0.08, 0.08, 0.16, 0.16],
        )
        self.para("Weighings and movements", "h2")
        self.table(
            ["Step", "Movement", "Container", "Lot", "Material", "Quantity", "Device", "At", "By", "Reason"],
            [
                [
                    w["step"],
                    w["kind"],
                    w["container"],
                    w["lot"],
                    w["material_code"],
                    f"{w['quantity']} {w['unit']}",
                    w["device"],
                    self.t(w["at"]),
                    _who(w["by"]),
                    w["reason"],
                ]
                for w in self.c["weighings"]
            ],
            [0.07, 0.07, 0.08, 0.08, 0.07, 0.1, 0.1, 0.15, 0.15, 0.13],
        )
        self.para("Containers dispensed for this batch", "h2")
        self.table(
            ["Container", "Lot", "Material", "Net", "Tare"],
            [
                [
                    c["container"],
                    c["lot"],
                    f"{c['material_code']} {c['material_name']}",
                    f"{c['quantity']} {c['unit']}",
                    c["tare"] or "",
                ]
                for c in self.c["dispensed_containers"]
            ],
            [0.15, 0.15, 0.4, 0.15, 0.15],
        )

    def results(self) -> None:
        self.para("5. In-process control results (211.188(b)(5))", "h1")
        rows = [
            [
                s["key"],
                v["label"],
                f"{_recorded(v)} {v['unit']}".strip() + (f" {CHANGED}" if v["changed_after_entry"] else ""),
                v["specification"],
                "yes" if v["in_specification"] else ("NO" if v["in_specification"] is False else ""),
                self.t(v["entered_at"]),
            ]
            for s in self.c["steps"]
            for v in s["values"]
            if v["specification"] or v["critical"]
        ]
        self.table(
            ["Step", "Result", "Value", "Specification", "Within", "At"],
            rows,
            [0.14, 0.22, 0.18, 0.18, 0.08, 0.2],
        )
        self.para("6. Line clearance: inspection of the area before and after use (211.188(b)(6))", "h1")
        rows = [
            [
                s["key"],
                s["title"],
                "; ".join(s["checklist"]),
                s["state"],
                f"{_who(s['completed_by'])}, {self.t(s['completed_at'])}",
            ]
            for s in self.c["steps"]
            if s["kind"] == "checklist"
        ]
        self.table(
            ["Step", "Check", "Items confirmed", "State", "Performed by, at"],
            rows,
            [0.12, 0.2, 0.33, 0.1, 0.25],
        )
        self.para("7. Yields (211.188(b)(7))", "h1")
        self.table(
            ["Operation", "Actual", "Theoretical", "% of theoretical", "Limits", "Within"],
            [
                [
                    y["operation"],
                    f"{y['actual']} {y['unit']}",
                    f"{y['theoretical']} {y['unit']}",
                    f"{y['percent']} %",
                    f"{y['low']}–{y['high']} %",
                    "yes" if y["within"] else "NO",
                ]
                for y in self.c["yields"]
            ],
            [0.25, 0.15, 0.15, 0.15, 0.15, 0.15],
        )
        self.para("Component reconciliation", "h2")
        self.table(
            ["Lot", "Material", "Issued", "Consumed", "Returned", "Waste", "Difference", "Within"],
            [
                [
                    r["lot"],
                    r["material"],
                    r["issued"],
                    r["consumed"],
                    r["returned"],
                    r["waste"],
                    f"{r['difference']} {r['unit']}",
                    "yes" if r["within"] else "NO",
                ]
                for r in self.c["reconciliation"]
            ],
            [0.12, 0.2, 0.1, 0.1, 0.1, 0.1, 0.16, 0.12],
        )
        self.para("8. Labeling control records and examinations (211.188(b)(8), (13))", "h1")
        self.table(
            ["Container", "Format", "Reprint", "Reason", "Label SHA-256", "By", "At"],
            [
                [
                    p["container"],
                    p["format"],
                    "yes" if p["reprint"] else "no",
                    p["reason"],
                    p["content_sha256"],
                    _who(p["by"]),
                    self.t(p["at"]),
                ]
                for p in self.c["labels"]
            ],
            [0.1, 0.06, 0.06, 0.14, 0.3, 0.16, 0.18],
        )
        self.para("9. Drug product containers and closures (211.188(b)(9))", "h1")
        self.table(
            ["Material", "Lot", "Container", "Quantity"],
            [
                [
                    f"{m['material_code']} {m['material_name']}",
                    m["lot"],
                    m["container"],
                    f"{m['quantity']} {m['unit']}",
                ]
                for m in self.c["packaging"]
            ],
            [0.4, 0.2, 0.2, 0.2],
        )
        self.para("10. Sampling (211.188(b)(10))", "h1")
        self.table(
            ["Sample", "Step", "Taken by, at"],
            [[x["sample"], x["step"], x["by"]] for x in self.c.get("samples", [])],
            [0.4, 0.3, 0.3],
        )

    def quality(self) -> None:
        self.para("11. Persons: performers and checkers of each significant step (211.188(b)(11))", "h1")
        rows = [
            [
                s["key"],
                s["title"],
                _who(s["completed_by"]),
                _who(s["verified_by"]),
                " / ".join(x["manifestation"] for x in s["signatures"]),
            ]
            for s in self.c["steps"]
            if s["completed_by"] or s["signatures"]
        ]
        self.table(
            ["Step", "Title", "Performed by", "Verified by", "Signatures"],
            rows,
            [0.12, 0.2, 0.18, 0.18, 0.32],
        )
        self.para("12. Deviations and investigations (211.188(b)(12), 211.192)", "h1")
        if not self.c["deviations"]:
            self.para(NONE)
        for d in self.c["deviations"]:
            self.para(
                f"Deviation {escape(d['number'])}: {escape(d['title'])} — {d['classification']}, {d['state']}",
                "h2",
            )
            for label, key in (
                ("Description", "description"),
                ("Immediate action", "immediate_action"),
                ("Root cause", "root_cause"),
                ("Impact on the batch", "impact"),
                ("CAPA", "capa"),
            ):
                self.para(f"{label}: {escape(d.get(key) or '')}")
            for sig in d.get("signatures", []):
                self.para(f"Signed: {escape(sig)}", "sig")
        self.para("13. Review and disposition", "h1")
        review = self.c.get("review")
        if not review:
            self.para(NONE)
        else:
            self.table(
                ["Stage", "Meaning", "Signer", "At", "Manifestation"],
                [
                    [x["stage"], x["meaning"], x["signer"], self.t(x["at"]), x["manifestation"]]
                    for x in review.get("stages", [])
                ],
                [0.15, 0.12, 0.18, 0.18, 0.37],
            )
            self.para(
                f"Disposition: {escape(str(review.get('disposition') or 'none'))} {self.t(review.get('disposition_at'))}"
            )

    def appendix(self) -> None:
        self.story.append(PageBreak())
        self.para("Appendix A. Audit trail of this batch", "h1")
        self.para(
            "Every audit entry for the batch, its steps, values, exceptions, signatures, material movements and "
            "equipment logbook lines, in order, with the hash that links each to the trail.",
            "small",
        )
        self.table(
            ["#", "At", "Who", "Action", "Record", "Changes", "Reason", "Hash"],
            [
                [
                    a["id"],
                    self.t(a["at"]),
                    f"{a['actor_name']} ({a['actor_username']})",
                    a["action"],
                    f"{a['record_type']}:{a['record_id']}",
                    a["changes"],
                    a["reason"],
                    a["hash"][:16] + "…",
                ]
                for a in self.c["audit_trail"]
            ],
            [0.05, 0.12, 0.16, 0.09, 0.12, 0.25, 0.11, 0.1],  # a name and "production_review" fit whole
            plain=True,
        )


def render_pdf(content: dict[str, Any], *, time_zone: str | None = None) -> bytes:
    """The record as PDF bytes. Times are shown in ``time_zone`` (default: the display zone, ``TIME_ZONE``)."""
    _fonts()
    digest = content_sha256(content)
    times = _Times(_zone(time_zone))
    buffer = io.BytesIO()
    page = landscape(A4)
    doc = SimpleDocTemplate(
        buffer,
        pagesize=page,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=10 * mm,
        bottomMargin=14 * mm,
        title=f"Executed batch record {content['header']['batch']}",
        author="Batchline",
        subject=f"{HASH_PREFIX}{digest}",
        creator="Batchline (ReportLab)",
        invariant=True,
    )
    d = _Doc(content, times, doc.width)
    d.header()
    d.steps()
    d.equipment()
    d.materials()
    d.results()
    d.quality()
    d.signature_statuses()
    d.appendix()
    doc.build(
        d.story,
        canvasmaker=_numbered_canvas(content["header"]["batch"], times(content["generated_at"]), digest),
    )
    return buffer.getvalue()

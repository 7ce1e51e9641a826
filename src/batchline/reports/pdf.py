"""The executed batch record as a PDF/A-2b document (ReportLab platypus), rendered from
:func:`content.record_content`.

Every page carries the batch, the generation time, the SHA-256 of the record's
canonical JSON content and "page x of y". The hash is also written into the
document information dictionary (``/Subject``) and the XMP metadata, which the
archive's verifier reads with the standard library alone (``reports/verify.py``).

PDF/A-2b (``reports/pdfa.py``): fonts embedded (DejaVu Sans Condensed, none of
the standard 14), XMP metadata with the PDF/A identification and the information
dictionary's entries, an sRGB output intent with its ICC profile, the record's
generation time as creation and modification time, and a document ID from its
content hash; the same content gives the same bytes. The sections are written
with the general helpers of ``reports/layout.py`` (``Story.section``,
``Story.table`` ...), so a new section is a method of :class:`_Record` that
calls them.
"""

from __future__ import annotations

import io
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import reportlab
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, PageBreak, SimpleDocTemplate

import batchline

from . import pdf_records
from .content import content_sha256, origin_text
from .layout import NONE, SHORT, Story, Times, amount, changes, decimals, text, who
from .pdfa import REGULAR, fonts, make_pdfa

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


def _zone(time_zone: str | None) -> ZoneInfo:
    # The zone signature manifestations are written in, so that every time on the page agrees.
    return ZoneInfo(time_zone or timezone.get_current_timezone_name())


def _recorded(v: dict[str, Any]) -> str:
    """The number in the site's notation, and what was typed where that reads otherwise (DI-05)."""
    shown = v.get("shown", v["text"])
    return f"{shown} (typed {v['typed']})" if v.get("typed") else shown


def _configuration_text(config: dict[str, Any] | None, t: Any) -> str:
    """The configuration versions a batch ran under, in words (docs/configuration.md)."""
    if not config or config.get("at_creation") is None:
        return "not recorded"
    out = f"version {config['at_creation']} in force at creation"
    later = config.get("came_into_force") or []
    if later:
        out += "; then " + ", ".join(f"version {v['number']} from {t(v['effective_at'])}" for v in later)
    stages = config.get("at_stages") or []
    if stages:
        out += "; at the review stages: " + ", ".join(
            f"{s['stage'].replace('_', ' ')} {s['version']}" for s in stages
        )
    return out


def _status(s: dict[str, Any]) -> str:
    """``[valid]``, ``[superseded by correction #12 …]`` or ``[BROKEN: …]`` after a signature."""
    status = s.get("status")
    if not status:
        return ""
    return f" [{status['text']}]"


def _within(flag: Any) -> str:
    return "yes" if flag else ("NO" if flag is False else "")


def numbered_canvas(title: str, generated: str, shown_generated: str, digest: str) -> type[Canvas]:
    """A PDF/A canvas that holds its pages until the end, so each can say "page x of y"; every page's
    footer names the document (``title``), its generation time and its content's SHA-256."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs, pdfVersion=(1, 7))
            make_pdfa(self, generated=generated, digest=digest)
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
            self.drawString(12 * mm, 8 * mm, f"{title} · generated {shown_generated}")
            self.drawString(12 * mm, 5 * mm, f"Content SHA-256: {digest}")
            self.drawRightString(width - 12 * mm, 8 * mm, f"Page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


class _Record(Story):
    """The sections of the executed batch record, in order."""

    def __init__(self, content: dict[str, Any], times: Times, width: float) -> None:
        super().__init__(width)
        self.c = content
        self.t = times
        # The precision the recipe gives each material's quantities: the decimals its quantity is written with.
        self.places: dict[str, int | None] = {}
        self.material_places: dict[str, int | None] = {}
        for s in content["steps"]:
            m = s.get("material") or {}
            if m.get("quantity") is not None:
                self.places[s["key"]] = self.material_places[str(m.get("code"))] = decimals(m["quantity"])

    @property
    def story(self) -> list[Any]:
        return self.flowables

    def qty(self, value: Any, unit: str, *, step: str | None = None, material: str | None = None) -> str:
        places = self.places.get(step or "") if step else self.material_places.get(material or "")
        return amount(value, unit, places=places)

    # -- sections ---------------------------------------------------------------------------------

    def header(self) -> None:
        h = self.c["header"]
        site = h.get("site")
        self.say(f"Executed batch record — batch {h['batch']}", "title")
        unit = h["unit"]
        self.fields(
            [
                ("Product", f"{h['product_name']} ({h['product_code']})"),
                ("Strength", h.get("strength") or "not held in the master data"),
                ("Batch", h["batch"]),
                ("Master recipe", f"{h['recipe_code']} version {h['recipe_version']} — {h['recipe_name']}"),
                (
                    "Batch size",
                    f"{amount(h['planned_quantity'], unit)} (nominal {amount(h['nominal_quantity'], unit)})",
                ),
                ("Site", f"{site['name']} ({site['code']})" if site else "not recorded"),
                ("Batch state", h["state"]),
                ("Created", f"{self.t(h['created_at'])} by {who(h['created_by'])}"),
                ("GMP configuration", _configuration_text(h.get("configuration"), self.t)),
                ("Generated", f"{self.t(self.c['generated_at'])} (times in {self.t.zone.key})"),
                ("Content SHA-256", content_sha256(self.c)),
            ]
        )
        self.say(
            f"{CHANGED} marks a value changed after its first entry; the original stays readable beside its "
            "correction, with the reason and who changed it. ‹GS› marks a control character (here the GS1 "
            "group separator) and ‹U+4E2D› a character this document's font cannot draw; the JSON record "
            "holds the exact text.",
            "small",
        )
        self.heading("Batch signatures")
        self.signatures(self.c["signatures"])
        self.heading("Contents and 21 CFR 211.188(b)")
        self.table(
            ["211.188(b)", "What the regulation asks for", "Where this record holds it"],
            CFR_211_188_B,
            [0.08, 0.52, 0.40],
        )

    def signatures(self, sigs: list[dict[str, Any]]) -> None:
        if not sigs:
            self.say(NONE, "small")
        for s in sigs:
            comment = f" — “{s['comment']}”" if s.get("comment") else ""
            broken = (s.get("status") or {}).get("state") == "broken"
            self.say(f"Signed: {s['manifestation']}{comment}{_status(s)}", "alert" if broken else "sig")

    def signature_statuses(self) -> None:
        """Every signature of the batch and its status (21 CFR 11.70): what each signs and whether it holds."""
        self.section("14. Signatures and their status (21 CFR 11.50, 11.70)")
        self.say(
            "Every signature of the batch: its steps and corrections, dispositions, deviations, review stages "
            "and release. Valid: the record holds exactly what was signed. Superseded: what was signed is "
            "intact and a later change made through the application (named, with who, when and why) stands "
            "beside it. BROKEN: the signed content changed outside the application.",
            "small",
        )
        rows, marks = [], []
        for i, s in enumerate(self.c.get("signature_records", [])):
            status = s.get("status") or {}
            if status.get("state") == "broken":
                marks.append(i)
            rows.append(
                [
                    f"#{s['id']}",
                    f"{s['record_type']} #{s['record_id']}",
                    s["manifestation"],
                    status.get("text"),
                ]
            )
        self.table(["#", "Signs", "Manifestation", "Status"], rows, [0.05, 0.17, 0.33, 0.45], marks)

    def steps(self) -> None:
        self.story.append(PageBreak())
        self.section("1. Steps")
        for n, s in enumerate(self.c["steps"], start=1):
            self.step(n, s)

    def step(self, n: int, s: dict[str, Any]) -> None:
        t = self.t
        block: list[Any] = [
            self.p(escape(f"1.{n} {s['title']} — {s['operation']} · {s['key']} · {s['state']}"), "h2")
        ]
        if s["instruction"]:
            block.append(self.p(escape(f"Instruction: {s['instruction']}")))
        if s["sop"]:
            block.append(self.p(escape(f"SOP: {s['sop']}")))
        if s["checklist"]:
            block.append(self.p(escape("Checklist: " + "; ".join(s["checklist"]))))
        m = s.get("material")
        if m:
            block.append(
                self.p(
                    escape(
                        f"Material: {m.get('code')}, {self.qty(m.get('quantity'), m.get('unit') or '', step=s['key'])} at the nominal batch size"
                    )
                )
            )
        done = []
        if s["started_at"]:
            done.append(f"Started {t(s['started_at'])} by {who(s['started_by'])}")
        if s["completed_at"]:
            done.append(f"performed (completed) {t(s['completed_at'])} by {who(s['completed_by'])}")
        if s["verified_at"]:
            done.append(f"verified {t(s['verified_at'])} by {who(s['verified_by'])}")
        block.append(self.p(escape(" · ".join(done) if done else "Not started."), "small"))
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
                origin = origin_text(v, t)
                if origin:  # read from a machine, or typed in its place (MANUAL)
                    corr += f" [{'MANUAL: ' if v['source'] == 'manual' else ''}{origin}]"
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
                        f"{who(v['entered_by'])}, {t(v['entered_at'])}{_at_station(v)}",
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
        if s["materials"]:
            self.table(
                ["Material used", "Lot", "Container", "Quantity", "Scale", "By, at"],
                [
                    [
                        f"{x['material_code']} {x['material_name']}",
                        x["lot"],
                        x["container"],
                        ("weighed out " if x.get("dispensed") else "")
                        + self.qty(str(abs(_number(x["quantity"]))), x["unit"], step=s["key"]),
                        x.get("device"),
                        f"{who(x['by'])}, {t(x['at'])}{_at_station(x)}",
                    ]
                    for x in s["materials"]
                ],
                [0.22, 0.1, 0.1, 0.14, 0.14, 0.3],
            )
        if s["equipment"]:
            self.table(
                ["Equipment used", "Name", "Class", "Claimed by, at"],
                [
                    [e["equipment"], e["name"], e["class"], f"{who(e['by'])}, {t(e['at'])}{_at_station(e)}"]
                    for e in s["equipment"]
                ],
                [0.15, 0.3, 0.2, 0.35],
            )
        if s["signatures"]:
            self.signatures(s["signatures"])
        for e in (x for x in self.c["exceptions"] if x["step"] == s["key"]):
            self.say(f"Exception {e['code']} ({e['severity']}): {e['message']}", "alert")

    def equipment(self) -> None:
        self.section("2. Exceptions and their dispositions")
        rows = []
        for e in self.c["exceptions"]:
            d = e.get("disposition")
            disp = (
                f"{d['decision']}: {text(d.get('comment'))} — {text(d.get('manifestation'))}"
                if d
                else "not dispositioned"
            )
            rows.append(
                [
                    self.t(e["at"]),
                    e["code"],
                    e.get("category"),
                    e["severity"],
                    e["step"],
                    e["message"],
                    who(e.get("user")),
                    disp,
                ]
            )
        self.table(
            ["At", "Code", "Category", "Severity", "Step", "Message", "User", "Disposition"],
            rows,
            [0.1, 0.13, 0.08, 0.06, 0.08, 0.25, 0.12, 0.18],
        )
        self.section("3. Equipment used (21 CFR 211.188(b)(2))")
        self.table(
            ["Unit", "Name", "Class", "Event", "At", "By", "Text"],
            [
                [e["equipment"], e["name"], e["class"], e["kind"], self.t(e["at"]), who(e["by"]), e["text"]]
                for e in self.c["equipment"]
            ],
            [0.1, 0.15, 0.12, 0.1, 0.15, 0.18, 0.2],
        )

    def materials(self) -> None:
        self.section("4. Materials: components used, lots and containers (211.188(b)(3), (4))")
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
                    self.qty(m["quantity"], m["unit"], step=m["step"]),
                    self.t(m["at"]),
                    who(m["by"]),
                ]
                for m in self.c["materials"]
            ],
            [0.08, 0.15, 0.08, 0.08, 0.13, 0.08, 0.08, 0.16, 0.16],
        )
        self.heading("Weighings and movements")
        self.table(
            [
                "Step",
                "Movement",
                "Container",
                "Lot",
                "Material",
                "Quantity",
                "Balance",
                "Device",
                "At",
                "By",
                "Reason",
            ],
            [
                [
                    w["step"],
                    w["kind"],
                    w["container"],
                    w["lot"],
                    w["material_code"],
                    self.qty(w["quantity"], w["unit"], material=w["material_code"]),
                    self.qty(w["balance"], w["unit"], material=w["material_code"]),
                    w["device"] + _at_station(w),
                    self.t(w["at"]),
                    who(w["by"]),
                    w["reason"],
                ]
                for w in self.c["weighings"]
            ],
            [0.07, 0.07, 0.08, 0.08, 0.07, 0.08, 0.08, 0.08, 0.13, 0.14, 0.12],
        )
        self.heading("Containers dispensed for this batch")
        self.table(
            ["Container", "Lot", "Material", "Net", "Tare"],
            [
                [
                    c["container"],
                    c["lot"],
                    f"{c['material_code']} {c['material_name']}",
                    self.qty(c["quantity"], c["unit"], material=c["material_code"]),
                    self.qty(c["tare"], c["unit"], material=c["material_code"]),
                ]
                for c in self.c["dispensed_containers"]
            ],
            [0.15, 0.15, 0.4, 0.15, 0.15],
        )

    def results(self) -> None:
        self.section("5. In-process control results (211.188(b)(5))")
        rows = [
            [
                s["key"],
                v["label"],
                f"{_recorded(v)} {v['unit']}".strip() + (f" {CHANGED}" if v["changed_after_entry"] else ""),
                v["specification"],
                _within(v["in_specification"]),
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
        self.section("6. Line clearance: inspection of the area before and after use (211.188(b)(6))")
        rows = [
            [
                s["key"],
                s["title"],
                "; ".join(s["checklist"]),
                s["state"],
                f"{who(s['completed_by'])}, {self.t(s['completed_at'])}" if s["completed_at"] else "",
            ]
            for s in self.c["steps"]
            if s["kind"] == "checklist"
        ]
        self.table(
            ["Step", "Check", "Items confirmed", "State", "Performed by, at"],
            rows,
            [0.12, 0.2, 0.33, 0.1, 0.25],
        )
        self.section("7. Yields (211.188(b)(7))")
        self.table(
            ["Operation", "Actual", "Theoretical", "% of theoretical", "Limits", "Within"],
            [
                [
                    y["operation"],
                    amount(y["actual"], y["unit"]) or "not recorded",
                    amount(y["theoretical"], y["unit"]),
                    amount(y["percent"], "%"),
                    f"{text(y['low'])}–{text(y['high'])} %",
                    _within(y["within"]),
                ]
                for y in self.c["yields"]
            ],
            [0.25, 0.15, 0.15, 0.15, 0.15, 0.15],
        )
        self.heading("Component reconciliation")
        self.table(
            ["Lot", "Material", "Issued", "Consumed", "Returned", "Waste", "Difference", "Within"],
            [
                [
                    r["lot"],
                    r["material"],
                    amount(r["issued"]),
                    amount(r["consumed"]),
                    amount(r["returned"]),
                    amount(r["waste"]),
                    amount(r["difference"], r["unit"]),
                    _within(r["within"]),
                ]
                for r in self.c["reconciliation"]
            ],
            [0.12, 0.2, 0.1, 0.1, 0.1, 0.1, 0.16, 0.12],
        )
        pdf_records.output(self)
        self.section("8. Labeling control records and examinations (211.188(b)(8), (13))")
        pdf_records.labelling(self)
        self.heading("Label prints of containers dispensed for this batch")
        self.table(
            ["Container", "Format", "Reprint", "Reason", "Label SHA-256", "By", "At"],
            [
                [
                    p["container"],
                    p["format"],
                    "yes" if p["reprint"] else "no",
                    p["reason"],
                    p["content_sha256"],
                    who(p["by"]),
                    self.t(p["at"]),
                ]
                for p in self.c["labels"]
            ],
            [0.1, 0.06, 0.06, 0.14, 0.3, 0.16, 0.18],
        )
        self.section("9. Drug product containers and closures (211.188(b)(9))")
        self.table(
            ["Material", "Lot", "Container", "Quantity"],
            [
                [
                    f"{m['material_code']} {m['material_name']}",
                    m["lot"],
                    m["container"],
                    self.qty(m["quantity"], m["unit"], step=m["step"]),
                ]
                for m in self.c["packaging"]
            ],
            [0.4, 0.2, 0.2, 0.2],
        )
        self.section("10. Sampling (211.188(b)(10))")
        pdf_records.sampling(self)
        if self.c.get("process_values"):
            self.section("10a. Process values from the machine (211.188(b)(5), (b)(6))")
            pdf_records.process_values(self)

    def quality(self) -> None:
        self.section("11. Persons: performers and checkers of each significant step (211.188(b)(11))")
        rows = [
            [
                s["key"],
                s["title"],
                who(s["completed_by"]),
                who(s["verified_by"]),
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
        self.deviations()
        self.section("13. Review and disposition")
        review = self.c.get("review")
        if not review:
            self.say(NONE)
        else:
            self.table(
                ["Stage", "Meaning", "Signer", "At", "Manifestation"],
                [
                    [x["stage"], x["meaning"], x["signer"], self.t(x["at"]), x["manifestation"]]
                    for x in review.get("stages", [])
                ],
                [0.15, 0.12, 0.18, 0.18, 0.37],
            )
            self.say(
                f"Disposition: {review.get('disposition') or 'none'} {self.t(review.get('disposition_at'))}"
            )

    def deviations(self) -> None:
        """Each deviation linked to the batch with its investigation in full (211.192, 211.188(b)(12))."""
        self.section("12. Deviations and investigations (211.188(b)(12), 211.192)")
        if not self.c["deviations"]:
            self.say(NONE)
        for d in self.c["deviations"]:
            self.heading(f"Deviation {d['number']}: {d['title']} — {d['classification']}, {d['state']}")
            self.fields(
                [
                    (label, d.get(key) or "not recorded")
                    for label, key in (
                        ("Description", "description"),
                        ("Immediate action", "immediate_action"),
                        ("Investigation", "investigation"),
                        ("Root cause", "root_cause"),
                        ("Impact on the batch", "impact"),
                        ("CAPA", "capa"),
                    )
                ],
                label_share=0.16,
            )
            for sig in d.get("signatures", []):
                self.say(f"Signed: {sig}", "sig")

    def appendix(self) -> None:
        self.story.append(PageBreak())
        self.section("Appendix A. Audit trail of this batch")
        self.say(
            "Every audit entry for the batch, its steps, values, exceptions, signatures, material movements and "
            "equipment logbook lines, in order, with the hash that links each to the trail. Changes read "
            "field: old → new (field: new where the entry created the record); a value longer than "
            f"{SHORT} characters is shortened here and whole in the JSON record and the archive's audit.json.",
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
                    f"{a['record_type']} #{a['record_id']}",
                    changes(a["changes"]),
                    a["reason"],
                    a["hash"][:16] + "…",
                ]
                for a in self.c["audit_trail"]
            ],
            [0.04, 0.12, 0.13, 0.08, 0.11, 0.33, 0.09, 0.10],
        )


def _number(value: Any) -> Any:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return value


def landscape_document(
    buffer: io.BytesIO, *, title: str, digest: str, keywords: list[str]
) -> SimpleDocTemplate:
    """A landscape A4 document of Batchline's: its title, and the content's SHA-256 as its subject (which the
    archive's verifier reads); pair it with :func:`numbered_canvas` for the PDF/A canvas and footers."""
    return SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=10 * mm,
        bottomMargin=14 * mm,
        title=title,
        author="Batchline",
        subject=f"{HASH_PREFIX}{digest}",
        keywords=keywords,
        creator=f"Batchline {batchline.__version__}",
        producer=f"ReportLab {reportlab.Version} (PDF/A-2b by Batchline)",
        initialFontName=REGULAR,
        initialFontSize=8,
        lang="en",
    )


def render_pdf(content: dict[str, Any], *, time_zone: str | None = None) -> bytes:
    """The record as PDF/A-2b bytes. Times are shown in ``time_zone`` (default: the zone in force,
    the site's: reports/documents.py). The same content and zone give the same bytes."""
    fonts()
    digest = content_sha256(content)
    times = Times(_zone(time_zone))
    buffer = io.BytesIO()
    number = content["header"]["batch"]
    doc = landscape_document(
        buffer,
        title=f"Executed batch record {number}",
        digest=digest,
        keywords=["executed batch record", number, "21 CFR 211.188", "PDF/A-2b"],
    )
    d = _Record(content, times, doc.width)
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
        canvasmaker=numbered_canvas(
            f"Executed batch record {number}", content["generated_at"], times(content["generated_at"]), digest
        ),
    )
    return buffer.getvalue()


def _at_station(row: dict[str, Any]) -> str:
    """The registered station an entry was made at (21 CFR 11.10(h)); nothing for older records."""
    return f", station {row['station']}" if row.get("station") else ""

"""The record PDF's sections from the step kinds' own records: output, labeling (with the specimen
image and the examination results) and sampling; 21 CFR 211.188(b)(7), (8), (10), (13).

Called by ``pdf._Doc`` with itself, so the tables look like the rest of the record. A section with
no records says why (``sections.why_none``), with this batch's state.
"""

from __future__ import annotations

import base64
import io
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Line, Polygon, Rect, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Image, KeepTogether

from . import trend
from .pdfa import REGULAR
from .sections import why_none


def _who(person: Any) -> str:
    if not person:
        return ""
    now = f", now {person['name_now']}" if person.get("name_now") else ""
    return f"{person.get('name', '')} ({person.get('username', '')}{now})"


def _q(text: str) -> str:
    """A recorded quantity as read (5.200000 → 5.2); the JSON keeps the stored scale."""
    return format(Decimal(text).normalize(), "f")


def _prints(prints: list[dict[str, Any]], t: Any) -> str:
    if not prints:
        return "label not printed"
    return "; ".join(
        ("reprint" if p["reprint"] else "printed")
        + f" {t(p['at'])} by {_who(p['by'])}"
        + (f" ({p['reason']})" if p["reason"] else "")
        for p in prints
    )


def output(doc: Any) -> None:
    """Output recorded into containers of the batch's output lot, each with its label prints."""
    c, t = doc.c, doc.t
    doc.para("Output recorded", "h2")
    rows = [
        [
            o["step"],
            o["container"],
            o["lot"],
            f"{_q(o['quantity'])} {o['unit']}",
            t(o["at"]),
            _who(o["by"]),
            _prints(o["label_prints"], t),
        ]
        for o in c.get("output", [])
    ]
    if not rows:
        doc.para(escape(why_none(c, "output")))
        return
    doc.table(
        ["Step", "Container", "Lot", "Quantity", "At", "By", "Label"],
        rows,
        [0.1, 0.1, 0.1, 0.1, 0.15, 0.17, 0.28],
    )


def labelling(doc: Any) -> None:
    """Labels issued with their content and specimen, reconciled, and the examinations (211.134)."""
    c, t = doc.c, doc.t
    lab = c.get("labelling") or {}
    issued = lab.get("issued", [])
    doc.para("Labels issued for this batch, with their content and specimen", "h2")
    if not issued:
        doc.para(escape(why_none(c, "labelling")))
    for i in issued:
        content = i["content"]
        text = (
            f"Step {escape(i['step'])}: {i['quantity']} labels issued {t(i['at'])} by {escape(_who(i['by']))}. "
            f"Content (from the batch's records): {escape(content['product_name'])} ({escape(content['product_code'])}), "
            f"batch {escape(content['batch'])}, {escape(content['quantity'])} {escape(content['unit'])} per container, "
            f"expiry {escape(content['expiry_printed'])}, storage: {escape(content['storage'] or 'not given')}, "
            f"barcode {escape(content['barcode'])}. Specimen SHA-256 {i['specimen_sha256']}."
        )
        png = base64.b64decode(i["specimen_png"])
        image = Image(io.BytesIO(png), width=80 * mm, height=56 * mm)
        doc.story.append(KeepTogether([doc.p(text), doc.p("Specimen of the label issued:", "small"), image]))
    doc.para("Labeling reconciliation (21 CFR 211.125(c))", "h2")
    rows = [
        [
            r["step"],
            r["issued"],
            r["applied"],
            r["destroyed"],
            r["returned"],
            r["difference"],
            f"± {_q(r['allowed'])}",
            "yes" if r["within"] else "NO: investigated under 211.192",
            f"{_who(r['by'])}, {t(r['at'])}",
        ]
        for r in lab.get("reconciliations", [])
    ]
    if rows:
        doc.table(
            ["Step", "Issued", "Applied", "Destroyed", "Returned", "Difference", "Limit", "Within", "By, at"],
            rows,
            [0.1, 0.07, 0.07, 0.08, 0.08, 0.08, 0.08, 0.2, 0.24],
            [n for n, r in enumerate(lab.get("reconciliations", [])) if not r["within"]],
        )
    else:
        doc.para(escape(why_none(c, "labelling")))
    doc.para("Examination of the packaged and labelled units (21 CFR 211.134, 211.188(b)(13))", "h2")
    exams = lab.get("examinations", [])
    if not exams:
        doc.para(escape(why_none(c, "labelling")))
    for x in exams:
        doc.para(
            f"Step {escape(x['step'])}: {x['units_examined']} units examined {t(x['at'])} by {escape(_who(x['by']))}: "
            + ("passed" if x["passed"] else "FAILED")
            + (f" — {escape(x['comment'])}" if x["comment"] else ""),
            "body" if x["passed"] else "alert",
        )
        doc.table(
            ["Examination item", "Result"],
            [[r["item"], "pass" if r["passed"] else "FAIL"] for r in x["results"]],
            [0.7, 0.3],
            [n for n, r in enumerate(x["results"]) if not r["passed"]],
        )


def sampling(doc: Any) -> None:
    """Every sample: what, how much, from where, for which test, by whom and when, its label."""
    c, t = doc.c, doc.t
    asked = c.get("samples_asked", [])
    if asked:
        doc.para(
            "Samples the master recipe asks for: "
            + "; ".join(f"step {escape(a['step'])}: {a['samples']} for {escape(a['test'])}" for a in asked),
            "small",
        )
    rows = [
        [
            s["code"],
            s["step"],
            f"{s['material_code']} {s['material_name']}".strip(),
            f"{_q(s['quantity'])} {s['unit']} (asked {_q(s['planned_quantity'])})",
            f"{s['source']}"
            + (f" lot {s['lot']}" if s["lot"] else "")
            + (f", {s['position']}" if s["position"] else ""),
            f"{s['test']} {s['method']}".strip(),
            f"{_who(s['by'])}, {t(s['at'])}",
            _prints(s["label_prints"], t),
        ]
        for s in c.get("samples", [])
    ]
    if not rows:
        doc.para(escape(why_none(c, "samples")))
        return
    doc.table(
        ["Sample", "Step", "Material", "Quantity", "From", "Test, method", "Taken by, at", "Label"],
        rows,
        [0.1, 0.08, 0.13, 0.11, 0.12, 0.13, 0.16, 0.17],
    )
    laboratory(doc, c.get("samples", []))


def _request(r: dict[str, Any] | None, t: Any) -> str:
    if r is None:
        return "no request (taken before the LIMS connection)"
    made = f"requested {t(r['at'])}"
    if not r["message"]:
        return made + "; not sent: no LIMS is configured"
    if r["state"] == "delivered":
        return made + f"; delivered {t(r['delivered_at'])}"
    return made + ("; delivery failed" if r["state"] == "failed" else "; waiting to be delivered")


def _judged(x: dict[str, Any]) -> str:
    if x["in_specification"] is None:
        return "not judged: no limits in the master recipe"
    words = "within specification" if x["in_specification"] else "OUT OF SPECIFICATION"
    if x["within_action"] is False and x["in_specification"]:
        words += ", outside the action limits"
    if x["lims_verdict"] == "fail":
        words += " (failed by the LIMS)"
    return words


def laboratory(doc: Any, samples: list[dict[str, Any]]) -> None:
    """Each sample's request to the LIMS and every result the laboratory sent for it, as judged:
    a result out of specification is shaded, with the exception it raised and the lot it blocked."""
    t = doc.t
    rows: list[list[str]] = []
    marks: list[int] = []
    for s in samples:
        found = s.get("results", [])
        if not found:
            rows.append([s["code"], _request(s.get("request"), t), "no result yet", "", "", ""])
            continue
        for x in found:
            if x["in_specification"] is False:
                marks.append(len(rows))
            converted = (
                f" = {x['judged_value']} {x['judged_unit']}".rstrip()
                if x["judged_value"] is not None and x["judged_unit"] != x["unit"]
                else ""
            )
            acted = []
            if x["exception"]:
                acted.append(f"exception #{x['exception']} ({x['exception_code']})")
            if x["lot_blocked"]:
                acted.append(f"lot {x['lot_blocked']} blocked")
            if x["filled_step"]:
                acted.append("recorded on its step")
            rows.append(
                [
                    s["code"],
                    _request(s.get("request"), t),
                    f"{x['result_id']}: {x['test']} {x['text']} {x['unit']}".rstrip() + converted,
                    x["specification"] or "none",
                    _judged(x),
                    f"{_who(x['by'])}, {t(x['at'])}" + ("; " + "; ".join(acted) if acted else ""),
                ]
            )
    doc.heading("Laboratory requests and results")
    doc.table(
        [
            "Sample",
            "Request to the LIMS",
            "Result",
            "Specification",
            "Judged",
            "Received (LIMS interface), at",
        ],
        rows,
        [0.1, 0.2, 0.2, 0.12, 0.16, 0.22],
        marks,
    )


def process_values(doc: Any) -> None:
    """Each step's process values from the machine: their limits and what their judge said."""
    c, t = doc.c, doc.t
    for p in c.get("process_values", []):
        doc.para(f"Step {escape(p['step'])}: process values read by the equipment gateway", "small")
        doc.table(
            ["Value", "From the unit of", "Specification", "Action range"],
            [
                [
                    f"{m['label']} ({m['unit']})" + (" CPP" if m["critical"] else ""),
                    f"step {m['equipment_step']}",
                    m["specification"] or "none",
                    m["action"] or "none",
                ]
                for m in p["monitors"]
            ],
            [0.4, 0.2, 0.2, 0.2],
        )
        rows = [
            [
                t(e["at"]),
                e["label"],
                e["event"] + (f" ({e['level']})" if e["event"] in ("raised", "changed", "cleared") else ""),
                (f"{e['value']} {e['unit']}" if e["value"] is not None else "")
                + (f", extreme {e['extreme']}" if e["extreme"] not in (None, e["value"]) else "")
                + ("; Uncertain" if e["uncertain"] else ""),
                f"{e['equipment']} {e['tag']}".strip(),
                f"#{e['exception']} {e['exception_code']}" if e["exception"] else "",
                (
                    f"{_who(e['acknowledged'])}, {t(e['acknowledged_at'])}: {e['comment']}"
                    if e["acknowledged"]
                    else ""
                )
                or ("not yet" if e["needs_acknowledgement"] else ""),
            ]
            for e in p["events"]
        ]
        if rows:
            doc.table(
                ["At", "Value", "What", "Reading", "Source", "Exception", "Acknowledged"],
                rows,
                [0.13, 0.13, 0.12, 0.14, 0.16, 0.14, 0.18],
            )
        else:
            doc.para("Nothing read yet.")
        limits = {m["name"]: m.get("limits", {}) for m in p["monitors"]}
        for tr in p.get("trends", []):
            doc.para(
                escape(
                    f"{tr['label']} ({tr['unit']}) on {tr['equipment']}, {t(tr['start'])} to {t(tr['end'])}: "
                    f"{tr['usable']} usable of {tr['readings']} readings"
                    + (
                        f", lowest {tr['minimum']}, highest {tr['maximum']} {tr['unit']}"
                        if tr["minimum"] is not None
                        else ""
                    )
                ),
                "small",
            )
            drawn = trend.chart(tr, limits.get(tr["name"], {}), 450, 100)
            if drawn is not None:
                doc.flowables.append(_drawing(drawn))


def _drawing(c: trend.Chart) -> Drawing:
    """The trend as vector graphics: the band of values and a line per limit (PDF y grows upwards)."""
    d = Drawing(
        c.width, c.height + 4, initialFontName=REGULAR, initialFontSize=6
    )  # PDF/A: embedded fonts only
    d.add(Rect(0, 0, c.width, c.height, strokeColor=colors.HexColor("#cbd2dc"), fillColor=None))
    for kind, value, y in c.limits:
        dashed = kind == "action"
        d.add(
            Line(
                0,
                c.height - y,
                c.width,
                c.height - y,
                strokeColor=colors.HexColor("#b54708" if dashed else "#b42318"),
                strokeDashArray=[6, 4] if dashed else None,
            )
        )
        d.add(String(2, c.height - y + 2, f"{kind} {value}", fontName=REGULAR, fontSize=6))
    points = [v for x, y in c.band for v in (x, c.height - y)]
    d.add(
        Polygon(
            points,
            fillColor=colors.HexColor("#b8cff7"),  # solid: nothing in the record depends on transparency
            strokeColor=colors.HexColor("#1f6feb"),
            strokeWidth=0.5,
        )
    )
    return d

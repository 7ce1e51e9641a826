"""BatchML for the step kinds' own records: samples as ``Samples/Sample`` (with their ``SampleTest``,
and each laboratory result as its ``SampleTestResult``), output, labels issued, reconciled
and examined as ``Events``, and a ``Comment`` saying why a section has no records.

Kept apart from ``batchml.py`` so the element order the XSD prescribes is visible where it
matters: comments come before the events, the samples after the personnel identification.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .sections import why_none

El = Callable[..., Any]


def comments(root: Any, content: dict[str, Any], el: El, parent: Any = None) -> None:
    """One comment per empty section (sampling, output, labeling), in words, in ``parent`` (the
    record's ``Comments``, made here if the record has none yet)."""
    empty = [
        (section, what)
        for section, what in (("samples", "Sampling"), ("output", "Output"), ("labelling", "Labeling"))
        if not (
            content.get("labelling", {}).get("issued") if section == "labelling" else content.get(section)
        )
    ]
    if not empty:
        return
    if parent is None:
        parent = el(root, "Comments")
    for section, what in empty:
        c = el(parent, "Comment")
        el(c, "EntryID", f"section-{section}")
        el(c, "ObjectType", "Comment")
        el(c, "TimeStamp", content["generated_at"])
        el(c, "RecordReference", section)
        el(c, "CommentText", f"{what}: {why_none(content, section)}")


def events(add: Callable[..., None], content: dict[str, Any]) -> None:
    """Output, labels issued, reconciled and examined, as events of the record."""
    for o in content.get("output", []):
        add(
            f"produce-{o['id']}",
            o["at"],
            "Material",
            "Produce",
            description=f"Output into container {o['container']} of lot {o['lot']}",
            value=(o["quantity"], o["unit"]),
            person=(o["by"] or {}).get("name"),
            step=o["step"],
        )
    lab = content.get("labelling") or {}
    for i in lab.get("issued", []):
        c = i["content"]
        add(
            f"labels-issued-{i['id']}",
            i["at"],
            "Material",
            "Movement",
            description=(
                f"{i['quantity']} labels issued: {c['product_name']}, batch {c['batch']}, {c['quantity']} {c['unit']} "
                f"per container, expiry {c['expiry_printed']}, storage {c['storage']}, barcode {c['barcode']}"
            ),
            value=(str(i["quantity"]), "label"),
            message=f"specimen PNG SHA-256 {i['specimen_sha256']}",
            person=(i["by"] or {}).get("name"),
            step=i["step"],
        )
    for r in lab.get("reconciliations", []):
        add(
            f"labels-reconciled-{r['id']}",
            r["at"],
            "Material",
            "Reconciliation",
            description=(
                f"Labels issued {r['issued']}, applied {r['applied']}, destroyed {r['destroyed']}, "
                f"returned {r['returned']}"
            ),
            value=(str(r["difference"]), "label"),
            message=f"limit ± {r['allowed']}: "
            + ("within" if r["within"] else "OUTSIDE, to be investigated"),
            person=(r["by"] or {}).get("name"),
            step=r["step"],
        )
    for x in lab.get("examinations", []):
        add(
            f"labels-examined-{x['id']}",
            x["at"],
            "Procedural Execution",
            "Parameter Data",
            description=f"Examination of {x['units_examined']} labelled units (21 CFR 211.134)",
            value=("passed" if x["passed"] else "failed", ""),
            message="; ".join(f"{r['item']}: {'pass' if r['passed'] else 'FAIL'}" for r in x["results"])
            + (f". {x['comment']}" if x["comment"] else ""),
            person=(x["by"] or {}).get("name"),
            step=x["step"],
        )


def process_values(add: Callable[..., None], content: dict[str, Any]) -> None:
    """What the judges of the process values read from the machine said (alarms, losses of signal,
    their acknowledgement) and each value's frozen course over its step, as events (issue 15)."""
    for section in content.get("process_values", []):
        for a in section["events"]:
            add(
                f"process-alarm-{a['id']}",
                a["at"],
                "Alarm",
                "Process Data",
                description=f"{a['label']}: {a['event']} ({a['level']})"
                + (" (uncertain quality)" if a["uncertain"] else ""),
                equipment=a["equipment"],
                value=(a["value"] or "", a["unit"]) if a["value"] is not None else None,
                message=(
                    f"tag {a['tag']}" + (f"; exception {a['exception_code']}" if a["exception_code"] else "")
                )
                + (f"; acknowledged: {a['comment']}" if a["acknowledged"] else ""),
                person=(a["acknowledged"] or {}).get("name"),
                step=section["step"],
                category=a["level"],
            )
        for t in section["trends"]:
            add(
                f"process-trend-{t['id']}",
                t["end"],
                "Equipment",
                "Process Data",
                description=f"{t['label']} on {t['equipment']} from {t['start']} to {t['end']}: "
                f"{t['usable']} usable of {t['readings']} readings",
                equipment=t["equipment"],
                value=(f"{t['minimum']}..{t['maximum']}", t["unit"]) if t["minimum"] is not None else None,
                message="lowest..highest usable value over the step",
                step=section["step"],
            )


def samples(root: Any, content: dict[str, Any], el: El) -> None:
    found = content.get("samples", [])
    if not found:
        return
    parent = el(root, "Samples")
    for s in found:
        e = el(parent, "Sample")
        el(e, "EntryID", s["code"])
        el(e, "ObjectType", "Sample")
        el(e, "TimeStamp", s["at"])
        el(
            e,
            "Description",
            f"{s['material_code']} {s['material_name']}".strip()
            + f", taken by {(s['by'] or {}).get('name', '')}"
            + (f" at {s['position']}" if s["position"] else ""),
        )
        el(e, "SampleSourceID", s["source"] + (f" lot {s['lot']}" if s["lot"] else ""))
        size = el(e, "SampleSize")
        el(size, "QuantityString", s["quantity"])
        el(size, "DataType", "decimal")
        el(size, "UnitOfMeasure", s["unit"])
        el(e, "SamplePullReason", s["test"])
        if s["source_kind"] == "equipment":
            el(e, "EquipmentID", s["source"])
        el(e, "ProceduralElementReference", s["step"])
        if s["method"]:
            el(e, "SOPReference", s["method"])
        test = el(e, "SampleTest")
        el(test, "EntryID", f"{s['code']}-test")
        el(test, "ObjectType", "Sample Test")
        el(test, "TestName", s["test"])
        for x in s.get("results", []):  # the laboratory's results, as the LIMS sent them and as judged
            result = el(test, "SampleTestResult")
            el(result, "EntryID", x["result_id"])
            el(result, "ObjectType", "Sample Test Result")
            el(result, "TimeStamp", x["at"])
            judged = (
                "not judged: no limits in the master recipe"
                if x["in_specification"] is None
                else ("within" if x["in_specification"] else "outside")
                + f" specification {x['specification']}"
            )
            el(
                result,
                "Description",
                f"{judged}; received from the LIMS by {(x['by'] or {}).get('name', '')}",
            )
            el(
                result,
                "TestDisposition",
                {None: "not judged", True: "pass", False: "fail"}[x["in_specification"]],
            )
            value = el(result, "Results")
            el(value, "ValueString", x["text"])
            el(value, "DataType", "decimal")
            if x["unit"]:
                el(value, "UnitOfMeasure", x["unit"])

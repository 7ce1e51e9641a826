"""The batch record page's rows, from the same record content the PDF prints (reports.content).

Every kind of step shows what it recorded: its values (entered, scanned, weighed or calculated,
originals before their corrections), the materials charged or weighed out at it and the equipment
it identified, with quantities at the recipe's precision as in the PDF (``reports.layout.amount``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from batchline.reports.content import origin_text
from batchline.reports.layout import Times, amount, decimals, who


def _at(iso: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else None


def _magnitude(value: Any) -> str:
    try:
        return str(abs(Decimal(str(value))))
    except InvalidOperation:
        return str(value)


def step_rows(step: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``values``, ``materials`` and ``equipment`` of one step of the record, ready to show."""
    material = step.get("material") or {}
    places = decimals(material["quantity"]) if material.get("quantity") is not None else None
    return {
        "values": [
            {
                "label": v["label"]
                + (" (calculated)" if v["source"] == "calculated" else "")
                + (" [critical]" if v["critical"] else ""),
                # The number in the site's notation, and the typed text where that reads otherwise (DI-05).
                "text": f"{v.get('shown', v['text'])} {v['unit']}".strip(),
                "typed": v.get("typed", ""),
                "changed": v["changed_after_entry"],
                "correction": v["reason"] if v["corrects"] else "",
                "origin": origin_text(v, Times(ZoneInfo(timezone.get_current_timezone_name()))),
                "manual": v["source"] == "manual",
                "target": v["target"],
                "specification": v["specification"],
                "out": v["in_specification"] is False,
                "by": who(v["entered_by"]),
                "at": _at(v["entered_at"]),
            }
            for v in step["values"]
        ],
        "materials": [
            {
                "material": f"{m['material_code']} {m['material_name']}",
                "lot": m["lot"],
                "container": m["container"],
                "quantity": ("weighed out " if m.get("dispensed") else "")
                + amount(_magnitude(m["quantity"]), m["unit"], places=places),
                "device": m.get("device") or "",
                "by": who(m["by"]),
                "at": _at(m["at"]),
            }
            for m in step["materials"]
        ],
        "equipment": [
            {
                "code": e["equipment"],
                "name": e["name"],
                "class": e["class"],
                "by": who(e["by"]),
                "at": _at(e["at"]),
            }
            for e in step["equipment"]
        ],
    }

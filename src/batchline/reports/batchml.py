"""The executed batch record as a BatchML BatchProductionRecord (ISA-88, MESA B2MML V0700), built with lxml.

Mapped by hand (STACK.md: generated bindings are huge): the record's header
fields, every correction as a ``Change`` with the value before it, every
step state change, value, material consumption, equipment use, exception and
signature as an ``Event``, and each signature as a personnel identification
manifest. The document is validated against MESA's published XSDs, which
the project may not copy: they are read from ``BATCHLINE_B2MML_SCHEMAS``
(see :func:`schema_dir`).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from lxml import etree

from . import batchml_records
from .content import content_sha256, origin_text

NS = "http://www.mesa.org/xml/B2MML"
SCHEMA_FILE = "BatchML-BatchProductionRecord.xsd"
FALLBACK = Path("/work/shared/schemas/b2mml-v0700")
WHERE_TO_GET = (
    "MESA's B2MML/BatchML V0700 schemas (BatchML-BatchProductionRecord.xsd and the files it includes) "
    "are not shipped with Batchline. Download them from MESA International (mesa.org, B2MML) and point "
    "BATCHLINE_B2MML_SCHEMAS at their directory; by default Batchline looks in ../shared/schemas/b2mml-v0700/ "
    "beside the repository."
)


# A deviation's texts as the record holds them, and what each is called.
DEVIATION_TEXTS = (
    ("description", "description"),
    ("immediate_action", "immediate action"),
    ("investigation", "investigation"),
    ("root_cause", "root cause"),
    ("impact", "impact on the batch"),
    ("capa", "CAPA reference"),
)


class SchemasMissing(RuntimeError):
    pass


def schema_dir() -> Path:
    """Where the XSDs are: the setting or env var, else ``../shared/schemas/b2mml-v0700`` beside the repository."""
    configured = getattr(settings, "BATCHLINE_B2MML_SCHEMAS", "") or os.environ.get(
        "BATCHLINE_B2MML_SCHEMAS", ""
    )
    if configured:
        return Path(configured)
    beside_repo = Path(settings.PACKAGE_DIR).parents[1].parent / "shared" / "schemas" / "b2mml-v0700"
    return beside_repo if beside_repo.is_dir() else FALLBACK


def _parser() -> etree.XMLParser:
    # No entity expansion and no network: an XSD or document cannot pull in anything from outside.
    return etree.XMLParser(resolve_entities=False, no_network=True)


@cache
def _schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path, _parser()))


def schema() -> etree.XMLSchema:
    path = schema_dir() / SCHEMA_FILE
    if not path.is_file():
        raise SchemasMissing(f"{path} is missing. {WHERE_TO_GET}")
    return _schema(str(path))


def validate(xml: bytes) -> list[str]:
    """Every schema error of ``xml`` as ``line: message``; empty when it validates."""
    doc = etree.fromstring(xml, _parser())
    s = schema()
    if s.validate(doc):
        return []
    return [f"{e.line}: {e.message}" for e in s.error_log]


# XML 1.0 cannot hold the C0 control characters (bar tab, line feed, carriage return), not
# even as character references; a GS1 DataMatrix scan carries the group separator (ASCII 29)
# between its element strings. They are written as Unicode's visible pictures of those
# characters (U+2400 + code: the group separator as "␝"), so the export stays valid and
# legible and says where they were; the JSON record keeps the exact characters.
_XML_UNSAFE = {code: 0x2400 + code for code in range(0x20) if code not in (0x09, 0x0A, 0x0D)} | {
    0xFFFE: 0xFFFD,
    0xFFFF: 0xFFFD,
}


def xml_text(value: Any) -> str:
    """``value`` as text XML 1.0 can hold: control characters as their visible pictures."""
    text = str(value).translate(_XML_UNSAFE)
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # lone surrogates cannot be encoded at all
        text = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def _el(parent: Any, name: str, text: Any = None, **attrs: str) -> Any:
    e = etree.SubElement(parent, f"{{{NS}}}{name}", **{k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        e.text = xml_text(text)
    return e


def _value(parent: Any, name: str, text: str, unit: str = "", data_type: str = "string") -> None:
    v = _el(parent, name)
    _el(v, "ValueString", text)
    _el(v, "DataType", data_type)
    if unit:
        _el(v, "UnitOfMeasure", unit)


def _name(person: Any) -> str | None:
    return person.get("name") if isinstance(person, dict) else person


def _recorded(v: dict[str, Any]) -> tuple[str, ...]:
    """A value as BatchML carries it: a number exactly, as a decimal (the typed text is in the
    description where it differs); any other value as its text."""
    if v.get("number") is not None:
        return (v["number"], v["unit"], "decimal")
    return (v["text"], v["unit"])


def _said(v: dict[str, Any]) -> str:
    return str(v["number"]) if v.get("number") is not None else v["text"]


class _Events:
    def __init__(self, parent: Any) -> None:
        self.parent = parent

    def add(
        self,
        entry_id: str,
        at: str | None,
        kind: str,
        sub: str,
        *,
        description: str = "",
        equipment: str = "",
        value: tuple[str, ...] | None = None,
        previous: tuple[str, str] | None = None,
        message: str = "",
        person: str | None = None,
        step: str | None = None,
        category: str = "",
    ) -> None:
        e = _el(self.parent, "Event")
        _el(e, "EntryID", entry_id)
        _el(e, "ObjectType", "Event")
        if at:
            _el(e, "TimeStamp", at)
        if description:
            _el(e, "Description", description)
        _el(e, "EventType", kind)
        _el(e, "EventSubType", sub)
        if equipment:
            _el(e, "EquipmentID", equipment)
        if value:
            _value(e, "Value", *value)
        if previous:
            _value(e, "PreviousValue", *previous)
        if message:
            _el(e, "MessageText", message)
        if person:
            _el(e, "PersonID", person)
        if step:
            _el(e, "ProceduralElementReference", step)
        if category:
            _el(e, "Category", category)


def render_batchml(content: dict[str, Any]) -> bytes:
    """The record as a BatchML ``BatchProductionRecord`` document (UTF-8 bytes)."""
    h = content["header"]
    root = etree.Element(f"{{{NS}}}BatchProductionRecord", nsmap={None: NS})
    _el(root, "ID", f"EBR-{h['batch']}")
    _el(root, "EntryID", f"EBR-{h['batch']}")
    _el(root, "ObjectType", "Batch Production Record")
    _el(root, "TimeStamp", content["generated_at"])
    _el(
        root,
        "Description",
        f"Executed batch record of batch {h['batch']}: {h['product_name']}, recipe {h['recipe_code']} "
        f"version {h['recipe_version']}, batch size {h['planned_quantity']} {h['unit']}. "
        f"Content SHA-256 {content_sha256(content)}.",
    )
    _el(root, "PublishedDate", content["generated_at"])
    _el(root, "CreationDate", h["created_at"])
    _el(root, "BatchID", h["batch"])
    _el(root, "MaterialDefinitionID", h["product_code"])
    _el(root, "RecordStatus", h["state"])
    _el(root, "Version", f"{h['recipe_code']} v{h['recipe_version']}")

    changes = _el(root, "ChangeHistory")
    for s in content["steps"]:
        by_id = {v["id"]: v for v in s["values"]}
        for v in s["values"]:
            if v["corrects"] is None:
                continue
            before = by_id.get(v["corrects"])
            c = _el(changes, "Change")
            _el(c, "EntryID", f"value-{v['id']}")
            _el(c, "ObjectType", "Change")
            _el(c, "TimeStamp", v["entered_at"])
            _el(c, "Description", f"{v['label']} changed to {_said(v)} {v['unit']}".rstrip())
            _el(c, "RecordReference", f"value-{v['corrects']}")
            _value(c, "PrechangeData", *(_recorded(before) if before else ("", v["unit"])))
            _el(c, "Reason", v["reason"] or "")

    # Each deviation's texts in full, its investigation among them (211.192, 211.188(b)(12)).
    comments = None
    if content.get("deviations"):
        comments = _el(root, "Comments")
        for d in content["deviations"]:
            for key, label in DEVIATION_TEXTS:
                if not d.get(key):
                    continue
                c = _el(comments, "Comment")
                _el(c, "EntryID", f"deviation-{d['id']}-{key}")
                _el(c, "ObjectType", "Comment")
                _el(
                    c,
                    "Description",
                    f"Deviation {d['number']}: {d['title']} ({d['classification']}, {d['state']}): {label}",
                )
                _el(c, "RecordReference", f"quality.deviation:{d['id']}")
                _el(c, "CommentText", d[key])
    # Why a section of the step kinds has no records (in the same Comments element: it occurs once).
    batchml_records.comments(root, content, _el, comments)
    events = _Events(_el(root, "Events"))
    batchml_records.events(events.add, content)
    batchml_records.process_values(events.add, content)
    for s in content["steps"]:
        key = s["key"]
        for what, at, who in (
            ("started", s["started_at"], s["started_by"]),
            ("completed", s["completed_at"], s["completed_by"]),
            ("verified", s["verified_at"], s["verified_by"]),
        ):
            if at:
                events.add(
                    f"step-{key}-{what}",
                    at,
                    "Procedural Execution",
                    "State Change",
                    description=f"{s['title']} {what}",
                    person=_name(who),
                    step=key,
                )
        for v in s["values"]:
            events.add(
                f"value-{v['id']}",
                v["entered_at"],
                "Procedural Execution",
                "Parameter Data",
                description=v["label"]
                + (f" (typed {v['text']})" if v.get("number") not in (None, v["text"]) else "")
                + (" (changed after entry)" if v["changed_after_entry"] else "")
                + (f" (station {v['station']})" if v.get("station") else "")
                # Read from a machine, or typed in its place (execution/instruments.py).
                + (
                    f" ({'MANUAL: ' if v['source'] == 'manual' else ''}{origin})"
                    if (origin := origin_text(v))
                    else ""
                ),
                equipment=(v.get("reading") or {}).get("equipment", ""),
                value=_recorded(v),
                message=f"specification {v['specification']}" if v["specification"] else "",
                person=_name(v["entered_by"]),
                step=key,
                category="critical" if v["critical"] else "",
            )
        for sig in s["signatures"]:
            events.add(
                f"signature-{sig['id']}",
                sig["signed_at"],
                "Operator",
                "Security",
                description=sig["manifestation"],
                message=sig["comment"],
                person=sig["printed_name"],
                step=key,
                category=sig["meaning"],
            )
    for m in content["materials"]:
        events.add(
            f"consume-{m['container']}-{m['at']}",
            m["at"],
            "Material",
            "Consume",
            description=f"{m['material_code']} {m['material_name']} lot {m['lot']} container {m['container']}",
            value=(m["quantity"], m["unit"]),
            person=_name(m["by"]),
            step=m["step"],
        )
    for e in content["equipment"]:
        events.add(
            f"logbook-{e['id']}",
            e["at"],
            "Equipment",
            "Allocation"
            if e["kind"] == "use_start"
            else "Deallocation"
            if e["kind"] == "use_end"
            else "Equipment",
            description=f"{e['name']}: {e['kind']}",
            equipment=e["equipment"],
            message=e["text"],
            person=_name(e["by"]),
        )
    for x in content["exceptions"]:
        events.add(
            f"exception-{x['id']}",
            x["at"],
            "Message",
            "Message",
            description=x["code"],
            message=x["message"],
            person=_name(x["user"]),
            step=x["step"],
            category=x["severity"],
        )

    people = _el(root, "PersonnelIdentification")
    signatures = [*content["signatures"], *(sig for s in content["steps"] for sig in s["signatures"])]
    for sig in signatures:
        m = _el(people, "PersonnelIdentificationManifest")
        _el(m, "EntryID", f"signature-{sig['id']}")
        _el(m, "ObjectType", "Personnel Identification Manifest")
        _el(m, "TimeStamp", sig["signed_at"])
        _el(m, "Description", sig["manifestation"])
        _el(m, "RecordReference", f"{sig['record_type']}:{sig['record_id']}")
        _el(m, "Name", sig["printed_name"])
        _el(m, "ChangeIndication", sig["meaning"])
        if sig["comment"]:
            _el(m, "Reason", sig["comment"])
    batchml_records.samples(root, content, _el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

"""Import master data from a file (CSV or B2MML V0700): a preview per row, then one signed request.

- :func:`import_preview` reads a file and says, per row and with the row's
  line in the file, what it would do: create an item, change some fields
  (in words), leave an item unchanged, or refuse the row and why. It writes
  nothing. A file with any refused row cannot be imported.
- :func:`import_request` imports under the rules of the pages
  (masterdata/services.py): descriptive fields change at once, audited with
  the import's reason; every new item and every GMP change goes into ONE
  change request for the whole file, signed by the requester, applied in one
  transaction when a QA approver approves it — or refused as a whole, line
  by line in words, if a row can no longer be applied then.

Every row is checked like a single change is (``parse_values``, then
``item_check``); a reference may name an item the same file creates or
changes on an earlier row. The request records the file's name, its SHA-256
and the counts, so an inspector can trace every item back to the file.

The B2MML mapping is by hand (STACK.md) and written out in
docs/master-data-import.md: ``MaterialDefinition`` → material,
``EquipmentClass`` → equipment class, ``Equipment`` and ``PhysicalAsset`` →
equipment unit, ``PersonnelClass`` → a role's curriculum (the qualifications
whose ``roles`` hold it). A ``Person`` is refused in words: people are
accounts, not master data a file may create (DESIGN invariants 7 and 8).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import transaction
from lxml import etree

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.services import (
    ChangeRefused,
    Kind,
    change_request,
    change_request_received,
    kind_register,
)
from batchline.audit.services import Actor, ReasonRequired, record_update
from batchline.reports.batchml import schema_dir
from batchline.signatures.services import VerifiedSigner

from .definitions import KINDS, Invalid, MasterKind, describe, kind_of, parse, parse_values, shown
from .models import MasterChange
from .services import (
    CHANGE_KIND,
    PERMISSION,
    fixed_refused,
    full_values,
    item_apply,
    item_check,
    may_request,
    model_of,
    stored,
    waiting_refusal,
)

IMPORT_KIND = "master_data_import"
SUBJECT_TYPE = "masterdata.import"
FORMATS = ("csv", "b2mml")
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
NS = "http://www.mesa.org/xml/B2MML"
SCHEMA_FILE = "AllSchemas.xsd"


class ImportRefused(ValueError):
    """A file that cannot be imported; ``preview`` says which lines and why."""

    def __init__(self, message: str, preview: Preview | None = None) -> None:
        super().__init__(message)
        self.preview = preview


@dataclass(frozen=True)
class Incoming:
    """One item as the file states it: its fields by Batchline name, as text; or why it cannot be read."""

    line: int
    kind: str
    raw: dict[str, Any]
    notes: tuple[str, ...] = ()
    refused: str = ""


@dataclass
class Row:
    line: int
    kind: str
    code: str
    operation: str  # create, change, unchanged, refused
    words: list[str]
    notes: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # create: every field; change: the changed ones
    before: dict[str, Any] = field(default_factory=dict)  # change: the changed fields as they stand

    def gmp(self) -> dict[str, Any]:
        k = KINDS[self.kind]
        return {n: v for n, v in self.values.items() if k.field(n).gmp}

    def plain(self) -> dict[str, Any]:
        k = KINDS[self.kind]
        return {n: v for n, v in self.values.items() if not k.field(n).gmp}

    @property
    def needs_approval(self) -> bool:
        return self.operation == "create" or (self.operation == "change" and bool(self.gmp()))

    def sentence(self) -> str:
        label = KINDS[self.kind].label.lower() if self.kind in KINDS else "row"
        head = f"line {self.line}: "
        if self.operation == "refused":
            head += "refused"
            head += f" ({label} {self.code})" if self.code else ""
        elif self.operation == "create":
            head += f"new {label} {self.code}"
        elif self.operation == "change":
            head += f"change of {label} {self.code}"
            head += "" if self.needs_approval else " (at once)"
        else:
            head += f"{label} {self.code} unchanged"
        return head + (" — " + "; ".join(self.words) if self.words else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "kind": self.kind,
            "code": self.code,
            "operation": self.operation,
            "needs_approval": self.needs_approval,
            "words": self.words,
            "notes": self.notes,
            "sentence": self.sentence(),
        }


@dataclass(frozen=True)
class Preview:
    file_name: str
    sha256: str
    format: str
    rows: list[Row]

    @property
    def refused(self) -> list[Row]:
        return [r for r in self.rows if r.operation == "refused"]

    def counts(self) -> dict[str, int]:
        out = {op: 0 for op in ("create", "change", "unchanged", "refused")}
        for r in self.rows:
            out[r.operation] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name,
            "sha256": self.sha256,
            "format": self.format,
            "counts": self.counts(),
            "can_import": not self.refused and any(r.operation != "unchanged" for r in self.rows),
            "refused_lines": [r.line for r in self.refused],
            "rows": [r.as_dict() for r in self.rows],
        }


# --- reading a file ------------------------------------------------------------------------------


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def read_csv(data: bytes, kind: MasterKind) -> list[Incoming]:
    """Rows of a CSV file of one kind: the first line names the fields; lines counted as in the file."""
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return [
            Incoming(
                line,
                kind.name,
                {},
                refused=f"the file is not UTF-8 text (byte {exc.start + 1}): save it as CSV UTF-8.",
            )
        ]
    first = text.split("\n", 1)[0]
    # Field names hold neither separator, so the header line alone tells which one the file uses;
    # csv.Sniffer guesses from the values too and is thrown by a decimal comma.
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [Incoming(1, kind.name, {}, refused="the file is empty: its first line names the fields.")]
    except csv.Error as exc:
        return [Incoming(1, kind.name, {}, refused=f"the first line cannot be read as CSV: {exc}.")]
    names = {f.name for f in kind.fields}
    problems = []
    unknown = [h for h in header if h not in names]
    if unknown:
        problems.append(
            f"column {', '.join(repr(u) for u in unknown)}: a {kind.label.lower()} has no such field "
            f"(its fields: {', '.join(f.name for f in kind.fields)})."
        )
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        problems.append(f"column {', '.join(twice)} is named twice.")
    if kind.key.name not in header:
        problems.append(
            f"the first line names the fields, and {kind.key.name} (the key) must be one of them."
        )
    if problems:
        return [Incoming(1, kind.name, {}, refused=" ".join(problems))]
    out: list[Incoming] = []
    last = reader.line_num
    try:
        for cells in reader:
            # A quoted value may span lines: a row starts on the line after the previous row ended.
            line, last = last + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(out) >= MAX_ROWS:
                out.append(Incoming(line, kind.name, {}, refused=f"a file holds at most {MAX_ROWS} rows."))
                break
            if len(cells) != len(header):
                out.append(
                    Incoming(
                        line,
                        kind.name,
                        {},
                        refused=f"{len(cells)} values where the first line names {len(header)} fields "
                        f"(a {delimiter!r} inside a value needs quotes).",
                    )
                )
                continue
            out.append(Incoming(line, kind.name, dict(zip(header, cells, strict=True))))
    except csv.Error as exc:
        out.append(Incoming(reader.line_num, kind.name, {}, refused=f"cannot be read as CSV: {exc}."))
    return out


def xml_parser() -> etree.XMLParser:
    # No entities, no network: a file cannot pull anything in from outside or expand itself.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


# A DOCTYPE in the prolog (after the declaration, comments and processing instructions), found before
# the parser reads it: libxml2 would otherwise stop at an expanding entity with its own technical words.
# Atomic and possessive, so a prolog of many processing instructions cannot make it backtrack for ever.
_PROLOG_DOCTYPE = re.compile(rb"(?>\s+|<\?.*?\?>|<!--.*?-->)*+<!DOCTYPE", re.DOTALL)
DOCTYPE_REFUSED = (
    "The document has a DOCTYPE: B2MML documents have none, and entity declarations are not read "
    "(they could expand the document or reach for files)."
)


def declares_doctype(data: bytes, doc: Any = None) -> bool:
    """Whether a B2MML document (every door: master-data files, ERP, LIMS) carries a DOCTYPE: seen in
    its prolog before parsing, or, given the parsed ``doc``, one the scan missed (UTF-16)."""
    if doc is not None:
        info = doc.getroottree().docinfo
        return bool(info.doctype) or info.internalDTD is not None
    return bool(_PROLOG_DOCTYPE.match(data.removeprefix(b"\xef\xbb\xbf")))


@cache
def _schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path, xml_parser()))


def b2mml_schema() -> etree.XMLSchema:
    """MESA's B2MML V0700 schemas (AllSchemas.xsd), compiled once per process."""
    path = schema_dir() / SCHEMA_FILE
    if not path.is_file():
        raise ImportRefused(
            f"{path} is missing: B2MML files cannot be checked, so none is imported. "
            "Point BATCHLINE_B2MML_SCHEMAS at MESA's B2MML V0700 schemas (docs/master-data-import.md)."
        )
    return _schema(str(path))


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _first_text(el: Any, name: str) -> str:
    child = el.find(_q(name))
    return (child.text or "").strip() if child is not None else ""


# B2MML property IDs → Batchline fields (docs/master-data-import.md). ``Value/ValueString`` is the value.
MATERIAL_PROPERTIES = {
    "MaterialType": "kind",
    "BaseUnit": "unit",
    "StorageConditions": "storage",
    "ShelfLifeDays": "shelf_life_days",
    "RetestDays": "retest_days",
    "PotencyRequired": "potency_required",
    "GTIN": "gtin",
}
CLASS_PROPERTIES = {
    "IsScale": "is_scale",
    "Capabilities": "capabilities",
    "DirtyHoldHours": "dirty_hold_hours",
    "CleanHoldHours": "clean_hold_hours",
    "CalibrationIntervalDays": "calibration_interval_days",
    "MaintenanceIntervalDays": "maintenance_interval_days",
}
UNIT_PROPERTIES = {
    "Site": "site",
    "EquipmentClass": "equipment_class",
    "Capacity": "capacity",
    "Readability": "readability",
    "MinimumWeight": "minimum_weight",
    "WeighingUnit": "unit",
    "Host": "host",
    "Port": "port",
}
WEIGHTS = ("capacity", "readability", "minimum_weight")
# Levels of the ISA-95 role-based hierarchy a Batchline equipment unit stands for.
UNIT_LEVELS = ("Unit", "WorkUnit", "StorageUnit", "EquipmentModule", "ControlModule", "Other")
COUNTED_IN = {"days": ("d", "day", "days"), "hours": ("h", "hr", "hour", "hours")}


def _properties(
    el: Any, element: str, table: Mapping[str, str], kind: MasterKind, raw: dict[str, Any], notes: list[str]
) -> str:
    """Mapped properties into ``raw``; unmapped ones noted. Returns why the element is refused, if it is."""
    units: dict[str, str] = {}
    for prop in el.findall(_q(element)):
        pid = _first_text(prop, "ID")
        name = table.get(pid)
        if name is None:
            notes.append(f"property {pid} (line {prop.sourceline}) is not kept by Batchline: left out")
            continue
        value = prop.find(_q("Value"))
        text = _first_text(value, "ValueString") if value is not None else ""
        uom = _first_text(value, "UnitOfMeasure") if value is not None else ""
        f = kind.field(name)
        if uom and f.unit in COUNTED_IN and uom.lower() not in COUNTED_IN[f.unit]:
            return f"property {pid} is counted in {f.unit}; the file gives it in {uom!r}."
        if uom and name in WEIGHTS:
            units[pid] = uom
        raw[name] = text
    given = set(units.values()) | ({raw["unit"]} if raw.get("unit") else set())
    if len(given) > 1:
        return f"a scale's weights are in one unit; the file gives {', '.join(sorted(given))}."
    if units and "unit" not in raw:
        raw["unit"] = given.pop()
    return ""


def _site(el: Any) -> str:
    scope = el.find(_q("HierarchyScope"))
    while scope is not None:
        level = _first_text(scope, "EquipmentLevel") or _first_text(scope, "EquipmentElementLevel")
        if level == "Site":
            return _first_text(scope, "EquipmentID")
        scope = scope.find(_q("HierarchyScopeChild"))
    return ""


def _material(el: Any) -> Incoming:
    k, notes = KINDS["material"], list[str]()
    raw: dict[str, Any] = {"code": _first_text(el, "ID")}
    if el.find(_q("Description")) is not None:
        raw["name"] = _first_text(el, "Description")
    refused = _properties(el, "MaterialDefinitionProperty", MATERIAL_PROPERTIES, k, raw, notes)
    if el.find(_q("MaterialClassID")) is not None:
        notes.append("MaterialClassID is not kept (the material's type is its MaterialType property)")
    return Incoming(el.sourceline, k.name, raw, tuple(notes), refused)


def _equipment_class(el: Any) -> Incoming:
    k, notes = KINDS["equipment_class"], list[str]()
    raw: dict[str, Any] = {"code": _first_text(el, "ID")}
    if el.find(_q("Description")) is not None:
        raw["name"] = _first_text(el, "Description")
    refused = _properties(el, "EquipmentClassProperty", CLASS_PROPERTIES, k, raw, notes)
    return Incoming(el.sourceline, k.name, raw, tuple(notes), refused)


def _unit(el: Any, *, asset: bool) -> Incoming:
    """An ``Equipment`` or a ``PhysicalAsset`` as a Batchline equipment unit (a scale's numbers)."""
    k, notes = KINDS["equipment"], list[str]()
    code = _first_text(el, "ID")
    if asset:
        # The asset is installed as an equipment unit: that unit's code is what is scanned.
        mapped = [m for m in el.findall(_q("EquipmentAssetMapping")) if m.find(_q("EndTime")) is None]
        if len(mapped) == 1:
            code = _first_text(mapped[0], "EquipmentID")
            notes.append(f"physical asset {_first_text(el, 'ID')} is read as unit {code}")
    raw: dict[str, Any] = {"code": code}
    if el.find(_q("Description")) is not None:
        raw["name"] = _first_text(el, "Description")
    site = _site(el)
    if site:
        raw["site"] = site
    refused = ""
    if not asset:
        level = _first_text(el, "EquipmentLevel")
        classes = [(c.text or "").strip() for c in el.findall(_q("EquipmentClassID"))]
        if level and level not in UNIT_LEVELS:
            refused = (
                f"equipment {code} is at level {level}: Batchline imports units "
                f"({', '.join(UNIT_LEVELS)}); its sites are set up once, not imported."
            )
        elif el.find(_q("EquipmentChild")) is not None:
            refused = (
                f"equipment {code} holds EquipmentChild elements: send each unit as an Equipment of its own."
            )
        elif len(classes) > 1:
            refused = f"equipment {code} names {len(classes)} classes; a Batchline unit belongs to one."
        elif classes:
            raw["equipment_class"] = classes[0]
    element = "PhysicalAssetProperty" if asset else "EquipmentProperty"
    refused = refused or _properties(el, element, UNIT_PROPERTIES, k, raw, notes)
    return Incoming(el.sourceline, k.name, raw, tuple(notes), refused)


MAPPED = {
    "MaterialDefinition": _material,
    "EquipmentClass": _equipment_class,
    "Equipment": lambda el: _unit(el, asset=False),
    "PhysicalAsset": lambda el: _unit(el, asset=True),
}
# The nouns each message may carry; the verb (Sync, Process, Change) means "make it so" for all three.
MESSAGES = {
    "PersonnelClass",
    "PersonnelInformation",
    "MaterialDefinition",
    "MaterialInformation",
    "EquipmentClass",
    "Equipment",
    "EquipmentInformation",
    "PhysicalAsset",
    "PhysicalAssetInformation",
}
VERBS = ("Sync", "Process", "Change")
HOLDERS = {
    "DataArea",
    "MaterialInformation",
    "EquipmentInformation",
    "PhysicalAssetInformation",
    "PersonnelInformation",
}
PERSONNEL_REFUSED = (
    "a Person is not imported: a person is an account, created by an administrator with the "
    "person's own credential, and GMP roles are granted by a QA approver's approval — a file may do "
    "neither. Training is recorded where it happened. A PersonnelClass (a role's curriculum) is "
    "imported; qualifications (SOPs and skills) as a CSV file of kind qualification."
)


def _curricula(classes: list[Any]) -> list[Incoming]:
    """``PersonnelClass`` elements as the curricula they state, one qualification row per change.

    A class is a Batchline role (its ID); its ``TestSpecificationID`` elements are the whole
    curriculum: every qualification listed holds the role afterwards, and every one in force
    that holds it and is not listed no longer does. Each becomes a change of that
    qualification's ``roles`` (GMP: approved with the file), on the line of the class that asks it.
    """
    from batchline.accounts.roles import ROLES

    out: list[Incoming] = []
    listed: dict[str, tuple[int, set[str]]] = {}
    for el in classes:
        role = _first_text(el, "ID")
        if role not in ROLES:
            refused = (
                f"PersonnelClass {role}: not a Batchline role ({', '.join(ROLES)}); a curriculum is a role's."
            )
        elif role in listed:
            refused = f"PersonnelClass {role} is on line {listed[role][0]} already: one per role."
        else:
            listed[role] = (
                el.sourceline,
                {(c.text or "").strip() for c in el.findall(_q("TestSpecificationID"))},
            )
            continue
        out.append(Incoming(el.sourceline, "", {}, refused=refused))
    k = KINDS["qualification"]
    known = {q.code: q for q in model_of(k).objects.all()}
    for role, (line, codes) in listed.items():
        for code in sorted(codes - set(known)):
            out.append(
                Incoming(
                    line,
                    k.name,
                    {"code": code},
                    refused=f"PersonnelClass {role} names {code}, which is not a qualification in Batchline: "
                    "import it first (a CSV file of kind qualification).",
                )
            )
    holders = {q.code for q in known.values() if q.retired_at is None and set(q.roles) & set(listed)}
    for code in sorted(holders | {c for _line, codes in listed.values() for c in codes if c in known}):
        roles, lines = set(known[code].roles), []
        for role, (line, codes) in listed.items():
            if (code in codes) != (role in roles):
                (roles.add if code in codes else roles.discard)(role)
                lines.append(line)
        note = (f"curriculum of {', '.join(r for r in listed if r in roles) or 'no role in the file'}",)
        out.append(
            Incoming(
                min(lines or [listed[next(iter(listed))][0]]),
                k.name,
                {"code": code, "roles": sorted(roles)},
                note,
            )
        )
    return out


def _noun(root_name: str) -> str:
    for verb in VERBS:
        if root_name.startswith(verb) and root_name[len(verb) :] in MESSAGES:
            return root_name[len(verb) :]
    return root_name


def read_b2mml(data: bytes) -> list[Incoming]:
    """Items of a B2MML V0700 document, validated against the XSD first; lines from lxml's ``sourceline``."""
    if declares_doctype(data):
        return [Incoming(1, "", {}, refused=DOCTYPE_REFUSED)]
    try:
        doc = etree.fromstring(data, xml_parser())
    except etree.XMLSyntaxError as exc:
        return [Incoming(exc.lineno or 1, "", {}, refused=f"the file is not well-formed XML: {exc.msg}.")]
    if declares_doctype(data, doc):
        return [Incoming(1, "", {}, refused=DOCTYPE_REFUSED)]
    schema = b2mml_schema()
    if not schema.validate(doc):
        return [
            Incoming(e.line, "", {}, refused=f"not valid B2MML V0700: {e.message.replace(f'{{{NS}}}', '')}")
            for e in list(schema.error_log)[:50]
        ]
    name = _local(doc)
    noun = _noun(name)
    if "Person" in name and noun not in MESSAGES:
        return [Incoming(doc.sourceline, "", {}, refused=PERSONNEL_REFUSED)]
    if noun not in MESSAGES:
        return [
            Incoming(
                doc.sourceline,
                "",
                {},
                refused=f"a {name} message is not imported; Batchline takes Sync, Process or Change "
                "messages (or the plain element) of MaterialDefinition, Equipment, EquipmentClass, "
                "PhysicalAsset and PersonnelClass.",
            )
        ]
    out, classes = [], []
    for el in _items(doc):
        local = _local(el)
        if local in MAPPED:
            out.append(MAPPED[local](el))
        elif local == "PersonnelClass":
            classes.append(el)
        elif local == "Person":
            out.append(Incoming(el.sourceline, "", {}, refused=PERSONNEL_REFUSED))
        else:
            words = (
                "lots are received in Batchline (Materials), not imported as master data."
                if local.startswith("MaterialLot") or local.startswith("MaterialSubLot")
                else "Batchline keeps no such master data."
            )
            out.append(Incoming(el.sourceline, "", {}, refused=f"{local}: {words}"))
    if classes:
        out = sorted([*out, *_curricula(classes)], key=lambda i: i.line)
    if len(out) > MAX_ROWS:
        too_many = Incoming(out[MAX_ROWS].line, "", {}, refused=f"a file holds at most {MAX_ROWS} items.")
        return [*out[:MAX_ROWS], too_many]
    return out


# What a message or an ...Information element says about itself, around the items it carries.
HEADERS = {
    "Sync",
    "Process",
    "Change",
    "ID",
    "Description",
    "HierarchyScope",
    "PublishedDate",
    "SpatialDefinition",
    "Version",
    "EffectiveStartDate",
    "EffectiveEndDate",
}


def _items(doc: Any) -> Iterator[Any]:
    if _local(doc) in MAPPED or _local(doc) == "PersonnelClass":
        yield doc
        return
    for holder in doc.iter():
        if _local(holder) in HOLDERS:
            for el in holder:
                if _local(el) and _local(el) not in HEADERS and _local(el) not in HOLDERS:
                    yield el


# --- judging the rows ----------------------------------------------------------------------------


def _waiting() -> dict[tuple[str, str], str]:
    """Items with a change on its way, by (kind, code): a second one would be judged against stale values."""
    out: dict[tuple[str, str], str] = {}
    for request in ChangeRequest.objects.filter(
        kind__in=(CHANGE_KIND, IMPORT_KIND), state=RequestState.REQUESTED
    ):
        rows = request.payload.get("rows", [request.payload])
        for r in rows:
            out[(r["kind"], r["code"])] = f"{request.number} is waiting for approval"
    for change in MasterChange.objects.filter(applied_at__isnull=True).select_related("change_request"):
        out[(change.kind, change.code)] = (
            f"{change.change_request.number} is approved and takes effect {change.effective_at:%Y-%m-%d %H:%M}"
        )
    return out


def _judge(incoming: list[Incoming]) -> list[Row]:
    rows: list[Row] = []
    seen: dict[tuple[str, str], int] = {}
    planned: dict[tuple[str, str], dict[str, Any]] = {}
    waiting = _waiting()
    for inc in incoming:
        if inc.refused:
            rows.append(Row(inc.line, inc.kind, str(inc.raw.get("code", "")), "refused", [inc.refused]))
            continue
        k = kind_of(inc.kind)
        code = str(inc.raw.get(k.key.name, "")).strip()
        row = Row(inc.line, k.name, code, "refused", [], list(inc.notes))
        rows.append(row)
        try:
            code = parse(k.key, code)
            row.code = code
            if (k.name, code) in seen:
                raise ChangeRefused(
                    f"{k.label} {code} is on line {seen[(k.name, code)]} already: one row per item."
                )
            seen[(k.name, code)] = inc.line
            item = model_of(k).objects.filter(code=code).first()
            parsed = parse_values(k, inc.raw, creating=item is None)
            if item is None:
                if (k.name, code) in waiting:
                    raise ChangeRefused(
                        f"a request for new {k.label.lower()} {code} is on its way ({waiting[(k.name, code)]}): "
                        "it is decided first."
                    )
                full = full_values(k, parsed)
                item_check(k, full, None, planned=planned)
                row.operation, row.values = "create", full
                row.words = describe(k, {}, {n: v for n, v in full.items() if n != k.key.name})
                planned[(k.name, code)] = full
                continue
            now = stored(k, item)
            changed = {n: v for n, v in parsed.items() if now.get(n) != v}
            if not changed:
                row.operation, row.words = "unchanged", ["holds these values already"]
                continue
            fixed_refused(k, changed)
            if item.retired_at is not None:
                raise ChangeRefused(f"{k.label} {code} is retired: it is kept as it was.")
            if (k.name, code) in waiting:
                raise ChangeRefused(
                    f"a change of {k.label.lower()} {code} is on its way ({waiting[(k.name, code)]}): "
                    "it is decided first."
                )
            item_check(k, {**now, **changed}, item, planned=planned)
            row.operation, row.values = "change", changed
            row.before = {n: now.get(n) for n in changed}
            row.words = describe(k, now, changed)
            planned[(k.name, code)] = {**now, **changed}
        except (Invalid, ChangeRefused) as exc:
            row.operation, row.words = "refused", [str(exc)]
    return rows


def import_preview(*, data: bytes | str, file_name: str, format: str, kind: str | None = None) -> Preview:
    """What importing ``data`` would do, row by row; writes nothing. Raises :class:`ImportRefused`
    only for what no row can say (no such format, a file too large, a CSV without its kind)."""
    raw = _as_bytes(data)
    if format not in FORMATS:
        raise ImportRefused(
            f"{format!r} is not a format Batchline imports (it imports {', '.join(FORMATS)})."
        )
    if len(raw) > MAX_BYTES:
        raise ImportRefused(
            f"The file is {len(raw) / 1048576:.1f} MB; an import is at most {MAX_BYTES // 1048576} MB: split it."
        )
    sha = hashlib.sha256(raw).hexdigest()
    if b"\x00" in raw:  # no text holds one, and PostgreSQL refuses it in a query
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        return Preview(
            file_name, sha, format, [Row(line, kind or "", "", "refused", ["a NUL character: not text."])]
        )
    if format == "csv":
        if not kind:
            raise ImportRefused(f"Say which kind of master data the CSV file holds ({', '.join(KINDS)}).")
        try:
            k = kind_of(kind)
        except Invalid as exc:
            raise ImportRefused(str(exc)) from None
        incoming = read_csv(raw, k)
    else:
        incoming = read_b2mml(raw)
    rows = _judge(incoming)
    if not rows:
        rows = [Row(1, kind or "", "", "refused", ["the file holds no items."])]
    return Preview(file_name=file_name, sha256=sha, format=format, rows=rows)


# --- the import, requested and applied -----------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    preview: Preview
    applied: list[Row]  # descriptive changes, in force at once
    request: ChangeRequest | None  # the new items and GMP changes, waiting for a QA approver


def _origin(preview: Preview) -> str:
    return f"import of {preview.file_name} (SHA-256 {preview.sha256})"


def import_request(
    *,
    actor: Actor,
    signer: VerifiedSigner | None,
    data: bytes | str,
    file_name: str,
    format: str,
    kind: str | None,
    reason: str,
    comment: str = "",
) -> Imported:
    """Import a file: descriptive changes at once, everything else as one request for a QA approver.

    The preview is made again here, never taken from the client. Refused
    (:class:`ImportRefused`, nothing written) if any row is refused.
    ``signer`` (meaning "requested") is needed when a row creates an item or
    changes a GMP field. Locks each item whose descriptive fields it changes.
    """
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Give a reason for the import: the audit trail and the approver read it.")
    may_request(actor)
    preview = import_preview(data=data, file_name=file_name, format=format, kind=kind)
    gated = _importable(preview)
    if gated and signer is None:
        raise ChangeRefused(
            "This import creates items or changes how batches are made or judged: it is requested with "
            "your signature and takes effect when a QA approver approves it."
        )
    return _import(actor=actor, signer=signer, preview=preview, reason=reason, comment=comment)


def import_received(*, actor: Actor, data: bytes, file_name: str, reason: str) -> Imported:
    """The same import for a B2MML message a machine interface received (the ERP's ``SyncMaterialDefinition``).

    Under the rules of a file's import, with one difference: the request is the
    interface account's, unsigned (``approvals.change_request_received``), and a
    QA approver's signed approval alone puts it in force. Joins the caller's
    transaction; refused as :func:`import_request` is.
    """
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Name the message the import comes from.")
    may_request(actor)
    preview = import_preview(data=data, file_name=file_name, format="b2mml")
    _importable(preview)
    return _import(actor=actor, signer=None, preview=preview, reason=reason, comment="")


def _importable(preview: Preview) -> list[Row]:
    """The rows that need approval; refuses a file with a refused row, or one that changes nothing."""
    if preview.refused:
        lines = ", ".join(str(r.line) for r in preview.refused)
        raise ImportRefused(f"{preview.file_name} was not imported: line {lines} refused.", preview)
    gated = [r for r in preview.rows if r.needs_approval]
    if not gated and not any(r.operation == "change" and r.plain() for r in preview.rows):
        raise ImportRefused(
            f"{preview.file_name} changes nothing: every item holds these values already.", preview
        )
    return gated


def _import(
    *, actor: Actor, signer: VerifiedSigner | None, preview: Preview, reason: str, comment: str
) -> Imported:
    gated = [r for r in preview.rows if r.needs_approval]
    plain = [r for r in preview.rows if r.operation == "change" and r.plain()]
    origin = _origin(preview)
    with transaction.atomic():
        for row in plain:
            item = model_of(row.kind).objects.select_for_update().get(code=row.code)
            record_update(
                item,
                actor=actor,
                values=row.plain(),
                reason=f"{origin}, line {row.line}: {reason}",
                action="master_change",
            )
        request = None
        if gated:
            request = _request(
                actor=actor, signer=signer, preview=preview, rows=gated, reason=reason, comment=comment
            )
    return Imported(preview=preview, applied=plain, request=request)


def _request(
    *,
    actor: Actor,
    signer: VerifiedSigner | None,
    preview: Preview,
    rows: list[Row],
    reason: str,
    comment: str,
) -> ChangeRequest:
    created = sum(r.operation == "create" for r in rows)
    changed = len(rows) - created
    lines = []
    for r in rows:
        label = KINDS[r.kind].label
        what = "new" if r.operation == "create" else "change of"
        words = r.words if r.operation == "create" else describe(KINDS[r.kind], r.before, r.gmp())
        lines.append(f"line {r.line}: {label} {r.code}: {what}" + (" — " + "; ".join(words) if words else ""))
    summary = (
        f"Import of {preview.file_name} ({preview.format}, SHA-256 {preview.sha256}): "
        f"{created} new, {changed} changed\n" + "\n".join(lines)
    )
    request: dict[str, Any] = {
        "actor": actor,
        "kind": IMPORT_KIND,
        "subject_type": SUBJECT_TYPE,
        # One open request per file: the same file sent twice waits for the first to be decided.
        "subject_id": preview.sha256,
        "summary": summary,
        "payload": {
            "file": preview.file_name,
            "sha256": preview.sha256,
            "format": preview.format,
            "counts": {**preview.counts(), "requested": len(rows)},
            "rows": [
                {
                    "line": r.line,
                    "kind": r.kind,
                    "code": r.code,
                    "operation": r.operation,
                    "values": r.values if r.operation == "create" else r.gmp(),
                }
                for r in rows
            ],
        },
        "before": {"rows": [_before(r) for r in rows]},
        "reason": reason,
    }
    if signer is None:
        return change_request_received(**request)
    return change_request(**request, signer=signer, comment=comment)


def _before(row: Row) -> dict[str, Any]:
    head = {"line": row.line, "kind": row.kind, "code": row.code}
    if row.operation == "create":
        return {**head, "exists": False}
    return {**head, "values": {n: row.before[n] for n in row.gmp()}}


def _as_now(entry: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """One row's ``before`` read again now, and how it moved on, in words."""
    k = kind_of(entry["kind"])
    head = {"line": entry["line"], "kind": entry["kind"], "code": entry["code"]}
    item = model_of(k).objects.filter(code=entry["code"]).first()
    where = f"line {entry['line']}: "
    if "exists" in entry:
        if item is None:
            return {**head, "exists": False}, []
        return {**head, "exists": True}, [
            f"{where}{k.label.lower()} {entry['code']} exists now (created since)."
        ]
    if item is None:
        return {**head, "exists": False}, [f"{where}there is no {k.label.lower()} {entry['code']} now."]
    now = stored(k, item)
    moved = [
        f"{where}{entry['code']}'s {k.field(n).label.lower()} is no longer {shown(k.field(n), was)} as when "
        f"imported (it is {shown(k.field(n), now.get(n))})"
        for n, was in entry["values"].items()
        if now.get(n) != was
    ]
    if item.retired_at is not None:
        moved.append(f"{where}{entry['code']} is retired since the import was requested")
    return {**head, "values": {n: now.get(n) for n in entry["values"]}}, moved


def _current(request: ChangeRequest) -> Any:
    """The rows' subjects as the request's ``before`` holds them; refuses in words, line by line, if one moved on.

    approvals compares the two too, but could only say that something moved; an approver of a file
    needs to know which line and how.
    """
    found, moved = [], []
    for entry in request.before["rows"]:
        now, words = _as_now(entry)
        found.append(now)
        moved += words
    if moved:
        raise ChangeRefused(
            f"{request.number} cannot be applied: " + "; ".join(moved) + ". Nothing was changed: "
            "withdraw it and import the file again."
        )
    return {"rows": found}


def _apply(request: ChangeRequest, actor: Actor) -> None:
    """Every row, in file order, in the approval's transaction: one refused row refuses them all."""
    payload = request.payload
    reason = f"{request.number} import of {payload['file']} (SHA-256 {payload['sha256']})"
    for row in payload["rows"]:
        try:
            waiting_refusal(row["kind"], row["code"])
            item_apply(
                kind_of(row["kind"]),
                row["code"],
                row["operation"],
                row["values"],
                actor=actor,
                reason=f"{reason}, line {row['line']}: {request.reason}",
            )
        except ChangeRefused as exc:
            raise ChangeRefused(
                f"{request.number} cannot be applied: line {row['line']}: {exc} Nothing was changed."
            ) from None


kind_register(
    Kind(
        name=IMPORT_KIND,
        label="Import of master data",
        request_permission=PERMISSION,
        current=_current,
        apply=_apply,
    )
)

"""The B2MML V0700 documents Batchline sends the ERP, built with lxml from plain data.

``SyncOperationsPerformance``: a batch's performance as it stands (its state, times, and per
operation the lots it consumed and produced with their quantities); ``SyncMaterialLot``: a lot as
it stands (status, dates, containers). Each carries the ApplicationArea its outbox message is
known by (sender, creation time, BODID = the message's idempotency key). No Django and no
database here: erp/outbound.py reads the records into these dataclasses, validates what comes
out against the XSD and writes it to the outbox. The elements are mapped by hand (STACK.md),
in the order the schema's sequences demand; docs/integration.md has the field map.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from lxml import etree

NS = "http://www.mesa.org/xml/B2MML"
RELEASE = "V0700"

# Batchline's batch states as ISA-95 response states (B2MML ResponseState1Type). A batch's
# execution is over once QA decided: both decisions close it; which one it was is the output
# lot's status (its MaterialActual's "LotStatus" and the SyncMaterialLot sent with it).
RESPONSE_STATE = {
    "created": "Waiting",
    "released": "Ready",
    "running": "Running",
    "held": "Held",
    "complete": "Completed",
    "in_review": "Completed",
    "aborted": "Aborted",
    "qa_released": "Closed",
    "rejected": "Closed",
}

# A lot's status as a B2MML disposition: only a released lot may be used without restriction.
DISPOSITION = {"released": "UnRestricted"}
RESTRICTED = "Restricted"

# XML 1.0 cannot carry the C0 control characters (bar tab, line feed, carriage return), not even
# escaped; a scanned GS1 lot number may hold the group separator. They are written as Unicode's
# visible pictures of them, as the BatchML record does (reports/batchml.py), so a lot with such a
# number is reported rather than refused.
_XML_UNSAFE = {code: 0x2400 + code for code in range(0x20) if code not in (0x09, 0x0A, 0x0D)} | {
    0xFFFE: 0xFFFD,
    0xFFFF: 0xFFFD,
}


@dataclass(frozen=True)
class Bod:
    """The ApplicationArea: who sends, when, and the message's idempotency key as its BODID."""

    sender: str  # the installation (settings.OUTBOX_SOURCE): Sender/LogicalID
    task: str  # the event that made the message: Sender/TaskID
    key: str  # BODID
    created_at: dt.datetime


@dataclass(frozen=True)
class LotQuantity:
    """One MaterialActual: how much of one lot an operation consumed or produced, in one unit."""

    use: str  # "Consumed" or "Produced" (B2MML MaterialUse)
    material: str
    lot: str
    quantity: Decimal
    unit: str
    containers: tuple[str, ...] = ()  # the sublots (container labels) it came from or went into
    lot_status: str = ""  # for a produced lot: its status now (quarantine, released, rejected…)


@dataclass(frozen=True)
class Segment:
    """One operation of the control recipe as executed: a SegmentResponse."""

    key: str
    name: str
    state: str  # a B2MML response state
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    materials: tuple[LotQuantity, ...] = ()


@dataclass(frozen=True)
class Performance:
    """One batch as the ERP needs it: an OperationsPerformance with one OperationsResponse."""

    batch: str
    order_id: str  # the ERP's order (OperationsRequestID)
    recipe: str  # the master recipe's code (OperationsDefinitionID)
    recipe_version: int
    state: str  # Batchline's batch state (RESPONSE_STATE's keys)
    state_label: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Container:
    code: str
    quantity: Decimal
    unit: str


@dataclass(frozen=True)
class LotState:
    """One lot as it stands: a MaterialLot with its containers as sublots."""

    material: str
    material_name: str
    lot: str
    status: str  # quarantine, released, rejected, blocked
    unit: str
    containers: tuple[Container, ...]
    expires_at: dt.datetime | None = None
    retest_at: dt.datetime | None = None
    potency: Decimal | None = None  # % of label claim
    produced_by_batch: str = ""
    order_id: str = ""


def _text(value: str) -> str:
    return value.translate(_XML_UNSAFE)


def _el(parent: etree._Element, name: str, text: str | None = None, **attrib: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{NS}}}{name}", attrib)
    if text is not None:
        child.text = _text(text)
    return child


def when(moment: dt.datetime) -> str:
    """An xsd:dateTime in UTC, to the microsecond the record holds."""
    if moment.tzinfo is None:
        raise ValueError("a naive date-time has no place in a message: the record keeps UTC")
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def number(value: Decimal) -> str:
    """A quantity as the record holds it, without trailing zeros or an exponent."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _quantity(parent: etree._Element, name: str, value: Decimal, unit: str) -> None:
    q = _el(parent, name)
    _el(q, "QuantityString", number(value))
    _el(q, "DataType", "decimal")
    _el(q, "UnitOfMeasure", unit)


def _value(parent: etree._Element, text: str, data_type: str, unit: str = "") -> None:
    v = _el(parent, "Value")
    _el(v, "ValueString", text)
    _el(v, "DataType", data_type)
    if unit:
        _el(v, "UnitOfMeasure", unit)


def _root(verb_noun: str, bod: Bod) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(f"{{{NS}}}{verb_noun}", {"releaseID": RELEASE}, nsmap={None: NS})
    area = _el(root, "ApplicationArea")
    sender = _el(area, "Sender")
    _el(sender, "LogicalID", bod.sender)
    _el(sender, "ComponentID", "Batchline")
    _el(sender, "TaskID", bod.task)
    _el(area, "CreationDateTime", when(bod.created_at))
    _el(area, "BODID", bod.key)
    data = _el(root, "DataArea")
    _el(data, "Sync")
    return root, data


def _material_actual(parent: etree._Element, m: LotQuantity) -> None:
    actual = _el(parent, "MaterialActual")
    _el(actual, "ID", f"{m.material}/{m.lot}")
    _el(actual, "MaterialDefinitionID", m.material)
    _el(actual, "MaterialLotID", m.lot)
    for code in m.containers:
        _el(actual, "MaterialSubLotID", code)
    _el(actual, "MaterialUse", m.use)
    _quantity(actual, "Quantity", m.quantity, m.unit)
    if m.lot_status:
        prop = _el(actual, "MaterialActualProperty")
        _el(prop, "ID", "LotStatus")
        _value(prop, m.lot_status, "string")


def sync_operations_performance(p: Performance, bod: Bod) -> bytes:
    """The batch's performance as a SyncOperationsPerformance document (UTF-8, with declaration)."""
    root, data = _root("SyncOperationsPerformance", bod)
    state = RESPONSE_STATE[p.state]
    perf = _el(data, "OperationsPerformance")
    _el(perf, "ID", p.batch)
    _el(perf, "Description", f"Batch {p.batch}: {p.state_label}")
    if p.started_at:
        _el(perf, "StartTime", when(p.started_at))
    if p.ended_at:
        _el(perf, "Endtime", when(p.ended_at))  # sic: V0700 spells this one "Endtime"
    _el(perf, "OperationsType", "Production")
    _el(perf, "PerformanceState", state)
    response = _el(perf, "OperationsResponse")
    _el(response, "ID", p.batch)
    _el(response, "Description", f"Batch {p.batch} of recipe {p.recipe} version {p.recipe_version}")
    if p.started_at:
        _el(response, "StartTime", when(p.started_at))
    if p.ended_at:
        _el(response, "EndTime", when(p.ended_at))
    _el(response, "OperationsType", "Production")
    _el(response, "OperationsRequestID", p.order_id)
    _el(response, "OperationsDefinitionID", p.recipe)
    _el(response, "ResponseState", state)
    for s in p.segments:
        seg = _el(response, "SegmentResponse")
        _el(seg, "ID", s.key)
        _el(seg, "Description", s.name)
        if s.started_at:
            _el(seg, "ActualStartTime", when(s.started_at))
        if s.ended_at:
            _el(seg, "ActualEndTime", when(s.ended_at))
        _el(seg, "OperationsType", "Production")
        _el(seg, "SegmentState", s.state)
        for m in s.materials:
            _material_actual(seg, m)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _lot_property(parent: etree._Element, key: str, text: str, data_type: str, unit: str = "") -> None:
    prop = _el(parent, "MaterialLotProperty")
    _el(prop, "ID", key)
    _value(prop, text, data_type, unit)


def sync_material_lot(lot: LotState, bod: Bod) -> bytes:
    """The lot as a SyncMaterialLot document: status, disposition, dates, every container."""
    root, data = _root("SyncMaterialLot", bod)
    ml = _el(data, "MaterialLot")
    _el(ml, "ID", lot.lot)
    _el(ml, "Description", lot.material_name)
    _el(ml, "MaterialDefinitionID", lot.material)
    _el(ml, "Status", lot.status)
    _el(ml, "Disposition", DISPOSITION.get(lot.status, RESTRICTED))
    if lot.expires_at:
        _lot_property(ml, "ExpiryDate", when(lot.expires_at), "dateTime")
    if lot.retest_at:
        _lot_property(ml, "RetestDate", when(lot.retest_at), "dateTime")
    if lot.potency is not None:
        _lot_property(ml, "Potency", number(lot.potency), "decimal", "%")
    if lot.produced_by_batch:
        _lot_property(ml, "ProducedByBatch", lot.produced_by_batch, "string")
    if lot.order_id:
        _lot_property(ml, "OperationsRequestID", lot.order_id, "string")
    for c in lot.containers:
        sub = _el(ml, "MaterialSubLot")
        _el(sub, "ID", c.code)
        _quantity(sub, "Quantity", c.quantity, c.unit)
    for unit, quantity in totals(lot.containers, lot.unit):
        _quantity(ml, "Quantity", quantity, unit)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def totals(containers: Sequence[Container], unit: str) -> list[tuple[str, Decimal]]:
    """What the lot holds, per unit: its own first (containers are kept in the material's unit,
    so there is one; a unit is never converted here, where no unit registry is at hand)."""
    found: dict[str, Decimal] = {unit: Decimal(0)}
    for c in containers:
        found[c.unit] = found.get(c.unit, Decimal(0)) + c.quantity
    return list(found.items())

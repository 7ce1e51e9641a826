"""Reading an inbound B2MML V0700 document safely, and writing the ConfirmBOD that answers it.

Plain lxml over plain data, no database. The document is read with the parser
the master-data import uses (no entity expansion, no network, no huge trees),
after its size was checked, and refused outright if it carries a DOCTYPE (a
B2MML document has none; entity declarations are how a document expands itself
or reaches for a file). It is validated against MESA's schemas, compiled once
per process (``masterdata.imports.b2mml_schema``).

The answer to every message is a ``ConfirmBOD`` (B2MML-ConfirmBOD.xsd): the
OAGIS confirmation any business object document may be answered with,
whatever its verb, so one shape serves an applied order, a parked lot and a
document too broken to have a verb at all. Its ``ResponseExpression`` carries
OAGIS's action code (Accepted, Rejected), its ``ChangeStatus`` Batchline's
state (Applied, Parked, Refused, Expired) and a stable reason code, and its
``BOD`` the words: what was done, or why not.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree
from lxml.builder import ElementMaker

from batchline.masterdata.definitions import UNITS
from batchline.masterdata.imports import DOCTYPE_REFUSED, b2mml_schema, declares_doctype, xml_parser

NS = "http://www.mesa.org/xml/B2MML"
MAX_BODID = 200
# The messages Batchline takes: root element → (verb, noun).
MESSAGES = {
    "ProcessOperationsSchedule": ("Process", "OperationsSchedule"),
    "ChangeOperationsSchedule": ("Change", "OperationsSchedule"),
    "CancelOperationsSchedule": ("Cancel", "OperationsSchedule"),
    "SyncMaterialDefinition": ("Sync", "MaterialDefinition"),
    "SyncMaterialLot": ("Sync", "MaterialLot"),
}
VERBS = ("Acknowledge", "Cancel", "Change", "Get", "Notify", "Process", "Respond", "Show", "Sync")
# Batchline's state → OAGIS's action code: a parked message is taken, its effect waits.
ACTION_CODES = {"applied": "Accepted", "parked": "Accepted", "refused": "Rejected", "expired": "Rejected"}


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def text(el: Any, *path: str) -> str:
    """The stripped text at ``path`` below ``el`` (each a B2MML element name), or ""."""
    for name in path:
        if el is None:
            return ""
        el = el.find(q(name))
    return (el.text or "").strip() if el is not None else ""


def children(el: Any, name: str) -> list[Any]:
    return el.findall(q(name)) if el is not None else []


def descendants(el: Any, name: str) -> Iterator[Any]:
    return el.iter(q(name))


@dataclass
class Envelope:
    """What a document says about itself, read before anything is done; ``problem`` if it is refused."""

    root: str = ""
    verb: str = ""
    noun: str = ""
    bodid: str = ""
    sender: str = ""
    doc: Any = None
    problem: str = ""
    code: str = ""
    original: Any = None  # the ApplicationArea, once the document validated

    @property
    def ok(self) -> bool:
        return not self.problem


def _refused(env: Envelope, code: str, problem: str) -> Envelope:
    env.code, env.problem = code, problem
    return env


def read(body: bytes, *, max_bytes: int) -> Envelope:
    """Check, parse and validate ``body``; the envelope names the message or says why it is refused."""
    env = Envelope()
    if len(body) > max_bytes:
        return _refused(
            env,
            "TOO_LARGE",
            f"The document is {len(body):,} bytes; a message is at most {max_bytes:,} bytes. It was not read.",
        )
    if b"\x00" in body:
        return _refused(env, "MALFORMED", "The document holds a NUL byte: it is not XML text.")
    if declares_doctype(body):
        return _refused(env, "DOCTYPE", DOCTYPE_REFUSED)
    try:
        doc = etree.fromstring(body, xml_parser())
    except etree.XMLSyntaxError as exc:
        return _refused(
            env, "MALFORMED", f"The document is not well-formed XML (line {exc.lineno}): {exc.msg}."
        )
    if declares_doctype(body, doc):
        return _refused(env, "DOCTYPE", DOCTYPE_REFUSED)
    env.doc, env.root = doc, local(doc)
    namespace = etree.QName(doc).namespace or "(none)"
    if namespace != NS:
        return _refused(
            env,
            "WRONG_NAMESPACE",
            f"The document's namespace is {namespace}; a B2MML V0700 message is in {NS}.",
        )
    env.bodid = text(doc, "ApplicationArea", "BODID")
    env.sender = text(doc, "ApplicationArea", "Sender", "LogicalID")[:200]
    if env.root in MESSAGES:
        env.verb, env.noun = MESSAGES[env.root]
    else:
        verb = next((v for v in VERBS if env.root.startswith(v) and len(env.root) > len(v)), "")
        env.verb, env.noun = verb[:20], env.root[len(verb) :][:60]
        taken = ", ".join(MESSAGES)
        what = f"{verb} of {env.noun}" if verb else f"a {env.root} document"
        return _refused(env, "UNKNOWN_MESSAGE", f"Batchline does not take {what}: it takes {taken}.")
    if len(env.bodid) > MAX_BODID:
        env.bodid = ""
        return _refused(env, "BODID_TOO_LONG", f"The BODID is longer than {MAX_BODID} characters.")
    schema = b2mml_schema()
    if not schema.validate(doc):
        errors = [f"line {e.line}: {e.message.replace(f'{{{NS}}}', '')}" for e in list(schema.error_log)[:10]]
        return _refused(env, "INVALID", "The document is not valid B2MML V0700: " + "; ".join(errors) + ".")
    if not env.bodid:
        return _refused(
            env,
            "NO_BODID",
            "The message has no ApplicationArea/BODID: every message names itself, so that a resend is "
            "recognised and applied once.",
        )
    env.original = doc.find(q("ApplicationArea"))
    return env


# --- values inside a document ------------------------------------------------------------------


class ValueRefused(ValueError):
    """A value in the document that cannot be read; the message says which and why."""


def decimal(value: str, *, what: str) -> Decimal:
    """An XML decimal (``1000``, ``12.5``): never a site's typed notation, never a float."""
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise ValueRefused(f"{what} {value!r} is not a number.") from None
    if not number.is_finite():
        raise ValueRefused(f"{what} {value!r} is not a number.")
    return number


def moment(value: str, *, what: str) -> dt.datetime:
    """An xsd:dateTime with its zone, or an xsd:date (taken as the start of that day, UTC)."""
    raw = value.strip()
    try:
        if len(raw) == 10:
            day = dt.date.fromisoformat(raw)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueRefused(f"{what} {value!r} is not a date or a date and time.") from None
    if parsed.tzinfo is None:
        raise ValueRefused(f"{what} {value!r} has no time zone: give it (Z for UTC).")
    return parsed


@dataclass(frozen=True)
class Quantity:
    value: str
    unit: str
    line: int


def quantities(el: Any) -> list[Quantity]:
    return [
        Quantity(text(x, "QuantityString"), text(x, "UnitOfMeasure"), x.sourceline)
        for x in children(el, "Quantity")
    ]


def unit_of(given: str) -> str:
    """The ERP's unit as Batchline writes it: ``KG`` is kg, ``ML`` is mL (docs/integration.md)."""
    for known in UNITS:
        if given.strip().lower() == known.lower():
            return known
    return given.strip()


def properties(el: Any, name: str) -> dict[str, str]:
    """``{ID: Value/ValueString}`` of an element's properties (MaterialLotProperty, …), first value each."""
    out: dict[str, str] = {}
    for prop in children(el, name):
        out.setdefault(text(prop, "ID"), text(prop, "Value", "ValueString"))
    return out


# --- the answer ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    state: str  # applied, parked, refused, expired
    code: str
    lines: Sequence[str] = field(default_factory=tuple)


def confirm(answer: Answer, env: Envelope | None, *, at: dt.datetime) -> bytes:
    """The ConfirmBOD that answers ``env`` (valid against B2MML-ConfirmBOD.xsd)."""
    E = ElementMaker(namespace=NS, nsmap={None: NS})
    area = E.ApplicationArea(
        E.Sender(E.LogicalID("Batchline"), E.ComponentID("erp-inbound")),
        *([E.Receiver(E.LogicalID(env.sender))] if env is not None and env.sender else []),
        E.CreationDateTime(at.astimezone(dt.UTC).isoformat(timespec="seconds")),
        E.BODID(str(uuid.uuid4())),
    )
    confirm_el = E.Confirm()
    if env is not None and env.original is not None:
        original = E.OriginalApplicationArea(*[copy.deepcopy(c) for c in env.original])
        confirm_el.append(original)
    words = [_xml_safe(line) for line in answer.lines] or [answer.state]
    status = E.ChangeStatus(
        E.Code(answer.state.capitalize()),
        E.Description(words[0]),
        E.ReasonCode(answer.code),
    )
    confirm_el.append(
        E.ResponseCriteria(
            E.ResponseExpression(answer.state, actionCode=ACTION_CODES[answer.state]),
            status,
        )
    )
    bod = E.BOD(*[E.Description(line) for line in words])
    if env is not None and env.bodid:
        bod.append(E.Note(_xml_safe(f"Message {env.bodid} ({env.root or 'unknown'})")))
    doc = E.ConfirmBOD(area, E.DataArea(confirm_el, bod))
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


# Characters XML 1.0 cannot hold: words quoting a refused document must still make a valid answer.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(words: str) -> str:
    return _NOT_XML.sub("\ufffd", words)

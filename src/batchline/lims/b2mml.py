"""B2MML V0700 ``OperationsTest`` in, ``AcknowledgeOperationsTestInformation`` out (S95-04, A11-07).

A LIMS that speaks ISA-95 sends its results as ``ProcessOperationsTestInformation`` or
``SyncOperationsTestInformation`` (or the bare ``OperationsTestInformation``). Each ``TestResult``
is one result (docs/integration.md, LIMS, has the whole map):

- ``ID``: the LIMS's result ID (a second message with the same ID has no second effect);
- ``TestableObjectID``: the sample's code, as its label and the sample request carry it;
- ``PropertyMeasurement`` (exactly one): ``ID`` the test as the request named it,
  ``Value/ValueString`` and ``Value/UnitOfMeasure`` the result, ``MeasurementDate`` when tested
  (else the result's ``EvaluationDate``);
- ``EvaluatedCriterionResult``: the LIMS's own verdict, ``pass`` or ``fail`` (optional);
- ``Description``: a comment (optional).

Before anything is read the document is bounded (:data:`MAX_BYTES`), parsed with entities and
the network off and any DTD refused (an entity bomb or an external entity never expands), its
namespace and verb checked, and validated against MESA's schemas, compiled once per process
(``masterdata.imports.b2mml_schema``). Every answer, acceptance or refusal, is an
``AcknowledgeOperationsTestInformation`` that names each result and Batchline's verdict on it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from lxml import etree

from batchline.masterdata.imports import ImportRefused, b2mml_schema, declares_doctype
from batchline.rules import canonical
from batchline.rules.verdict import Reason

from .services import Incoming, Received

NS = "http://www.mesa.org/xml/B2MML"
RELEASE = "V0700"
MAX_BYTES = 1024 * 1024
ROOTS = ("ProcessOperationsTestInformation", "SyncOperationsTestInformation", "OperationsTestInformation")


DTD_WORDS = "The document declares a DTD: B2MML messages carry none, and entities are never expanded here."


class DocumentRefused(Exception):
    """The document cannot be read as results; ``reasons`` say why, with lines where there are any."""

    def __init__(self, reasons: list[Reason], original: Any = None) -> None:
        super().__init__(" ".join(r.message for r in reasons))
        self.reasons = reasons
        self.original = original  # the sender's ApplicationArea, when it could be read


@dataclass(frozen=True)
class Document:
    results: list[Incoming]
    original: Any  # the sender's ApplicationArea, or None


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _parser() -> etree.XMLParser:
    # No entity expansion, no DTD loaded, no network: a document cannot expand itself or pull anything in.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
    )


def _text(el: Any, *path: str) -> str:
    for name in path:
        if el is None:
            return ""
        el = el.find(_q(name))
    return (el.text or "").strip() if el is not None else ""


def _refuse(code: str, message: str, original: Any = None) -> DocumentRefused:
    return DocumentRefused([Reason(code, message)], original)


def read(data: bytes) -> Document:
    """The results a document carries, or :class:`DocumentRefused` saying why it cannot be read."""
    if len(data) > MAX_BYTES:
        raise _refuse(
            "DOCUMENT_TOO_LARGE",
            f"The document is {len(data):,} bytes: an OperationsTest message is at most {MAX_BYTES:,} bytes "
            "(send the results in several messages).",
        )
    if declares_doctype(data):
        raise _refuse("DTD_REFUSED", DTD_WORDS)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise _refuse(
            "NOT_XML", f"The document is not well-formed XML: line {exc.lineno}: {exc.msg}."
        ) from exc
    if declares_doctype(data, root):
        raise _refuse("DTD_REFUSED", DTD_WORDS)
    name = etree.QName(root)
    if name.namespace != NS:
        raise _refuse(
            "WRONG_NAMESPACE",
            f"The document's root {name.localname} is in the namespace {name.namespace or '(none)'}, "
            f"not B2MML's {NS}.",
        )
    original = root.find(_q("ApplicationArea"))
    if name.localname not in ROOTS:
        raise _refuse(
            "UNKNOWN_VERB",
            f"A {name.localname} message is not taken here: the LIMS sends its results as "
            "ProcessOperationsTestInformation or SyncOperationsTestInformation.",
            original,
        )
    try:
        schema = b2mml_schema()
    except ImportRefused as exc:
        raise _refuse("SCHEMAS_MISSING", str(exc), original) from exc
    if not schema.validate(root):
        errors = list(schema.error_log)[:10]
        raise DocumentRefused(
            [
                Reason(
                    "NOT_VALID", f"Not valid B2MML V0700: line {e.line}: {e.message.replace(f'{{{NS}}}', '')}"
                )
                for e in errors
            ],
            original,
        )
    infos = (
        [root]
        if name.localname == "OperationsTestInformation"
        else root.findall(f"{_q('DataArea')}/{_q('OperationsTestInformation')}")
    )
    reasons: list[Reason] = []
    results: list[Incoming] = []
    for info in infos:
        for el in info.findall(_q("TestResult")):
            found, problem = _result(el)
            if problem is not None:
                reasons.append(problem)
            elif found is not None:
                results.append(found)
    if reasons:
        raise DocumentRefused(reasons, original)
    if not results:
        raise _refuse("NO_RESULTS", "The document holds no TestResult.", original)
    return Document(results, original)


def _result(el: Any) -> tuple[Incoming | None, Reason | None]:
    rid = _text(el, "ID")
    where = f"TestResult {rid} (line {el.sourceline})"
    if el.find(_q("TestResultChild")) is not None:
        return None, Reason(
            "NESTED_RESULT", f"{where} holds child results: send each result as a TestResult of its own."
        )
    measurements = el.findall(_q("PropertyMeasurement"))
    if len(measurements) != 1:
        return None, Reason(
            "ONE_MEASUREMENT",
            f"{where} has {len(measurements)} PropertyMeasurement elements: a result carries exactly one, "
            "its test and value.",
        )
    m = measurements[0]
    if m.find(_q("Value")) is None:
        return None, Reason("VALUE_MISSING", f"{where} has no Value in its PropertyMeasurement.")
    when = _text(m, "MeasurementDate") or _text(el, "EvaluationDate")
    tested_at = None
    if when:
        try:
            tested_at = dt.datetime.fromisoformat(when)
        except ValueError:
            return None, Reason("NOT_A_TIME", f"{where}: {when!r} is not a date and time Batchline can read.")
    return (
        Incoming(
            result_id=rid,
            sample=_text(el, "TestableObjectID"),
            test=_text(m, "ID"),
            value=_text(m, "Value", "ValueString"),
            unit=_text(m, "Value", "UnitOfMeasure"),
            tested_at=tested_at,
            lims_verdict=_text(el, "EvaluatedCriterionResult"),
            comment=" ".join(_text(d) for d in el.findall(_q("Description")) if _text(d)),
        ),
        None,
    )


def _el(parent: Any, name: str, text: str | None = None, **attrs: str) -> Any:
    e = etree.SubElement(parent, _q(name), attrs)
    if text is not None:
        e.text = text
    return e


def _now() -> str:
    return str(canonical.normalise(timezone.now()))


def _original(parent: Any, original: Any) -> None:
    """The sender's application area, as the acknowledgement repeats it (its plain parts only)."""
    if original is None or original.find(_q("CreationDateTime")) is None:
        return
    area = _el(parent, "OriginalApplicationArea")
    for name in ("Sender", "Receiver", "CreationDateTime", "BODID"):
        for child in original.findall(_q(name)):
            area.append(etree.fromstring(etree.tostring(child)))


def verdict_word(received: Received) -> str:
    r = received.result
    if r.in_specification is None:
        return "not judged"
    return "pass" if r.in_specification else "fail"


def acknowledge(
    *, original: Any, received: list[Received] | None = None, refused: list[Reason] | None = None
) -> bytes:
    """The answer to a message: Accepted with Batchline's verdict on each result, or Rejected with
    every reason (then nothing was written)."""
    root = etree.Element(_q("AcknowledgeOperationsTestInformation"), nsmap={None: NS}, releaseID=RELEASE)
    area = _el(root, "ApplicationArea")
    _el(_el(area, "Sender"), "LogicalID", settings.OUTBOX_SOURCE)
    _el(area, "CreationDateTime", _now())
    _el(area, "BODID", str(uuid.uuid4()))
    data = _el(root, "DataArea")
    ack = _el(data, "Acknowledge")
    _original(ack, original)
    if refused:
        text = "Rejected, nothing recorded: " + " | ".join(f"[{r.code}] {r.message}" for r in refused)
        action = "Rejected"
    else:
        text = f"Accepted: {len(received or [])} result(s)"
        action = "Accepted"
    _el(_el(ack, "ResponseCriteria"), "ResponseExpression", text, actionCode=action)
    info = _el(data, "OperationsTestInformation")
    for r in received or []:
        result = r.result
        e = _el(info, "TestResult")
        _el(e, "ID", result.result_id)
        words = "received before: no second effect" if r.duplicate else "recorded"
        if result.specification:
            words += f"; specification {result.specification}"
        if result.exception_id:
            words += f"; exception #{result.exception_id} raised on batch {result.sample.step.batch.number}"
        if result.lot_blocked:
            words += f"; lot {result.lot_blocked} blocked"
        _el(e, "Description", words)
        _el(e, "TestableObjectID", result.sample.code)
        _el(e, "EvaluatedCriterionResult", verdict_word(r))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

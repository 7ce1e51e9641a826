"""B2MML V0700 documents the ERP tests send, and both validators every document and reply passes.

Every inbound document a test builds here and every reply Batchline answers is
checked against MESA's schemas twice: by lxml (libxml2, what Batchline itself
uses) and by ``xmlschema``, an independent implementation, so a quirk of one
cannot hide an invalid document.
"""

from __future__ import annotations

import functools
from typing import Any

import xmlschema
from lxml import etree

from batchline.audit.services import Actor
from batchline.erp import inbound
from batchline.masterdata.imports import b2mml_schema, xml_parser
from batchline.reports.batchml import schema_dir

NS = "http://www.mesa.org/xml/B2MML"


@functools.cache
def independent_schema() -> xmlschema.XMLSchema:
    """xmlschema's own reading of AllSchemas.xsd: about two seconds, so once per test process."""
    return xmlschema.XMLSchema(str(schema_dir() / "AllSchemas.xsd"))


def assert_valid(xml: bytes | str) -> None:
    data = xml.encode() if isinstance(xml, str) else xml
    doc = etree.fromstring(data, xml_parser())
    schema = b2mml_schema()
    assert schema.validate(doc), [str(e) for e in schema.error_log][:5]
    independent_schema().validate(data.decode())  # raises, naming the element, when invalid


def send(erp: Any, body: bytes | str, *, valid: bool = True, transport: str = "https") -> inbound.Reply:
    """Receive ``body`` as the ERP interface; the document (when meant valid) and the reply are validated."""
    data = body.encode() if isinstance(body, str) else body
    if valid:
        assert_valid(data)
    reply = inbound.receive(data, transport=transport, actor=Actor.of(erp, via="api"))
    assert_valid(reply.xml)
    return reply


def reply_status(reply: inbound.Reply) -> tuple[str, str, str]:
    """(action code, Batchline's state, reason code) as the ConfirmBOD says them."""
    doc = etree.fromstring(reply.xml)
    expression = doc.find(f".//{{{NS}}}ResponseExpression")
    status = doc.find(f".//{{{NS}}}ChangeStatus")
    return (
        expression.get("actionCode"),
        status.findtext(f"{{{NS}}}Code"),
        status.findtext(f"{{{NS}}}ReasonCode"),
    )


def area(bodid: str | None, sender: str = "SAP-PRD-100") -> str:
    bod = f"<BODID>{bodid}</BODID>" if bodid is not None else ""
    return (
        f"<ApplicationArea><Sender><LogicalID>{sender}</LogicalID><ConfirmationCode>Always</ConfirmationCode>"
        f"</Sender><CreationDateTime>2026-12-07T08:00:00Z</CreationDateTime>{bod}</ApplicationArea>"
    )


def requirement(
    code: str, use: str, quantity: str | None = None, unit: str = "kg", lot: str = "", ident: str = "0001"
) -> str:
    lot_el = f"<MaterialLotID>{lot}</MaterialLotID>" if lot else ""
    qty = (
        f"<Quantity><QuantityString>{quantity}</QuantityString><UnitOfMeasure>{unit}</UnitOfMeasure></Quantity>"
        if quantity is not None
        else ""
    )
    return (
        f"<MaterialRequirement><ID>{ident}</ID><MaterialDefinitionID>{code}</MaterialDefinitionID>{lot_el}"
        f"<MaterialUse>{use}</MaterialUse>{qty}</MaterialRequirement>"
    )


def request(
    order: str,
    *,
    product: str = "ERPTAB",
    quantity: str | None = "1000",
    unit: str = "tablet",
    batch: str = "",
    bom: list[tuple[str, str | None, str]] | None = None,
    recipe: str = "",
    start: str = "2026-12-08T06:00:00Z",
    end: str = "2026-12-08T18:00:00Z",
) -> str:
    """One OperationsRequest: the product made (MaterialUse Produced) and its bill of materials."""
    bom = [("LAC-200", "2", "KG"), ("API-1", "0.1", "kg")] if bom is None else bom
    needs = requirement(product, "Produced", quantity, unit, lot=batch, ident="OUT") + "".join(
        requirement(code, "Consumed", qty, u, ident=f"{i:04d}") for i, (code, qty, u) in enumerate(bom, 1)
    )
    definition = f"<OperationsDefinitionID>{recipe}</OperationsDefinitionID>" if recipe else ""
    times = (f"<StartTime>{start}</StartTime>" if start else "") + (
        f"<EndTime>{end}</EndTime>" if end else ""
    )
    return (
        f"<OperationsRequest><ID>{order}</ID>{times}{definition}"
        "<SegmentRequirement><ID>0010</ID><ProcessSegmentID>MAKE</ProcessSegmentID>"
        f"<OperationsDefinitionID>{recipe or 'ROUTING-1'}</OperationsDefinitionID>"
        f"<OperationsSegmentID>0010</OperationsSegmentID>{needs}</SegmentRequirement></OperationsRequest>"
    )


def schedule(verb: str, bodid: str | None, *requests: str, action: str = "") -> str:
    """A ProcessOperationsSchedule (verb Process), ChangeOperationsSchedule or CancelOperationsSchedule."""
    tag = {"Process": "Process", "Change": "Change", "Cancel": "Cancel"}[verb]
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{verb}OperationsSchedule xmlns="{NS}" releaseID="7.0">'
        f"{area(bodid)}<DataArea><{tag}>{action}</{tag}><OperationsSchedule><ID>SCHED-1</ID>{''.join(requests)}"
        f"</OperationsSchedule></DataArea></{verb}OperationsSchedule>"
    )


def order(bodid: str | None, number: str = "4711", **kwargs: Any) -> str:
    return schedule("Process", bodid, request(number, **kwargs))


def cancel_reason(words: str) -> str:
    return f"<ActionCriteria><ChangeStatus><Reason>{words}</Reason></ChangeStatus></ActionCriteria>"


def material_definition(bodid: str, code: str = "LAC-200", name: str = "Lactose monohydrate 200 mesh") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<SyncMaterialDefinition xmlns="{NS}" releaseID="7.0">{area(bodid)}'
        f"<DataArea><Sync/><MaterialDefinition><ID>{code}</ID><Description>{name}</Description>"
        "<MaterialDefinitionProperty><ID>MaterialType</ID><Value><ValueString>excipient</ValueString></Value>"
        "</MaterialDefinitionProperty><MaterialDefinitionProperty><ID>BaseUnit</ID><Value><ValueString>kg"
        "</ValueString></Value></MaterialDefinitionProperty><MaterialDefinitionProperty><ID>ShelfLifeDays</ID>"
        "<Value><ValueString>1095</ValueString><UnitOfMeasure>d</UnitOfMeasure></Value>"
        "</MaterialDefinitionProperty></MaterialDefinition></DataArea></SyncMaterialDefinition>"
    )


def material_lot(
    bodid: str,
    lot: str = "L-2026-001",
    code: str = "LAC-200",
    *,
    status: str = "",
    containers: tuple[str, ...] = ("25", "25"),
    unit: str = "KG",
    expiry: str = "2028-06-30",
) -> str:
    status_el = f"<Status>{status}</Status>" if status else ""
    props = (
        f"<MaterialLotProperty><ID>ExpiryDate</ID><Value><ValueString>{expiry}</ValueString></Value>"
        "</MaterialLotProperty><MaterialLotProperty><ID>SupplierLotID</ID><Value><ValueString>SUP-88"
        "</ValueString></Value></MaterialLotProperty>"
        if expiry
        else ""
    )
    subs = "".join(
        f"<MaterialSubLot><ID>{lot}-{i}</ID><Quantity><QuantityString>{q}</QuantityString>"
        f"<UnitOfMeasure>{unit}</UnitOfMeasure></Quantity></MaterialSubLot>"
        for i, q in enumerate(containers, 1)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<SyncMaterialLot xmlns="{NS}" releaseID="7.0">{area(bodid)}'
        f"<DataArea><Sync/><MaterialLot><ID>{lot}</ID><MaterialDefinitionID>{code}</MaterialDefinitionID>"
        f"{status_el}{props}{subs}</MaterialLot></DataArea></SyncMaterialLot>"
    )

"""The ERP's material master and goods movements: ``SyncMaterialDefinition`` and ``SyncMaterialLot``.

- A material definition goes through the master-data import exactly as a
  B2MML file does (``masterdata.imports``): descriptive fields at once; a new
  material or a change of a GMP field becomes one change request, the ERP
  interface's (unsigned: it is no person), in force only when a QA approver
  approves it with a signature. Parked orders and lots waiting for the
  material are applied when it is.
- A material lot unknown to Batchline is a goods receipt: received into
  quarantine through ``materials.services.lot_receive``, one container per
  ``MaterialSubLot`` (or one holding the lot's quantity). A lot Batchline holds
  already may carry a new status from the ERP's quality management, applied
  only where the GMP configuration allows it (``materials.interface``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from batchline.masterdata.imports import ImportRefused, import_preview, import_received
from batchline.materials import services as stock
from batchline.materials.interface import lot_status_from_erp
from batchline.materials.models import Lot, LotStatus, Material

from . import b2mml
from .b2mml import ValueRefused, children, q, text
from .handling import Context, MessageRefused, Missing, Outcome, applied

# MaterialLotProperty IDs Batchline reads (docs/integration.md).
EXPIRY = ("ExpiryDate", "ExpirationDate", "ShelfLifeExpirationDate")
RETEST = ("RetestDate",)
POTENCY = ("Potency", "Assay")
SUPPLIER = ("Supplier", "SupplierID", "Vendor")
SUPPLIER_LOT = ("SupplierLot", "SupplierLotID", "VendorBatch")
STATUSES = {s.value: s.value for s in LotStatus} | {s.label.lower(): s.value for s in LotStatus}


def sync_material_definition(ctx: Context) -> Outcome:
    name = f"ERP message {ctx.env.bodid}"
    try:
        preview = import_preview(data=ctx.body, file_name=name, format="b2mml")
        if not preview.refused and all(r.operation == "unchanged" for r in preview.rows):
            return applied("UNCHANGED", [f"{r.sentence()}." for r in preview.rows])
        done = import_received(
            actor=ctx.actor,
            data=ctx.body,
            file_name=name,
            reason=f"from the ERP ({ctx.env.sender or 'sender not named'})",
        )
    except ImportRefused as exc:
        rows = exc.preview.refused if exc.preview else []
        raise MessageRefused("REFUSED_LINES", str(exc), *[f"{r.sentence()}." for r in rows]) from None
    lines = []
    if done.request is not None:
        lines.append(
            f"{done.request.number} waits for a QA approver: the new materials and GMP changes take effect "
            "when it is approved."
        )
    lines += [f"{r.sentence()}." for r in done.preview.rows if r.operation != "unchanged"]
    return applied("REQUESTED" if done.request is not None else "APPLIED", lines)


@dataclass
class Receipt:
    number: str
    material: Material
    containers: list[Decimal]
    values: dict[str, Any] = field(default_factory=dict)


def _first(props: dict[str, str], names: tuple[str, ...]) -> str:
    return next((props[n] for n in names if props.get(n)), "")


def _status(el: Any, where: str) -> str:
    given = text(el, "Status")
    if not given:
        return ""
    status = STATUSES.get(given.lower())
    if status is None:
        raise MessageRefused(
            "LOT_STATUS",
            f"{where}: status {given!r} is not a lot status in Batchline (quarantine, released, rejected, blocked).",
        )
    return status


def _receipt(el: Any, number: str, material: Material, where: str) -> Receipt:
    props = b2mml.properties(el, "MaterialLotProperty")
    amounts = [b2mml.quantities(sub) for sub in children(el, "MaterialSubLot")] or [b2mml.quantities(el)]
    containers = []
    try:
        for found in amounts:
            if not found:
                raise MessageRefused("QUANTITY", f"{where}: a container without its Quantity.")
            value = b2mml.decimal(found[0].value, what=f"{where}: quantity")
            unit = b2mml.unit_of(found[0].unit) or material.unit
            containers.append(stock.in_unit(value, unit, material.unit) if value > 0 else value)
        expiry = _first(props, EXPIRY) or text(el, "EffectiveEndDate")
        if not expiry:
            raise MessageRefused(
                "EXPIRY",
                f"{where}: no expiry (MaterialLotProperty ExpiryDate, or EffectiveEndDate): every lot received has one.",
            )
        values: dict[str, Any] = {"expires_at": b2mml.moment(expiry, what=f"{where}: expiry")}
        if _first(props, RETEST):
            values["retest_at"] = b2mml.moment(_first(props, RETEST), what=f"{where}: retest date")
        if _first(props, POTENCY):
            values["potency"] = b2mml.decimal(_first(props, POTENCY), what=f"{where}: potency")
    except ValueRefused as exc:
        raise MessageRefused("VALUE", str(exc)) from None
    except stock.MaterialRefused as exc:
        raise MessageRefused(exc.verdict.reasons[0].code, f"{where}: {exc}") from None
    values["supplier"] = _first(props, SUPPLIER)[:200]
    values["supplier_lot"] = _first(props, SUPPLIER_LOT)[:60]
    location = text(el, "StorageLocation", "Location")
    if location:
        values["location"] = location[:60]
    return Receipt(number, material, containers, values)


def sync_material_lot(ctx: Context) -> Outcome:
    missing, receipts, statuses, lines = Missing(), [], [], []
    for el in ctx.env.doc.iter(q("MaterialLot")):
        number, code = text(el, "ID"), text(el, "MaterialDefinitionID")
        where = f"Lot {number} (line {el.sourceline})"
        if not code:
            raise MessageRefused(
                "NO_MATERIAL", f"{where} names no MaterialDefinitionID: the material it is a lot of."
            )
        status = _status(el, where)
        material = Material.objects.filter(code=code).first()
        if material is None:
            missing.add(
                f"material:{code}", f"{where}: material {code} is not in Batchline's master data yet."
            )
            continue
        lot = Lot.objects.filter(material=material, number=number).first()
        if lot is None:
            if status and status != LotStatus.QUARANTINE:
                raise MessageRefused(
                    "RECEIPT_STATUS",
                    f"{where} arrives as {status}: every lot is received into quarantine. Send the receipt without "
                    "a status (or as quarantine), and the ERP's decision as a later SyncMaterialLot.",
                )
            receipts.append(_receipt(el, number, material, where))
        elif status and status != lot.status:
            statuses.append((lot, status, where))
        else:
            lines.append(f"{where}: received already, {lot.get_status_display().lower()}; nothing changed.")
    if missing:
        return missing.outcome()
    reason = f"SyncMaterialLot {ctx.env.bodid} from the ERP"
    try:
        for r in receipts:
            lot = stock.lot_receive(
                actor=ctx.actor, material=r.material, number=r.number, containers=r.containers, **r.values
            )
            lines.append(
                f"Lot {lot.number} of {r.material.code} received into quarantine: {len(r.containers)} container(s), "
                f"{format(sum(r.containers, Decimal(0)).normalize(), 'f')} {r.material.unit}."
            )
        for lot, status, where in statuses:
            lot_status_from_erp(actor=ctx.actor, lot=lot, status=status, reason=f"{reason}: {status}")
            lines.append(f"{where}: status {status}, as the ERP's quality management decided.")
    except stock.MaterialRefused as exc:
        raise MessageRefused(exc.verdict.reasons[0].code, str(exc)) from None
    return applied("APPLIED" if receipts or statuses else "UNCHANGED", lines)

"""Receiving, lot disposition, the inventory ledger and label prints (MAT-, 21 CFR 211.80–211.101).

Each function is one transaction (or joins its caller's, for execution, which
consumes material inside a step action). Quantities move only through
:func:`_move`: it locks the container row, refuses to take more than the
container holds, writes the ledger entry with the balance after it and the
container's new quantity, both audited. Concurrent takers of one container
queue on its row lock, so together they never take more than it holds.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from batchline import arrivals
from batchline.audit.services import Actor, ReasonRequired, record_create, record_update
from batchline.configuration import selectors as configuration
from batchline.equipment.stations import registered_station_only
from batchline.labels.container import ContainerLabel
from batchline.outbox import events
from batchline.rules import numbers
from batchline.rules.bindings import waste_content
from batchline.rules.verdict import Refused
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply
from batchline.sqlrows import Reader
from batchline.units import UnknownUnit, check_unit, convert

from .labels import template_reference
from .models import (
    Consumption,
    Container,
    Counter,
    LabelPrint,
    LedgerEntry,
    Lot,
    LotStatus,
    Material,
    Movement,
)


class MaterialRefused(Refused):
    """A material action was refused; ``verdict.reasons`` say why in words."""


_refuse = MaterialRefused.because

# Which signature meaning each disposition carries.
DISPOSITION_MEANING = {
    LotStatus.RELEASED: Meaning.RELEASED,
    LotStatus.REJECTED: Meaning.REJECTED,
    LotStatus.BLOCKED: Meaning.APPROVED,
    LotStatus.QUARANTINE: Meaning.APPROVED,
}


def _person(actor: Actor) -> int:
    if actor.id is None:
        raise _refuse("PERSON_REQUIRED", "Material is moved by a person, who is named in the ledger.")
    return actor.id


def quantity_of(value: Any, *, what: str = "quantity") -> Decimal:
    """A positive quantity from what was typed (read in the site's notation) or sent; a clear refusal otherwise."""
    if isinstance(value, str):
        try:
            number = numbers.read(value, configuration.notation())
        except numbers.NotANumber as exc:
            raise _refuse("NOT_A_NUMBER", numbers.sentence(f"The {what}", exc)) from None
    elif isinstance(value, Decimal | int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raise _refuse("NOT_A_NUMBER", f"The {what} must be a number, not {type(value).__name__}.")
    if not number.is_finite() or number <= 0:
        raise _refuse("NOT_POSITIVE", f"The {what} must be more than zero, not {value}.")
    # The size first: quantizing 1E+400 to six decimals is itself an error.
    if number >= Decimal("1e12") or number != number.quantize(Decimal("0.000001")):
        raise _refuse(
            "OUT_OF_RANGE",
            f"The {what} {value} has too many digits (at most 12 before the decimal mark and 6 after).",
        )
    return number


def in_unit(value: Decimal, unit: str, target: str) -> Decimal:
    """``value unit`` expressed in ``target``; a unit that does not convert is refused."""
    if unit == target:
        return value
    try:
        return convert(value, check_unit(unit), target).quantize(Decimal("0.000001"))
    except UnknownUnit as exc:
        raise _refuse("UNKNOWN_UNIT", f"{unit!r} is not a unit Batchline knows.") from exc
    except Exception as exc:  # pint: dimensionality errors and the like
        raise _refuse("WRONG_UNIT", f"{value} {unit} cannot be expressed in {target}.") from exc


def _highest_container_number() -> int:
    codes = Container.objects.filter(code__startswith="C-").values_list("code", flat=True)
    return max((int(c[2:]) for c in codes if c[2:].isdigit()), default=0)


def _next_container_code() -> str:
    """C-000001, C-000002…: one counter row, locked, so concurrent receipts never share a code."""
    counter = Counter.objects.select_for_update().filter(name="container").first()
    if counter is None:  # a database emptied by hand (or by a test's flush): start the sequence
        try:
            with transaction.atomic():
                Counter.objects.create(name="container", value=_highest_container_number())
        except IntegrityError:
            pass  # someone else started it at the same moment
        counter = Counter.objects.select_for_update().get(name="container")
    counter.value += 1
    counter.save(update_fields=["value"])
    return f"C-{counter.value:06d}"


# --- master data -------------------------------------------------------------------------------


def material_create(*, actor: Actor, reason: str = "", **fields: Any) -> Material:
    unit = fields.get("unit", "")
    try:
        check_unit(unit)
    except UnknownUnit as exc:
        raise _refuse("UNKNOWN_UNIT", str(exc)) from exc
    with transaction.atomic():
        if Material.objects.filter(code=fields.get("code")).exists():
            raise _refuse("DUPLICATE", f"Material {fields.get('code')} exists already.")
        material = record_create(Material(**fields), actor=actor, reason=reason)
        arrivals.announce(f"material:{material.code}")
        return material


# --- receiving ---------------------------------------------------------------------------------


@registered_station_only
def lot_receive(
    *,
    actor: Actor,
    material: Material,
    number: str,
    expires_at: dt.datetime,
    containers: Sequence[Decimal | str],
    supplier: str = "",
    supplier_lot: str = "",
    retest_at: dt.datetime | None = None,
    potency: Decimal | None = None,
    tare: Decimal | None = None,
    location: str = "",
) -> Lot:
    """A delivery: a lot in quarantine with its containers, each with its receipt in the ledger."""
    user_id = _person(actor)
    number = number.strip()
    if not number:
        raise _refuse("LOT_NUMBER_REQUIRED", "Give the lot (receiving) number.")
    if not containers:
        raise _refuse("NO_CONTAINERS", "A delivery has at least one container.")
    quantities = [quantity_of(q, what="container quantity") for q in containers]
    if potency is not None and not (potency.is_finite() and Decimal(0) < potency <= Decimal(200)):
        raise _refuse("POTENCY_RANGE", f"Potency {potency} % is not plausible (0 to 200 %).")
    if material.retired_at is not None:
        raise _refuse(
            "MATERIAL_RETIRED",
            f"{material.code} {material.name} is retired in the master data: it is received no more.",
        )
    if material.potency_required and potency is None:
        raise _refuse(
            "POTENCY_REQUIRED",
            f"Lots of {material.code} carry an assay (master data): give the lot's potency, % of label claim.",
        )
    now = timezone.now()
    if expires_at <= now:
        raise _refuse(
            "EXPIRED_ON_RECEIPT", f"Lot {number} expired before it arrived ({expires_at:%Y-%m-%d %H:%M})."
        )
    with transaction.atomic():
        if Lot.objects.filter(material=material, number=number).exists():
            raise _refuse("DUPLICATE", f"Lot {number} of {material.code} was received already.")
        lot = record_create(
            Lot(
                material=material,
                number=number,
                supplier=supplier,
                supplier_lot=supplier_lot,
                status=LotStatus.QUARANTINE,
                received_at=now,
                expires_at=expires_at,
                retest_at=retest_at,
                potency=potency,
            ),
            actor=actor,
            reason="received",
        )
        for quantity in quantities:
            container = record_create(
                Container(
                    code=_next_container_code(),
                    lot=lot,
                    quantity=Decimal(0),
                    unit=material.unit,
                    tare=tare,
                    location=location,
                    created_at=now,
                ),
                actor=actor,
            )
            _move(container, Movement.RECEIPT, quantity, actor=actor, user_id=user_id, at=now)
    return lot


# --- output lots (genealogy: batch → lot) ---------------------------------------------------


def product_material(*, actor: Actor, code: str, name: str, unit: str) -> Material:
    """The material a product is made as: the one with the product's code, registered on first use.

    One code for the product and its material, so a later recipe charges an
    intermediate by the code of the product that makes it, and no mapping
    table has to be kept in step with the recipes. A material registered
    beforehand (an intermediate with its unit and shelf life) is used as it is.
    """
    material = Material.objects.filter(code=code).first()
    if material is not None:
        return material
    try:
        check_unit(unit)
    except UnknownUnit as exc:
        raise _refuse("UNKNOWN_UNIT", str(exc)) from exc
    material = record_create(
        Material(code=code, name=name, kind="finished", unit=unit),
        actor=actor,
        reason=f"product {code} made for the first time",
    )
    arrivals.announce(f"material:{code}")
    return material


def output_lot_register(
    *, actor: Actor, batch_number: str, product_code: str, product_name: str, unit: str, at: dt.datetime
) -> Lot:
    """The lot a batch will produce: number = batch number, in quarantine, empty until produced.

    Joins the caller's transaction (batch creation). It has no expiry yet: the
    expiry is counted from the date of manufacture, which is not known before
    the batch starts (:func:`output_lot_manufacture_started`); until then the
    lot is not usable and says why, rather than carrying a date Batchline made up.
    """
    material = product_material(actor=actor, code=product_code, name=product_name, unit=unit)
    if Lot.objects.filter(material=material, number=batch_number).exists():
        raise _refuse(
            "OUTPUT_LOT_TAKEN",
            f"A lot {batch_number} of {material.code} exists already: choose another batch number.",
        )
    return record_create(
        Lot(
            material=material,
            number=batch_number,
            status=LotStatus.QUARANTINE,
            received_at=at,
            expires_at=None,
            produced_by_batch=batch_number,
        ),
        actor=actor,
        reason=f"output of batch {batch_number}",
    )


def output_lot_manufacture_started(*, actor: Actor, batch_number: str, at: dt.datetime) -> Lot | None:
    """The output lot's expiry, counted from the start of manufacture by the product's shelf life.

    Called in the transaction that starts the batch (its first step). The date of
    manufacture is taken as the batch's start: GMP counts the shelf life from the
    first step that combines the active ingredient with other ingredients (EMA
    CPMP/QWP/072/96; FDA likewise), which cannot come before the batch starts, so
    the expiry is never later than GMP allows, and it is known for every recipe
    (which step first combines is the recipe's business, not the engine's). A
    product whose master data has no shelf life gets none: the lot stays without
    an expiry, unusable, until QA sets one with a signed correction
    (:func:`lot_expiry_correct`); an expiry QA set already is kept.
    """
    lot = (
        Lot.objects.select_for_update()
        .select_related("material")
        .filter(produced_by_batch=batch_number)
        .first()
    )
    if lot is None or lot.expires_at is not None or not lot.material.shelf_life_days:
        return lot
    days = lot.material.shelf_life_days
    record_update(
        lot,
        actor=actor,
        values={"expires_at": at + dt.timedelta(days=days)},
        action="expiry",
        reason=f"date of manufacture: batch {batch_number} started; shelf life of {lot.material.code} "
        f"{days} days (master data)",
    )
    return lot


def lot_produce(
    *,
    actor: Actor,
    lot: Lot,
    quantities: Sequence[Decimal | str],
    unit: str,
    step_key: str = "",
    location: str = "",
    tare: Decimal | None = None,
) -> list[Container]:
    """Produced output into new containers of a batch's output lot, each with its PRODUCE entry.

    One transaction (or the caller's). The batch's own state is execution's
    business (``execution.services.batch_produce``), which calls this.
    """
    user_id = _person(actor)
    if not lot.produced_by_batch:
        raise _refuse("NOT_AN_OUTPUT_LOT", f"Lot {lot.number} was received, not produced by a batch.")
    if not quantities:
        raise _refuse("NO_CONTAINERS", "Give the quantity of at least one container.")
    given = [quantity_of(q, what="produced quantity") for q in quantities]
    base = [in_unit(q, unit, lot.material.unit) for q in given]
    if any(q <= 0 for q in base):
        raise _refuse("NOT_POSITIVE", f"A produced quantity rounds to nothing in {lot.material.unit}.")
    now = timezone.now()
    made = []
    with transaction.atomic():
        for quantity in base:
            container = record_create(
                Container(
                    code=_next_container_code(),
                    lot=lot,
                    quantity=Decimal(0),
                    unit=lot.material.unit,
                    tare=tare,
                    location=location,
                    created_at=now,
                ),
                actor=actor,
            )
            _move(
                container,
                Movement.PRODUCE,
                quantity,
                actor=actor,
                user_id=user_id,
                at=now,
                batch_number=lot.produced_by_batch,
                step_key=step_key,
            )
            made.append(container)
        events.publish(
            "lot.produced",
            batch=lot.produced_by_batch,
            step=step_key,
            material=lot.material.code,
            lot=lot.number,
            containers=[c.code for c in made],
            quantities=base,
            unit=lot.material.unit,
            at=now,
        )
    return made


# --- disposition (QA) ------------------------------------------------------------------------


def lot_disposition(
    *, actor: Actor, lot: Lot, status: str, signer: VerifiedSigner | None, reason: str
) -> Lot:
    """QA sets a lot's status, with a reason and an e-signature (MAT-02)."""
    if status not in LotStatus.values:
        raise _refuse("UNKNOWN_STATUS", f"{status!r} is not a lot status.")
    if not reason.strip():
        raise ReasonRequired("Give a reason for the lot's new status.")
    if signer is None or signer.user.pk != actor.id:
        raise _refuse("SIGNATURE_REQUIRED", "A lot's status changes with your e-signature.")
    if not signer.user.has_perm("materials.disposition_lot"):
        raise _refuse("NOT_AUTHORISED", "Only QA changes a lot's status.")
    with transaction.atomic():
        locked = Lot.objects.select_for_update().select_related("material").get(pk=lot.pk)
        if locked.produced_by_batch and status == LotStatus.RELEASED:
            # A batch's output is released by the batch's own review (RBE-07), never around it.
            raise _refuse(
                "RELEASED_BY_ITS_BATCH",
                f"Lot {locked.number} is the output of batch {locked.produced_by_batch}: it is released "
                "by QA's release of that batch, after its review.",
            )
        if locked.status == status:
            raise _refuse(
                "NO_CHANGE", f"Lot {locked.number} is {locked.get_status_display().lower()} already."
            )
        previous = locked.status
        _lot_signed(
            locked,
            {"status": status},
            "disposition",
            DISPOSITION_MEANING[LotStatus(status)],
            signer,
            actor,
            reason,
        )
        events.publish(
            "lot.status_changed",
            lot_id=locked.pk,
            lot=locked.number,
            status=status,
            previous=previous,
            reason=reason,
            at=timezone.now(),
        )
    return locked


def lot_block(*, actor: Actor, lot: Lot, reason: str) -> bool:
    """Block a lot on a finding that arrives through an interface: an out-of-specification result of
    one of its samples from the LIMS (S95-04, MAT-06), the interface user named in the trail.

    A restriction, so no signature: the gate refuses the lot from now on (``LOT_BLOCKED``), and only
    QA's signed disposition (:func:`lot_disposition`) lifts it. A rejected or already blocked lot is
    left as it is. Runs in the caller's transaction and locks the lot; True when the status changed.
    """
    if not reason.strip():
        raise ReasonRequired("Say why the lot is blocked.")
    with transaction.atomic():
        locked = Lot.objects.select_for_update().get(pk=lot.pk)
        if locked.status in (LotStatus.BLOCKED, LotStatus.REJECTED):
            return False
        record_update(
            locked, actor=actor, values={"status": LotStatus.BLOCKED}, action="block", reason=reason
        )
    lot.status = LotStatus.BLOCKED
    return True


def lot_retest_extend(
    *, actor: Actor, lot: Lot, retest_at: dt.datetime, signer: VerifiedSigner | None, reason: str
) -> Lot:
    """A new test result moves the retest date-time on; never past the expiry."""
    if not reason.strip():
        raise ReasonRequired("Name the test result that extends the retest date.")
    if signer is None or signer.user.pk != actor.id or not signer.user.has_perm("materials.disposition_lot"):
        raise _refuse("NOT_AUTHORISED", "Only QA extends a retest date, with an e-signature.")
    with transaction.atomic():
        locked = Lot.objects.select_for_update().select_related("material").get(pk=lot.pk)
        if retest_at <= timezone.now():
            raise _refuse("RETEST_IN_PAST", "The new retest date-time must be in the future.")
        if locked.expires_at is not None and retest_at > locked.expires_at:
            raise _refuse("RETEST_AFTER_EXPIRY", f"Lot {locked.number} expires before that retest date.")
        _lot_signed(locked, {"retest_at": retest_at}, "retest", Meaning.APPROVED, signer, actor, reason)
    return locked


def lot_expiry_correct(
    *, actor: Actor, lot: Lot, expires_at: dt.datetime, signer: VerifiedSigner | None, reason: str
) -> Lot:
    """QA corrects a lot's expiry instant (a mistyped certificate, a supplier's notice), signed.

    The old instant stays in the audit trail; the gate judges the new one from now on.
    """
    if not reason.strip():
        raise ReasonRequired("Give the reason for correcting the expiry (which document says so).")
    if signer is None or signer.user.pk != actor.id or not signer.user.has_perm("materials.disposition_lot"):
        raise _refuse("NOT_AUTHORISED", "Only QA corrects an expiry date, with an e-signature.")
    with transaction.atomic():
        locked = Lot.objects.select_for_update().select_related("material").get(pk=lot.pk)
        if locked.retest_at is not None and locked.retest_at > expires_at:
            record_update(
                locked, actor=actor, values={"retest_at": expires_at}, action="retest", reason=reason
            )
        _lot_signed(locked, {"expires_at": expires_at}, "expiry", Meaning.APPROVED, signer, actor, reason)
    return locked


def _lot_signed(
    lot: Lot,
    values: dict[str, Any],
    action: str,
    meaning: str,
    signer: VerifiedSigner,
    actor: Actor,
    reason: str,
) -> None:
    """QA's change to a locked lot and the e-signature bound to the lot as it now stands."""
    record_update(lot, actor=actor, values=values, action=action, reason=reason)
    signature_apply(
        signer=signer, meaning=meaning, record=lot, content=lot_content(lot), actor=actor, comment=reason
    )


def lot_content(lot: Lot) -> dict[str, Any]:
    """What a lot signature binds: the lot and its dates (the decision is the signature's meaning).

    A later change to an expiry or retest date shows every earlier signature as
    "changed after signing" (P11-14) until QA signs again.
    """
    return {
        "lot": lot.number,
        "material": lot.material.code,
        "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
        "retest_at": lot.retest_at.isoformat() if lot.retest_at else None,
    }


# --- the ledger ----------------------------------------------------------------------------------


def _move(
    container: Container,
    kind: str,
    delta: Decimal,
    *,
    actor: Actor,
    user_id: int,
    at: dt.datetime,
    batch_number: str = "",
    step_key: str = "",
    counterpart: Container | None = None,
    device: str = "",
    reason: str = "",
) -> LedgerEntry:
    """The one place a quantity changes. ``container`` must be locked by the caller (or new)."""
    balance = container.quantity + delta
    if balance < 0:
        raise _refuse(
            "NOT_ENOUGH_MATERIAL",
            f"Container {container.code} holds {container.quantity.normalize():f} {container.unit}; "
            f"{(-delta).normalize():f} {container.unit} cannot be taken from it.",
        )
    entry = record_create(
        LedgerEntry(
            container=container,
            kind=kind,
            quantity=delta,
            unit=container.unit,
            balance=balance,
            batch_number=batch_number,
            step_key=step_key,
            counterpart=counterpart,
            device=device,
            station=actor.station,
            user_id=user_id,
            at=at,
            reason=reason,
        ),
        actor=actor,
        reason=reason,
    )
    record_update(container, actor=actor, values={"quantity": balance}, action=kind, reason=reason)
    return entry


_containers, _lots, _materials = Reader(Container), Reader(Lot), Reader(Material)


@functools.cache
def _container_lock_sql(vendor: str) -> str:
    # The container is locked for its movement; its lot and material are shared: no status,
    # expiry or material changes while the scan decides and commits (a disposition waits), but
    # scans of other containers of the same lot go on. The ORM's FOR UPDATE locked the lot and
    # the material too, so every scan of a material queued behind the one before it.
    lock = " FOR UPDATE OF c FOR SHARE OF l, m" if vendor == "postgresql" else ""
    return (
        f"SELECT {_containers.columns('c')}, {_lots.columns('l')}, {_materials.columns('m')} "  # noqa: S608
        f"FROM {Container._meta.db_table} c JOIN {Lot._meta.db_table} l ON l.id = c.lot_id "
        f"JOIN {Material._meta.db_table} m ON m.id = l.material_id WHERE c.code = %s{lock}"
    )


def container_locked(code: str) -> Container:
    """The container with this label id, locked for a movement, with its lot and material; a clear refusal if unknown.

    One constant statement (the ORM took longer to build it than the database to run it).
    """
    with connection.cursor() as cursor:
        cursor.execute(_container_lock_sql(connection.vendor), [code])
        row = cursor.fetchone()
    if row is None:
        raise _refuse("UNKNOWN_CONTAINER", f"No container {code} is known here: check the label.")
    container = _containers.instance(row)
    lot = _lots.instance(row, len(_containers.fields))
    lot.material = _materials.instance(row, len(_containers.fields) + len(_lots.fields))
    container.lot = lot
    return container


def container_consume(
    *,
    actor: Actor,
    container: Container,
    quantity: Decimal,
    batch_number: str,
    step_key: str,
    at: dt.datetime,
) -> Consumption:
    """Consume from a locked container into a batch: the ledger entry and the genealogy edge together.

    Called by execution inside its step transaction, after the material gate passed.
    """
    user_id = _person(actor)
    entry = _move(
        container,
        Movement.CONSUME,
        -quantity,
        actor=actor,
        user_id=user_id,
        at=at,
        batch_number=batch_number,
        step_key=step_key,
    )
    consumption = record_create(
        Consumption(
            lot=container.lot,
            container=container,
            ledger=entry,
            batch_number=batch_number,
            step_key=step_key,
            quantity=quantity,
            unit=container.unit,
            at=at,
        ),
        actor=actor,
    )
    events.publish(
        "material.consumed",
        batch=batch_number,
        step=step_key,
        material=container.lot.material.code,
        lot=container.lot.number,
        container=container.code,
        quantity=quantity,
        unit=container.unit,
        at=at,
        consumption_id=consumption.pk,
    )
    return consumption


def _into_new_container(
    source: Container,
    kind: str,
    quantity: Decimal,
    *,
    actor: Actor,
    at: dt.datetime,
    batch_number: str,
    device: str,
    reason: str,
    step_key: str = "",
    why_new: str = "",
    **fields: Any,
) -> Container:
    """``quantity`` out of a locked ``source`` into a new container of its lot: two entries naming each other."""
    user_id = _person(actor)
    target = record_create(
        Container(
            code=_next_container_code(),
            lot=source.lot,
            quantity=Decimal(0),
            unit=source.unit,
            source=source,
            created_at=at,
            **fields,
        ),
        actor=actor,
        reason=why_new,
    )
    common: dict[str, Any] = {
        "actor": actor,
        "user_id": user_id,
        "at": at,
        "batch_number": batch_number,
        "step_key": step_key,
        "device": device,
        "reason": reason,
    }
    _move(source, kind, -quantity, counterpart=target, **common)
    _move(target, kind, quantity, counterpart=source, **common)
    return target


def container_dispense(
    *,
    actor: Actor,
    source: Container,
    net: Decimal,
    tare: Decimal | None,
    batch_number: str,
    step_key: str,
    device: str,
    at: dt.datetime,
    reason: str = "",
) -> Container:
    """Weigh ``net`` out of a locked source container into a new container for one batch.

    Two ledger entries, each naming the other container and the device that
    weighed; the new container carries the lot, the batch it is for and its tare.
    """
    return _into_new_container(
        source,
        Movement.DISPENSE,
        net,
        actor=actor,
        at=at,
        batch_number=batch_number,
        step_key=step_key,
        device=device,
        reason=reason,
        tare=tare,
        location=source.location,
        dispensed_for=batch_number,
    )


def container_return(
    *,
    actor: Actor,
    source: Container,
    quantity: Decimal,
    location: str,
    batch_number: str,
    device: str,
    at: dt.datetime,
    reason: str = "",
) -> Container:
    """``quantity`` of a locked container dispensed for a batch back to stock (WD-12).

    The remainder is not poured back into the drum it came from: it goes to the
    warehouse in a new container of the same lot, at ``location``, which
    remembers the batch it came back from (its label says so) and the dispensed
    container it came out of. Two RETURN ledger entries, each naming the other
    container and the scale that weighed it (none when the whole remainder the
    ledger holds was returned). The caller (``execution.returns``, which judges
    the batch's rules) holds the batch's and the container's locks.
    """
    return _into_new_container(
        source,
        Movement.RETURN,
        quantity,
        actor=actor,
        at=at,
        batch_number=batch_number,
        device=device,
        reason=reason,
        why_new=f"returned to stock from batch {batch_number}",
        location=location,
        returned_from=batch_number,
    )


def container_waste(
    *,
    actor: Actor,
    container: Container,
    quantity: Decimal,
    batch_number: str,
    device: str,
    at: dt.datetime,
    reason: str,
    signer: VerifiedSigner | None,
) -> LedgerEntry:
    """Destroy ``quantity`` of a locked container dispensed for a batch: one ledger entry of its own kind.

    Signed by the person who destroys it (meaning "performed"), with the reason
    as the signature's comment. A return leaves the material in stock, weighed
    and labelled, where anyone can check it; waste leaves nothing but its
    record, and the quantity written off counts in the batch's reconciliation
    against what was consumed (211.192: unexplained discrepancies). So, as for
    a correction, the person binds themselves to the quantity and the reason
    with their signature (21 CFR 11.50, 11.70), and the batch record shows who.
    """
    if signer is None or signer.user.pk != actor.id:
        raise _refuse("SIGNATURE_REQUIRED", "Material goes to waste with your e-signature: your password.")
    if not reason.strip():
        raise ReasonRequired("Say why the material goes to waste.")
    entry = _move(
        container,
        Movement.DESTROY,
        -quantity,
        actor=actor,
        user_id=_person(actor),
        at=at,
        batch_number=batch_number,
        device=device,
        reason=reason,
    )
    row = {
        "id": entry.pk,
        "kind": entry.kind,
        "container": container.code,
        "lot": container.lot.number,
        "quantity": entry.quantity,
        "unit": entry.unit,
        "reason": entry.reason,
        "at": entry.at,
    }
    signature_apply(
        signer=signer,
        meaning=Meaning.PERFORMED,
        record=entry,
        content=waste_content(batch_number, row),
        actor=actor,
        comment=reason,
    )
    return entry


def container_adjust(*, actor: Actor, container: Container, delta: Decimal, reason: str) -> LedgerEntry:
    """A stock correction (count difference, spill): signed delta, reason required."""
    if not reason.strip():
        raise ReasonRequired("Give the reason for the adjustment.")
    if delta == 0:
        raise _refuse("NOT_POSITIVE", "An adjustment moves some quantity, not zero.")
    with transaction.atomic():
        locked = container_locked(container.code)
        return _move(
            locked,
            Movement.ADJUST,
            delta,
            actor=actor,
            user_id=_person(actor),
            at=timezone.now(),
            reason=reason,
        )


def ledger_balance(container: Container) -> Decimal:
    """The balance the ledger says: its newest entry's balance, one indexed read at any history length.

    One descent of the ``(container, -id)`` index. The newest entry is asked for
    in a subquery correlated to the container's row, so PostgreSQL plans it alike
    for every container: asked with the id as a constant, it judged a container
    with a long history by the column's statistics and walked the primary key
    backwards from the newest entry of all instead, 80 ms at 1,000,000 entries
    for a container last moved long ago (docs/performance.md).
    """
    newest = LedgerEntry.objects.filter(container=OuterRef("pk")).order_by("-id").values("balance")[:1]
    balance = (
        Container.objects.filter(pk=container.pk)
        .annotate(newest=Subquery(newest))
        .values_list("newest", flat=True)
        .get()
    )
    return balance if balance is not None else Decimal(0)


# --- labels --------------------------------------------------------------------------------------


@registered_station_only
def label_print_record(
    *, actor: Actor, container: Container, label: ContainerLabel, fmt: str, content: bytes, reason: str = ""
) -> LabelPrint:
    """Log a print of ``label`` (rendered as ``content``); the first is a print, every later one a
    reprint that needs a reason. The record names the approved template it was printed to."""
    if label.container_id != container.code:
        raise ValueError(f"The label of {label.container_id} is not {container.code}'s.")
    with transaction.atomic():
        locked = Container.objects.select_for_update().get(pk=container.pk)
        reprint = LabelPrint.objects.filter(container=locked).exists()
        if reprint and not reason.strip():
            raise ReasonRequired(
                f"The label of {locked.code} was printed before: give the reason to reprint it."
            )
        return record_create(
            LabelPrint(
                container=locked,
                reprint=reprint,
                reason=reason,
                format=fmt,
                content_sha256=hashlib.sha256(content).hexdigest(),
                template=template_reference(label.template),
                user_id=_person(actor),
                at=timezone.now(),
            ),
            actor=actor,
            reason=reason,
        )


def usable_containers(material: Material, *, batch_number: str) -> models.QuerySet[Container]:
    """FEFO: released, unexpired lots with stock, the first to expire first (the picking proposal)."""
    now = timezone.now()
    return (
        Container.objects.select_related("lot__material")
        .filter(
            lot__material=material,
            lot__status=LotStatus.RELEASED,
            lot__expires_at__gt=now,
            quantity__gt=0,
        )
        .exclude(lot__retest_at__lte=now)
        .filter(models.Q(reserved_for__isnull=True) | models.Q(reserved_for=batch_number))
        .filter(models.Q(dispensed_for__isnull=True) | models.Q(dispensed_for=batch_number))
        .order_by("lot__expires_at", "code")
    )

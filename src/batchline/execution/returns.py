"""What is left of material dispensed for a batch: back to stock or to waste (WD-12, YLD-03, MAT-05, GEN-01).

A container weighed out for a batch and not charged to the end still holds a
remainder; until it leaves, the batch's reconciliation and genealogy are not
balanced. It leaves by a movement of its own, never as consumption:

- **return to stock**: into a new labelled container of the same lot, at the
  warehouse location given (``materials.services.container_return``); the
  quantity is weighed on a suitable scale, or else is the whole remainder the
  ledger holds; less than all of it needs a reason;
- **waste**: destroyed, with a reason and the e-signature of the person who
  destroys it (``materials.services.container_waste`` says why it is signed).

Who: a person whose roles allow ``materials.return_material`` (operators and
the warehouse). When: ``rules.returns`` decides, from the batch's state (its
production review not yet signed). Every action locks the batch first (so a
review stage cannot be signed meanwhile: it takes the same lock), then the
container; a scale is read before any lock. A refusal writes nothing: it
answers the person at once, and nothing happened to the product.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from batchline.audit.services import Actor
from batchline.configuration import selectors as configuration
from batchline.equipment import stations
from batchline.equipment.selectors import scale_suitable
from batchline.equipment.stations import registered_station_only
from batchline.materials import services as stock
from batchline.materials.models import Container, LedgerEntry
from batchline.rules import returns as rules
from batchline.rules.numbers import NotANumber, read
from batchline.rules.verdict import Refused, Verdict
from batchline.signatures.services import VerifiedSigner

from . import dispensing, rows
from .models import Batch

PERMISSION = "materials.return_material"


class RemainderRefused(Refused):
    """A return or a waste was refused; ``verdict.reasons`` say why. Nothing was written."""


_refuse = RemainderRefused.because


def remainders(batch_number: str) -> QuerySet[Container]:
    """The batch's dispensed containers that still hold material, with their lot and material."""
    return (
        Container.objects.filter(dispensed_for=batch_number, quantity__gt=0)
        .select_related("lot__material")
        .order_by("code")
    )


def returned(batch_number: str) -> QuerySet[Container]:
    """The containers of stock that hold what came back from the batch, with their label prints."""
    return (
        Container.objects.filter(returned_from=batch_number)
        .select_related("lot__material", "source")
        .prefetch_related("prints")
        .order_by("code")
    )


def _who(actor: Actor, user: Any) -> None:
    if actor.id is None or user is None or user.pk != actor.id:
        raise _refuse("PERSON_REQUIRED", "Material is moved by a person, who is named in the ledger.")
    if not user.has_perm(PERMISSION):
        raise _refuse(
            "NOT_AUTHORISED",
            "Your roles do not allow you to return or waste material: an operator or the warehouse does.",
        )


def _weigh(scale: str, actor: Actor) -> tuple[Decimal, str, str]:
    """A stable net weight from ``scale`` with its unit and device, read before any lock; or a refusal."""
    elsewhere = stations.instrument_reason(actor, scale)
    if elsewhere is not None:
        raise RemainderRefused(Verdict.of(elsewhere))
    read, problem = dispensing.read_scale(scale)
    if read is None:
        assert problem is not None
        raise RemainderRefused(Verdict.of(problem))
    suitable = scale_suitable(code=scale, target=read.net, unit=read.unit, now=timezone.now())
    if not suitable.allowed:
        raise RemainderRefused(suitable)
    return read.net, read.unit, read.device


def _quantity(text: str) -> Decimal:
    try:
        return read(text, configuration.notation())
    except NotANumber as exc:
        raise _refuse("NOT_A_NUMBER", f"Quantity: {exc}.") from exc


def _locked(batch: Batch, code: str) -> tuple[Batch, Container]:
    locked = rows.lock_batch(batch.pk)
    if locked is None:
        raise Batch.DoesNotExist(f"no batch #{batch.pk}")
    try:
        container = stock.container_locked(code.strip().upper()[:40])
    except stock.MaterialRefused as exc:
        raise RemainderRefused(exc.verdict) from exc
    return locked, container


def _in_container_unit(value: Decimal, unit: str, container: Container) -> Decimal:
    try:
        return stock.in_unit(value, unit, container.unit)
    except stock.MaterialRefused as exc:
        raise RemainderRefused(exc.verdict) from exc


def _judge(
    action: str,
    batch: Batch,
    container: Container,
    quantity: Decimal | None,
    *,
    reason: str,
    location: str = "",
) -> Decimal:
    """The quantity to move (all of it when none was weighed or given), or the refusal with every reason."""
    remainder = rules.Remainder(container.code, container.dispensed_for, container.quantity, container.unit)
    verdict = rules.may_move(
        action,
        batch_number=batch.number,
        batch_state=batch.state,
        remainder=remainder,
        quantity=quantity,
        reason=reason,
        location=location,
    )
    if not verdict.allowed:
        raise RemainderRefused(verdict)
    return container.quantity if quantity is None else quantity


@registered_station_only
def remainder_return(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    container: str,
    location: str,
    scale: str = "",
    reason: str = "",
) -> Container:
    """Return what is left in ``container`` (dispensed for ``batch``) to stock; the new container.

    Weighed on ``scale`` when one is named (a stable reading from a suitable
    scale), else the whole remainder the ledger holds. Locks the batch, then
    the container; writes the new container and two ledger entries, audited.
    """
    _who(actor, user)
    reason, location = reason.strip()[:500], location.strip()[:60]
    weighed = _weigh(scale.strip(), actor) if scale.strip() else None
    with transaction.atomic():
        locked, source = _locked(batch, container)
        quantity = _in_container_unit(weighed[0], weighed[1], source) if weighed else None
        take = _judge(rules.RETURN, locked, source, quantity, reason=reason, location=location)
        return stock.container_return(
            actor=actor,
            source=source,
            quantity=take,
            location=location,
            batch_number=locked.number,
            device=weighed[2] if weighed else "",
            at=timezone.now(),
            reason=reason,
        )


@registered_station_only
def remainder_waste(
    *,
    actor: Actor,
    user: Any,
    batch: Batch,
    container: str,
    reason: str,
    signer: VerifiedSigner | None,
    quantity: str = "",
    unit: str = "",
    scale: str = "",
) -> LedgerEntry:
    """Destroy what is left in ``container`` (or ``quantity`` of it, typed or weighed), signed.

    Locks the batch, then the container; writes one ledger entry and the signature.
    """
    _who(actor, user)
    reason = reason.strip()[:500]
    weighed = _weigh(scale.strip(), actor) if scale.strip() else None
    typed = _quantity(quantity) if quantity.strip() and weighed is None else None
    with transaction.atomic():
        locked, source = _locked(batch, container)
        if weighed:
            given: Decimal | None = _in_container_unit(weighed[0], weighed[1], source)
        elif typed is not None:
            given = _in_container_unit(typed, unit.strip() or source.unit, source)
        else:
            given = None
        take = _judge(rules.WASTE, locked, source, given, reason=reason)
        if take != take.quantize(Decimal("0.000001")):
            raise _refuse("OUT_OF_RANGE", f"The quantity {take} has more than 6 decimals in {source.unit}.")
        return stock.container_waste(
            actor=actor,
            container=source,
            quantity=take,
            batch_number=locked.number,
            device=weighed[2] if weighed else "manual" if typed is not None else "",
            at=timezone.now(),
            reason=reason,
            signer=signer,
        )

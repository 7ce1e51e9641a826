"""Reads of lots, containers and the inventory ledger that pages, the API and other apps share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, QuerySet, Sum

from .models import Container, LedgerEntry, Lot


def output_lot(batch_number: str) -> Lot | None:
    """The lot a batch produces (its number is the batch number), or None for a batch made before
    output lots were registered."""
    return (
        Lot.objects.select_related("material").filter(produced_by_batch=batch_number).order_by("id").first()
    )


def lots_with_stock() -> QuerySet[Lot]:
    """Lots with their material, how many containers each has (``container_count``) and what they
    hold together (``on_hand``, None for a lot without containers)."""
    return Lot.objects.select_related("material").annotate(
        container_count=Count("containers"), on_hand=Sum("containers__quantity")
    )


def container_by_code(code: str) -> Container | None:
    """The container with this label id, with its lot, material and the container it came out of."""
    return Container.objects.select_related("lot__material", "source").filter(code=code).first()


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Which movements to read; every field narrows, empty ones do not. ``since`` ≤ at < ``until``."""

    material: str = ""
    lot: str = ""
    container: str = ""
    kind: str = ""
    batch: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def ledger_entries(f: LedgerFilter) -> QuerySet[LedgerEntry]:
    """Movements in the order they were written, each with its container, lot, material, the other
    container of a transfer and the person: one query for a page of them, however they are filtered."""
    found = LedgerEntry.objects.select_related("container__lot__material", "counterpart", "user").order_by(
        "id"
    )
    if f.material:
        found = found.filter(container__lot__material__code=f.material)
    if f.lot:
        found = found.filter(container__lot__number=f.lot)
    if f.container:
        found = found.filter(container__code=f.container)
    if f.kind:
        found = found.filter(kind=f.kind)
    if f.batch:
        found = found.filter(batch_number=f.batch)
    if f.since is not None:
        found = found.filter(at__gte=f.since)
    if f.until is not None:
        found = found.filter(at__lt=f.until)
    return found

"""Reads of lots that pages, the API and other apps share."""

from __future__ import annotations

from .models import Lot


def output_lot(batch_number: str) -> Lot | None:
    """The lot a batch produces (its number is the batch number), or None for a batch made before
    output lots were registered."""
    return (
        Lot.objects.select_related("material").filter(produced_by_batch=batch_number).order_by("id").first()
    )

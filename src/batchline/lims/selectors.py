"""Reads of sample requests and laboratory results, for the API and the batch record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from .models import LabResult, SampleRequest


def results(*, batch: str = "", sample: str = "", lot: str = "") -> QuerySet[LabResult]:
    """Results, oldest first, filtered by batch number, sample code or sampled lot number."""
    found = LabResult.objects.select_related("sample__step__batch", "received_by", "exception")
    if batch:
        found = found.filter(sample__step__batch__number=batch)
    if sample:
        found = found.filter(sample__code=sample)
    if lot:
        found = found.filter(sample__lot=lot)
    return found.order_by("received_at", "id")


def of_samples(sample_ids: Iterable[int]) -> tuple[dict[int, SampleRequest], dict[int, list[LabResult]]]:
    """Each sample's request and its results (two queries, whatever the number of samples)."""
    ids = list(sample_ids)
    if not ids:
        return {}, {}
    requests = {r.sample_id: r for r in SampleRequest.objects.filter(sample_id__in=ids)}
    found: dict[int, list[LabResult]] = defaultdict(list)
    for r in (
        LabResult.objects.filter(sample_id__in=ids)
        .select_related("received_by", "exception")
        .order_by("received_at", "id")
    ):
        found[r.sample_id].append(r)
    return requests, dict(found)


def message_states(keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The outbox message of each request key: its state and when it was delivered."""
    from batchline.outbox.models import Message

    wanted = [k for k in keys if k]
    if not wanted:
        return {}
    return {
        m["key"]: dict(m)
        for m in Message.objects.filter(key__in=wanted).values("key", "state", "attempts", "delivered_at")
    }

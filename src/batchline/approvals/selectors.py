"""Reads of change requests shared by the pages and the API."""

from __future__ import annotations

from django.db.models import QuerySet

from batchline.signatures.models import Signature

from .models import ChangeRequest, RequestState


def requests_open() -> QuerySet[ChangeRequest]:
    """What waits for a QA approver, oldest first."""
    return (
        ChangeRequest.objects.filter(state=RequestState.REQUESTED)
        .select_related("requested_by")
        .order_by("requested_at", "id")
    )


def requests_about(subject_type: str, subject_id: object) -> QuerySet[ChangeRequest]:
    return ChangeRequest.objects.filter(subject_type=subject_type, subject_id=str(subject_id)).select_related(
        "requested_by", "decided_by"
    )


def request_signatures(request: ChangeRequest) -> list[Signature]:
    return list(Signature.objects.filter(record_type="approvals.changerequest", record_id=str(request.pk)))

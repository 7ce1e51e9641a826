"""Master-data import over the API: a preview per line, then one signed request a QA approver decides.

The same service as the command (masterdata/imports.py). The file travels as
text in JSON (CSV, or B2MML V0700 XML). A preview never writes; an import
refused for any line is 422 with every refused line and writes nothing; a
signature refused is 403.
"""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest
from batchline.audit.services import ReasonRequired
from batchline.masterdata.imports import (
    IMPORT_KIND,
    MAX_BYTES,
    Imported,
    ImportRefused,
    import_preview,
    import_request,
)
from batchline.masterdata.services import PERMISSION
from batchline.signatures.models import Meaning
from batchline.web.access import require

from .production import _actor, _signer
from .schemas import Problem, SignatureIn

router = Router(tags=["master data"])


class FileIn(Schema):
    file_name: str = Field(min_length=1, max_length=255, description="recorded with the import")
    format: Literal["csv", "b2mml"]
    kind: str | None = Field(
        default=None, max_length=40, description="for CSV: the kind of master data the file holds"
    )
    text: str = Field(
        min_length=1,
        max_length=MAX_BYTES + 1,  # one more: the service refuses it in words
        description=f"the file's text (UTF-8); at most {MAX_BYTES // 1048576} MB",
    )


class ImportIn(FileIn):
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn | None = Field(
        default=None,
        description="The requester's signature (meaning: requested); needed when the file creates items "
        "or changes GMP fields.",
    )


class RowOut(Schema):
    line: int = Field(description="the row's line in the file, the header (or the XML declaration) being 1")
    kind: str
    code: str
    operation: str = Field(description="create, change, unchanged or refused")
    needs_approval: bool
    words: list[str]
    notes: list[str]
    sentence: str


class PreviewOut(Schema):
    file_name: str
    sha256: str
    format: str
    counts: dict[str, int]
    can_import: bool
    refused_lines: list[int]
    rows: list[RowOut]


class RequestOut(Schema):
    id: int
    number: str
    state: str
    summary: str
    reason: str


class ImportOut(Schema):
    request: RequestOut | None = Field(description="the new items and GMP changes, waiting for a QA approver")
    applied: list[RowOut] = Field(description="descriptive changes, in force at once")
    preview: PreviewOut


class ImportProblem(Schema):
    detail: str
    code: str
    preview: PreviewOut | None = None


class DecisionIn(Schema):
    signature: SignatureIn


def _request_out(change: ChangeRequest) -> dict[str, Any]:
    change.refresh_from_db()
    return {
        "id": change.pk,
        "number": change.number,
        "state": change.state,
        "summary": change.summary,
        "reason": change.reason,
    }


def _refused(exc: ImportRefused) -> Status[dict[str, Any]]:
    preview = exc.preview.as_dict() if exc.preview else None
    return Status(422, {"detail": str(exc), "code": "IMPORT_REFUSED", "preview": preview})


@router.post("/preview", response={200: PreviewOut, 403: Problem, 422: ImportProblem})
def imports_preview(request: HttpRequest, payload: FileIn) -> Any:
    """What importing the file would do, line by line; writes nothing."""
    require(request.user, PERMISSION)
    try:
        preview = import_preview(
            data=payload.text, file_name=payload.file_name, format=payload.format, kind=payload.kind
        )
    except ImportRefused as exc:
        return _refused(exc)
    return preview.as_dict()


@router.post("", response={201: ImportOut, 403: Problem, 422: ImportProblem})
def imports_create(request: HttpRequest, payload: ImportIn) -> Any:
    """Import: descriptive changes at once; new items and GMP changes as one request, signed by the caller."""
    require(request.user, PERMISSION)
    signer = _signer(request, payload.signature, Meaning.REQUESTED) if payload.signature else None
    try:
        done: Imported = import_request(
            actor=_actor(request),
            signer=signer,
            data=payload.text,
            file_name=payload.file_name,
            format=payload.format,
            kind=payload.kind,
            reason=payload.reason,
            comment=payload.signature.comment if payload.signature else "",
        )
    except ImportRefused as exc:
        return _refused(exc)
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return Status(422, {"detail": str(exc), "code": "REFUSED", "preview": None})
    return Status(
        201,
        {
            "request": _request_out(done.request) if done.request else None,
            "applied": [r.as_dict() for r in done.applied],
            "preview": done.preview.as_dict(),
        },
    )


def _decide(request: HttpRequest, request_id: int, payload: DecisionIn, meaning: str) -> Any:
    require(request.user, approvals.APPROVE_PERMISSION)
    change = get_object_or_404(ChangeRequest, pk=request_id, kind=IMPORT_KIND)
    signer = _signer(request, payload.signature, meaning)
    comment = payload.signature.comment
    try:
        if meaning == Meaning.APPROVED:
            approvals.change_approve(actor=_actor(request), signer=signer, request=change, comment=comment)
        else:
            approvals.change_reject(actor=_actor(request), signer=signer, request=change, comment=comment)
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return Status(422, {"detail": str(exc), "code": "REFUSED"})
    return Status(200, _request_out(change))


@router.post("/{int:request_id}/approve", response={200: RequestOut, 403: Problem, 422: Problem})
def imports_approve(request: HttpRequest, request_id: int, payload: DecisionIn) -> Any:
    """A QA approver approves and signs: every row is applied in one transaction, or none is."""
    return _decide(request, request_id, payload, Meaning.APPROVED)


@router.post("/{int:request_id}/reject", response={200: RequestOut, 403: Problem, 422: Problem})
def imports_reject(request: HttpRequest, request_id: int, payload: DecisionIn) -> Any:
    """A QA approver rejects and signs; the signature's comment says why. Nothing is applied."""
    return _decide(request, request_id, payload, Meaning.REJECTED)

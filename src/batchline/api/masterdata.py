"""Master data over the API: the same services, permissions and audit as the pages.

Reading needs the kind's view permission; a new item, a GMP change and a
retirement are requests signed by the caller (meaning "requested") that a QA
approver approves with their own signature (``/master-data/changes/{id}/approve``).
A refusal is 422 in words; a signature refused is 403.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest
from batchline.audit.services import ReasonRequired
from batchline.masterdata import selectors
from batchline.masterdata.definitions import Invalid, MasterKind, kind_of
from batchline.masterdata.services import CHANGE_KIND, PERMISSION, master_change, master_create, master_retire
from batchline.signatures.models import Meaning
from batchline.web.access import require

from .production import _actor, _signer
from .schemas import Problem, SignatureIn

router = Router(tags=["master data"])


class FieldOut(Schema):
    name: str
    label: str
    type: str
    gmp: bool = Field(description="a change takes a QA approver's signed approval")
    required: bool
    fixed: bool = Field(description="set once, at creation")
    unit: str
    help: str
    choices: list[str]
    ref: str


class KindOut(Schema):
    name: str
    label: str
    help: str
    fields: list[FieldOut]


class ItemOut(Schema):
    code: str
    values: dict[str, Any]
    shown: dict[str, str]
    retired_at: dt.datetime | None
    change_waiting: bool


class RequestOut(Schema):
    id: int
    number: str
    kind: str
    code: str
    operation: str
    state: str
    summary: str
    reason: str
    values: dict[str, Any]
    before: Any
    effective_at: str | None
    requested_by_username: str
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    decision_comment: str
    applied_at: dt.datetime | None
    refused_on_effect: str
    signatures: list[str]
    affects: list[str] = Field(
        description="what the change reaches: lots, units, stations, recipes naming it"
    )


class HistoryOut(Schema):
    at: dt.datetime
    who: str
    action: str
    changes: str
    reason: str


class ItemDetailOut(ItemOut):
    uses: list[str]
    requests: list[RequestOut]
    history: list[HistoryOut]


class CreateIn(Schema):
    values: dict[str, Any] = Field(description="the new item's fields by name (GET /master-data/kinds)")
    reason: str = Field(min_length=1, max_length=2000)
    effective_at: dt.datetime | None = Field(
        default=None, description="with its time zone; empty: on approval"
    )
    signature: SignatureIn


class ChangeIn(Schema):
    values: dict[str, Any] = Field(description="the fields to change, by name, with their new values")
    reason: str = Field(min_length=1, max_length=2000)
    effective_at: dt.datetime | None = None
    signature: SignatureIn | None = Field(default=None, description="needed when a GMP field changes")


class ChangeOut(Schema):
    applied: list[str] = Field(description="descriptive changes in effect now, in words")
    request: RequestOut | None = Field(description="the request for the GMP changes, if any")


class RetireIn(Schema):
    reason: str = Field(min_length=1, max_length=2000)
    effective_at: dt.datetime | None = None
    signature: SignatureIn


class DecisionIn(Schema):
    signature: SignatureIn


def _kind(request: HttpRequest, name: str) -> MasterKind:
    try:
        kind = kind_of(name)
    except Invalid as exc:
        raise Http404(str(exc)) from None
    if not selectors.may_view(request.user, kind):
        raise PermissionDenied(f"Your roles do not allow you to read {kind.plural.lower()}.")
    return kind


def _refused(exc: Exception) -> Status[dict[str, Any]]:
    return Status(422, {"detail": str(exc), "code": "REFUSED"})


def _request_out(change: ChangeRequest) -> dict[str, Any]:
    change.refresh_from_db()
    return selectors.request_view(change)


@router.get("/kinds", response=list[KindOut])
def kinds(request: HttpRequest) -> list[dict[str, Any]]:
    """The kinds of master data the caller may read, with every field and whether changing it needs approval."""
    return [
        {
            "name": k.name,
            "label": k.label,
            "help": k.help,
            "fields": [{**f.__dict__, "choices": [c for c, _ in f.choices]} for f in k.fields],
        }
        for k in selectors.kinds_visible(request.user)
    ]


@router.get("/changes", response=list[RequestOut])
def changes_open(request: HttpRequest) -> list[dict[str, Any]]:
    """Master-data requests waiting for a QA approver, oldest first."""
    if not (request.user.has_perm("approvals.approve_change") or request.user.has_perm(PERMISSION)):
        raise PermissionDenied(
            "Your roles do not allow this: master-data requests are for their requesters and QA."
        )
    return selectors.requests_open()


def _decide(
    request: HttpRequest, request_id: int, payload: DecisionIn, meaning: str
) -> Status[dict[str, Any]]:
    require(request.user, "approvals.approve_change")
    change = get_object_or_404(ChangeRequest, pk=request_id, kind=CHANGE_KIND)
    signer = _signer(request, payload.signature, meaning)
    decide = approvals.change_approve if meaning == Meaning.APPROVED else approvals.change_reject
    try:
        decide(actor=_actor(request), signer=signer, request=change, comment=payload.signature.comment)
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return _refused(exc)
    return Status(200, _request_out(change))


@router.post("/changes/{request_id}/approve", response={200: RequestOut, 403: Problem, 422: Problem})
def change_approve(request: HttpRequest, request_id: int, payload: DecisionIn) -> Status[dict[str, Any]]:
    """A QA approver approves and signs: the change takes effect now or on its effective date."""
    return _decide(request, request_id, payload, Meaning.APPROVED)


@router.post("/changes/{request_id}/reject", response={200: RequestOut, 403: Problem, 422: Problem})
def change_reject(request: HttpRequest, request_id: int, payload: DecisionIn) -> Status[dict[str, Any]]:
    """A QA approver rejects and signs; the signature's comment says why. Nothing changes."""
    return _decide(request, request_id, payload, Meaning.REJECTED)


@router.get("/{kind}", response=list[ItemOut])
def items(request: HttpRequest, kind: str, retired: bool = False) -> list[dict[str, Any]]:
    """Every item of a kind in force (``retired=true``: retired ones too)."""
    return selectors.items(_kind(request, kind), retired=retired)


@router.post("/{kind}", response={201: RequestOut, 403: Problem, 422: Problem})
def create(request: HttpRequest, kind: str, payload: CreateIn) -> Status[dict[str, Any]]:
    """Request a new item, signed by the caller; it exists once a QA approver approves it."""
    k = _kind(request, kind)
    require(request.user, PERMISSION)
    signer = _signer(request, payload.signature, Meaning.REQUESTED)
    try:
        change = master_create(
            actor=_actor(request),
            signer=signer,
            kind=k.name,
            values=payload.values,
            reason=payload.reason,
            effective_at=payload.effective_at,
            comment=payload.signature.comment,
        )
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return _refused(exc)
    return Status(201, _request_out(change))


@router.get("/{kind}/{code}", response=ItemDetailOut)
def item(request: HttpRequest, kind: str, code: str) -> dict[str, Any]:
    """One item: its fields, where it is used, its requests and its audit history."""
    k = _kind(request, kind)
    view = selectors.item_view(k, code)
    if view is None:
        raise Http404(f"There is no {k.label.lower()} {code!r}.")
    row = next(r for r in selectors.items(k, retired=True) if r["code"] == code)
    return {**row, "uses": view["uses"], "requests": view["requests"], "history": view["history"]}


@router.post("/{kind}/{code}/change", response={200: ChangeOut, 403: Problem, 422: Problem})
def change(request: HttpRequest, kind: str, code: str, payload: ChangeIn) -> Status[dict[str, Any]]:
    """Change fields: descriptive ones at once; GMP ones by a request the caller signs."""
    k = _kind(request, kind)
    require(request.user, PERMISSION)
    signer = _signer(request, payload.signature, Meaning.REQUESTED) if payload.signature else None
    try:
        outcome = master_change(
            actor=_actor(request),
            signer=signer,
            kind=k.name,
            code=code,
            values=payload.values,
            reason=payload.reason,
            effective_at=payload.effective_at,
            comment=payload.signature.comment if payload.signature else "",
        )
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return _refused(exc)
    return Status(
        200,
        {"applied": outcome.applied, "request": _request_out(outcome.request) if outcome.request else None},
    )


@router.post("/{kind}/{code}/retire", response={201: RequestOut, 403: Problem, 422: Problem})
def retire(request: HttpRequest, kind: str, code: str, payload: RetireIn) -> Status[dict[str, Any]]:
    """Request that an item is used no more; every record that used it keeps it."""
    k = _kind(request, kind)
    require(request.user, PERMISSION)
    signer = _signer(request, payload.signature, Meaning.REQUESTED)
    try:
        change = master_retire(
            actor=_actor(request),
            signer=signer,
            kind=k.name,
            code=code,
            reason=payload.reason,
            effective_at=payload.effective_at,
            comment=payload.signature.comment,
        )
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return _refused(exc)
    return Status(201, _request_out(change))

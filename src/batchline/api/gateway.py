"""The equipment gateway's configuration over the API: the same services, permissions and audit as the page.

Reading needs ``gateway.view_endpoint`` (engineers, auditors; a QA approver reads the open requests).
Registering and renaming an endpoint is one administrator's audited change; a tag's creation, change
or retirement and an endpoint's new address, options or retirement are requests signed by the caller
(meaning "requested") that a QA approver approves or rejects with their own signature
(``/gateway/requests/{id}/approve``). A refusal is 422 in words with its code; a signature refused is 403.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest
from batchline.approvals.selectors import request_signatures
from batchline.audit.services import ReasonRequired
from batchline.gateway import selectors, services
from batchline.gateway.models import CONFIGURE_PERMISSION, REQUEST_KINDS, Endpoint, Tag
from batchline.signatures.models import Meaning
from batchline.web.access import require

from .production import _actor, _signer
from .schemas import Problem, SignatureIn

router = Router(tags=["equipment gateway"])
VIEW = "gateway.view_endpoint"
APPROVE = "approvals.approve_change"
Option = str | int | float | bool


class EndpointOut(Schema):
    code: str
    name: str
    protocol: str
    address: str
    options: dict[str, str]
    tags_in_force: int
    retired_at: dt.datetime | None


class TagOut(Schema):
    id: int
    endpoint: str
    tag: str
    equipment: str
    name: str
    unit_of_measure: str
    sampling_ms: int
    deadband: Decimal
    options: dict[str, str]
    retired_at: dt.datetime | None


class RequestOut(Schema):
    id: int
    number: str
    kind: str
    operation: str
    state: str
    summary: str
    reason: str
    payload: dict[str, Any] = Field(description="exactly what the approval writes")
    before: Any = Field(description="the tag and its endpoint (or the endpoint) as they stood when requested")
    requested_by_username: str
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    decision_comment: str
    signatures: list[str]


class EndpointIn(Schema):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(default="", max_length=200)
    protocol: str = Field(description="opcua, sparkplug, mqtt-json or modbus", max_length=20)
    address: str = Field(min_length=1, max_length=300)
    options: dict[str, Option] = Field(default_factory=dict)
    reason: str = Field(min_length=1, max_length=2000)


class RenameIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)


class EndpointChangeIn(Schema):
    values: dict[str, Any] = Field(description="address and/or options, with their new values")
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn


class TagIn(Schema):
    endpoint: str = Field(min_length=1, max_length=40)
    tag: str = Field(
        min_length=1, max_length=300, description="node id, Sparkplug metric, topic/field, register"
    )
    equipment: str = Field(min_length=1, max_length=64, description="the equipment unit's code")
    name: str = Field(min_length=1, max_length=200, description="the parameter as recipes name it")
    unit_of_measure: str = Field(default="", max_length=30)
    sampling_ms: int = 1000
    deadband: Decimal = Decimal(0)
    options: dict[str, Option] = Field(default_factory=dict)
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn


class TagChangeIn(Schema):
    values: dict[str, Any] = Field(
        description="any of equipment (a unit's code), name, unit_of_measure, sampling_ms, deadband, options"
    )
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn


class RetireIn(Schema):
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn


class DecisionIn(Schema):
    signature: SignatureIn


class WithdrawIn(Schema):
    reason: str = Field(min_length=1, max_length=2000)


REFUSED = (services.GatewayRefused, approvals.ChangeRefused, ReasonRequired)


def _refused(exc: Exception) -> Status[dict[str, Any]]:
    code = exc.verdict.codes[0] if isinstance(exc, services.GatewayRefused) else "REFUSED"
    return Status(422, {"detail": str(exc), "code": code})


def _signed_request(request: HttpRequest, payload: Any, make: Any, **values: Any) -> Status[dict[str, Any]]:
    """A change request signed by the caller ("requested"), made by ``make`` with ``values``: 201 with
    the request, 422 with the service's words when refused, 403 without the permission or signature."""
    require(request.user, CONFIGURE_PERMISSION)
    signer = _signer(request, payload.signature, Meaning.REQUESTED)
    try:
        change = make(
            actor=_actor(request),
            signer=signer,
            reason=payload.reason,
            comment=payload.signature.comment,
            **values,
        )
    except REFUSED as exc:
        return _refused(exc)
    return Status(201, _request_out(change))


def _endpoint_out(e: Endpoint) -> dict[str, Any]:
    return {
        "code": e.code,
        "name": e.name,
        "protocol": e.protocol,
        "address": e.address,
        "options": e.options,
        "tags_in_force": (
            e.tags_in_force if hasattr(e, "tags_in_force") else e.tags.filter(retired_at__isnull=True).count()
        ),
        "retired_at": e.retired_at,
    }


def _tag_out(t: Tag) -> dict[str, Any]:
    return {
        "id": t.pk,
        "endpoint": t.endpoint.code,
        "tag": t.tag,
        "equipment": t.equipment.code,
        "name": t.name,
        "unit_of_measure": t.unit_of_measure,
        "sampling_ms": t.sampling_ms,
        "deadband": t.deadband,
        "options": t.options,
        "retired_at": t.retired_at,
    }


def _request_out(change: ChangeRequest) -> dict[str, Any]:
    change.refresh_from_db()
    return {
        "id": change.pk,
        "number": change.number,
        "kind": change.kind,
        "operation": change.payload.get("operation", ""),
        "state": change.state,
        "summary": change.summary,
        "reason": change.reason,
        "payload": change.payload,
        "before": change.before,
        "requested_by_username": change.requested_by.username,
        "requested_at": change.requested_at,
        "decided_at": change.decided_at,
        "decision_comment": change.decision_comment,
        "signatures": [s.manifestation() for s in request_signatures(change)],
    }


@router.get("/endpoints", response=list[EndpointOut])
def endpoints(request: HttpRequest) -> list[dict[str, Any]]:
    """Every endpoint, retired ones too (after those in force), with the number of its tags in force."""
    require(request.user, VIEW)
    return [_endpoint_out(e) for e in selectors.endpoints()]


@router.get("/tags", response=list[TagOut])
def tags(request: HttpRequest) -> list[dict[str, Any]]:
    """Every tag: which unit's which parameter, in which unit of measure, at which endpoint."""
    require(request.user, VIEW)
    return [_tag_out(t) for t in selectors.tags()]


@router.get("/requests", response=list[RequestOut])
def requests_open(request: HttpRequest) -> list[dict[str, Any]]:
    """Tag and endpoint requests waiting for a QA approver, oldest first."""
    if not (request.user.has_perm(VIEW) or request.user.has_perm(APPROVE)):
        raise PermissionDenied(
            "Your roles do not allow this: gateway requests are for engineers, QA and auditors."
        )
    return [_request_out(r) for r in selectors.requests_open()]


@router.post("/endpoints", response={201: EndpointOut, 403: Problem, 422: Problem})
def endpoint_create(request: HttpRequest, payload: EndpointIn) -> Status[dict[str, Any]]:
    """Register an endpoint: one administrator's audited change; nothing is read there before a tag is approved."""
    require(request.user, CONFIGURE_PERMISSION)
    try:
        endpoint = services.endpoint_create(
            actor=_actor(request),
            code=payload.code,
            name=payload.name,
            protocol=payload.protocol,
            address=payload.address,
            options=payload.options,
            reason=payload.reason,
        )
    except REFUSED as exc:
        return _refused(exc)
    return Status(201, _endpoint_out(endpoint))


@router.post("/endpoints/{code}/rename", response={200: EndpointOut, 403: Problem, 422: Problem})
def endpoint_rename(request: HttpRequest, code: str, payload: RenameIn) -> Status[dict[str, Any]]:
    """Change an endpoint's descriptive name: one administrator's audited change."""
    require(request.user, CONFIGURE_PERMISSION)
    try:
        endpoint = services.endpoint_rename(
            actor=_actor(request), code=code, name=payload.name, reason=payload.reason
        )
    except REFUSED as exc:
        return _refused(exc)
    return Status(200, _endpoint_out(endpoint))


@router.post("/endpoints/{code}/change", response={201: RequestOut, 403: Problem, 422: Problem})
def endpoint_change(request: HttpRequest, code: str, payload: EndpointChangeIn) -> Status[dict[str, Any]]:
    """Request a new address or options, signed by the caller: every tag on the endpoint is then read there."""
    return _signed_request(
        request,
        payload,
        services.endpoint_change_request,
        code=code,
        values=payload.values,
    )


@router.post("/endpoints/{code}/retire", response={201: RequestOut, 403: Problem, 422: Problem})
def endpoint_retire(request: HttpRequest, code: str, payload: RetireIn) -> Status[dict[str, Any]]:
    """Request that an endpoint, and so every tag on it, is read no more; what it produced stays."""
    return _signed_request(
        request,
        payload,
        services.endpoint_retire_request,
        code=code,
    )


@router.post("/tags", response={201: RequestOut, 403: Problem, 422: Problem})
def tag_create(request: HttpRequest, payload: TagIn) -> Status[dict[str, Any]]:
    """Request a tag, signed by the caller; it exists (and is read) once a QA approver approves it."""
    return _signed_request(
        request,
        payload,
        services.tag_create_request,
        endpoint=payload.endpoint,
        equipment=payload.equipment,
        tag=payload.tag,
        name=payload.name,
        unit_of_measure=payload.unit_of_measure,
        sampling_ms=payload.sampling_ms,
        deadband=payload.deadband,
        options=payload.options,
    )


@router.post("/tags/{tag_id}/change", response={201: RequestOut, 403: Problem, 422: Problem})
def tag_change(request: HttpRequest, tag_id: int, payload: TagChangeIn) -> Status[dict[str, Any]]:
    """Request a change of a tag's fields (those given), signed by the caller."""
    return _signed_request(
        request,
        payload,
        services.tag_change_request,
        tag_id=tag_id,
        values=payload.values,
    )


@router.post("/tags/{tag_id}/retire", response={201: RequestOut, 403: Problem, 422: Problem})
def tag_retire(request: HttpRequest, tag_id: int, payload: RetireIn) -> Status[dict[str, Any]]:
    """Request that a tag is read no more, signed by the caller; its stored values stay."""
    return _signed_request(
        request,
        payload,
        services.tag_retire_request,
        tag_id=tag_id,
    )


def _decide(
    request: HttpRequest, request_id: int, payload: DecisionIn, meaning: str
) -> Status[dict[str, Any]]:
    require(request.user, APPROVE)
    change = get_object_or_404(ChangeRequest, pk=request_id, kind__in=REQUEST_KINDS)
    signer = _signer(request, payload.signature, meaning)
    decide = approvals.change_approve if meaning == Meaning.APPROVED else approvals.change_reject
    try:
        decide(actor=_actor(request), signer=signer, request=change, comment=payload.signature.comment)
    except REFUSED as exc:
        return _refused(exc)
    return Status(200, _request_out(change))


@router.post("/requests/{request_id}/approve", response={200: RequestOut, 403: Problem, 422: Problem})
def request_approve(request: HttpRequest, request_id: int, payload: DecisionIn) -> Status[dict[str, Any]]:
    """A QA approver approves and signs: the change is written now, read from the gateway's next start."""
    return _decide(request, request_id, payload, Meaning.APPROVED)


@router.post("/requests/{request_id}/reject", response={200: RequestOut, 403: Problem, 422: Problem})
def request_reject(request: HttpRequest, request_id: int, payload: DecisionIn) -> Status[dict[str, Any]]:
    """A QA approver rejects and signs; the signature's comment says why. Nothing changes."""
    return _decide(request, request_id, payload, Meaning.REJECTED)


@router.post("/requests/{request_id}/withdraw", response={200: RequestOut, 403: Problem, 422: Problem})
def request_withdraw(request: HttpRequest, request_id: int, payload: WithdrawIn) -> Status[dict[str, Any]]:
    """The requester (or another engineer) takes back an open request, with a reason; nothing changes."""
    require(request.user, CONFIGURE_PERMISSION)
    try:
        change = services.request_withdraw(
            actor=_actor(request), request_id=request_id, reason=payload.reason
        )
    except REFUSED as exc:
        return _refused(exc)
    return Status(200, _request_out(change))

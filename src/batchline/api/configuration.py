"""The GMP configuration over the API: the version in force and its history; changes under two signatures.

The same services as the configuration page: an administrator's signed
request, a QA approver's signed approval (or rejection). A refusal is 422 in
words; a signature refused is 403.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema, Status
from pydantic import Field

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest
from batchline.audit.services import ReasonRequired
from batchline.configuration import selectors
from batchline.configuration.models import ConfigVersion
from batchline.configuration.services import configuration_change_request
from batchline.signatures.models import Meaning
from batchline.web.access import require

from .production import _actor, _signer
from .schemas import Problem, SignatureIn

configuration = Router(tags=["GMP configuration"])


class Change(Schema):
    setting: str
    label: str
    old: str
    new: str


class SignedBy(Schema):
    meaning: str
    username: str
    name: str
    signed_at: dt.datetime
    comment: str
    manifestation: str


class VersionOut(Schema):
    number: int
    effective_at: dt.datetime
    reason: str
    changes: list[Change]
    change_request: str | None
    requested_by_username: str | None
    approved_by_username: str | None
    signatures: list[SignedBy]


class SettingOut(Schema):
    name: str
    label: str
    help: str
    value: Any
    shown: str


class PendingOut(Schema):
    id: int
    number: str
    summary: str
    reason: str
    requested_by_username: str
    requested_at: dt.datetime
    from_version: int | None
    changes: list[Change]
    signatures: list[SignedBy]


class ConfigurationOut(Schema):
    version: int
    effective_at: dt.datetime
    values: dict[str, Any]
    settings: list[SettingOut]
    history: list[VersionOut]
    pending: list[PendingOut]


class ChangeIn(Schema):
    values: dict[str, Any] = Field(description="The settings to change, by name, with their new values")
    reason: str = Field(min_length=1, max_length=2000)
    signature: SignatureIn


class DecisionIn(Schema):
    signature: SignatureIn


class RequestOut(Schema):
    id: int
    number: str
    state: str
    summary: str
    reason: str
    version_in_force: int


def _view(request: HttpRequest) -> None:
    if not selectors.may_view(request.user):
        raise PermissionDenied(
            "Your roles do not allow this: the GMP configuration is for administrators, QA approvers and auditors."
        )


def _out(change: ChangeRequest) -> dict[str, Any]:
    change.refresh_from_db()
    return {
        "id": change.pk,
        "number": change.number,
        "state": change.state,
        "summary": change.summary,
        "reason": change.reason,
        "version_in_force": selectors.newest_number(),
    }


@configuration.get("", response=ConfigurationOut)
def configuration_get(request: HttpRequest) -> dict[str, Any]:
    """The version in force, every setting, the history (old → new, reason, who requested and approved)."""
    _view(request)
    config = selectors.current()
    version = ConfigVersion.objects.get(number=config.version)
    return {
        "version": config.version,
        "effective_at": version.effective_at,
        "values": config.values(),
        "settings": selectors.settings_table(config),
        "history": selectors.versions_history(),
        "pending": selectors.requests_pending(),
    }


@configuration.post("/change-requests", response={201: RequestOut, 403: Problem, 422: Problem})
def configuration_request(request: HttpRequest, payload: ChangeIn) -> Status[dict[str, Any]]:
    """Request a change of some settings, signed by the calling administrator (meaning: requested)."""
    require(request.user, "configuration.request_change")
    signer = _signer(request, payload.signature, Meaning.REQUESTED)
    try:
        change = configuration_change_request(
            actor=_actor(request),
            signer=signer,
            values=payload.values,
            reason=payload.reason,
            comment=payload.signature.comment,
        )
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return Status(422, {"detail": str(exc), "code": "REFUSED"})
    return Status(201, _out(change))


def _decide(
    request: HttpRequest, request_id: int, payload: DecisionIn, meaning: str
) -> Status[dict[str, Any]]:
    require(request.user, "approvals.approve_change")
    change = get_object_or_404(ChangeRequest, pk=request_id, kind="configuration")
    signer = _signer(request, payload.signature, meaning)
    try:
        if meaning == Meaning.APPROVED:
            approvals.change_approve(
                actor=_actor(request), signer=signer, request=change, comment=payload.signature.comment
            )
        else:
            approvals.change_reject(
                actor=_actor(request), signer=signer, request=change, comment=payload.signature.comment
            )
    except (approvals.ChangeRefused, ReasonRequired) as exc:
        return Status(422, {"detail": str(exc), "code": "REFUSED"})
    return Status(200, _out(change))


@configuration.post(
    "/change-requests/{request_id}/approve", response={200: RequestOut, 403: Problem, 422: Problem}
)
def configuration_approve(
    request: HttpRequest, request_id: int, payload: DecisionIn
) -> Status[dict[str, Any]]:
    """A QA approver approves and signs; the new version is in force for every process at once."""
    return _decide(request, request_id, payload, Meaning.APPROVED)


@configuration.post(
    "/change-requests/{request_id}/reject", response={200: RequestOut, 403: Problem, 422: Problem}
)
def configuration_reject(
    request: HttpRequest, request_id: int, payload: DecisionIn
) -> Status[dict[str, Any]]:
    """A QA approver rejects and signs; the signature's comment says why. Nothing changes."""
    return _decide(request, request_id, payload, Meaning.REJECTED)

"""The GMP configuration page: the version in force, its history, and changes under two signatures.

An administrator requests a change (reason and signature, meaning "requested");
a QA approver approves it with their signature, and the new version is in
force for every process at the next action (configuration/selectors.py).
Thin over ``configuration`` and ``approvals``, as the API is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from batchline.approvals import services as approvals
from batchline.approvals.models import ChangeRequest
from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration import selectors
from batchline.configuration.definitions import SETTINGS
from batchline.configuration.models import ConfigVersion
from batchline.configuration.services import configuration_change_request
from batchline.rules import numbers
from batchline.signatures.models import Meaning
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signing_session_open,
    username_required,
)

from .access import require, signer_posted


def _actor(request: HttpRequest) -> Actor:
    return Actor.of(request.user, via="web")


def _signer(request: HttpRequest, meaning: str) -> VerifiedSigner:
    return signer_posted(request, meaning)


def _page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    if not selectors.may_view(request.user):
        raise PermissionDenied(
            "Your roles do not allow this: the GMP configuration is for administrators, QA approvers and auditors."
        )
    config = selectors.current()
    version = ConfigVersion.objects.get(number=config.version)
    posted = request.POST if request.method == "POST" and "reason" in request.POST else {}
    rows = selectors.settings_table(config)
    for row in rows:
        raw = posted.get(f"setting_{row['name']}") if posted else None
        row["input"] = raw if raw is not None else _input_value(row["value"], SETTINGS[row["name"]].decimal)
        row["kind"] = "bool" if isinstance(row["value"], bool) else ("choice" if row["choices"] else "text")
    pending = selectors.requests_pending()
    for p in pending:
        p["approve_dialog"], p["reject_dialog"] = f"sign-approve-{p['id']}", f"sign-reject-{p['id']}"
    context = {
        "config": config,
        "version": version,
        "rows": rows,
        "history": selectors.versions_history(),
        "pending": pending,
        "can_request": request.user.has_perm("configuration.request_change"),
        "can_approve": request.user.has_perm("approvals.approve_change"),
        "username_required": username_required(request),
        "reason": posted.get("reason", "") if posted else "",
        **extra,
    }
    return render(request, "web/configuration.html", context, status=status)


def _input_value(value: Any, decimal: bool = False) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(":".join(pair) for pair in value)
    if decimal:
        return numbers.written(Decimal(value), selectors.notation())
    return str(value)


def _refusal(exc: Exception) -> list[str]:
    return [str(exc)]


@login_required
def configuration(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def configuration_request(request: HttpRequest) -> HttpResponse:
    """Request a change: every setting whose field differs from the version in force."""
    require(request.user, "configuration.request_change")
    config = selectors.current().values()
    values: dict[str, Any] = {}
    typed_wrong = []
    for name, setting in SETTINGS.items():
        raw = request.POST.get(f"setting_{name}")
        if raw is not None and raw.strip() != _input_value(config[name], setting.decimal):
            values[name] = raw.strip()
            if setting.decimal:  # typed in the site's notation, like every number on its pages
                try:
                    values[name] = numbers.read(raw, selectors.notation())
                except numbers.NotANumber as exc:
                    typed_wrong.append(numbers.sentence(setting.label, exc))
    if typed_wrong:
        return _page(request, status=422, refusal=typed_wrong)
    try:
        signer = _signer(request, Meaning.REQUESTED)
        change = configuration_change_request(
            actor=_actor(request),
            signer=signer,
            values=values,
            reason=request.POST.get("reason", ""),
            comment=request.POST.get("signer_comment", ""),
        )
    except (approvals.ChangeRefused, SignatureRefused, ReasonRequired) as exc:
        return _page(request, status=422, refusal=_refusal(exc))
    signing_session_open(signer)
    messages.success(request, f"{change.number} requested: a QA approver approves it before it is in force.")
    return HttpResponseRedirect(reverse("configuration"))


@login_required
@require_POST
def configuration_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """A QA approver approves (the new version is in force at once) or rejects a requested change."""
    require(request.user, "approvals.approve_change")
    change = get_object_or_404(ChangeRequest, pk=pk, kind="configuration")
    comment = request.POST.get("signer_comment", "")
    try:
        if decision == "approve":
            signer = _signer(request, Meaning.APPROVED)
            approvals.change_approve(actor=_actor(request), signer=signer, request=change, comment=comment)
            done = f"{change.number} approved: configuration version {selectors.newest_number()} is in force."
        elif decision == "reject":
            signer = _signer(request, Meaning.REJECTED)
            approvals.change_reject(actor=_actor(request), signer=signer, request=change, comment=comment)
            done = f"{change.number} rejected: nothing changed."
        else:
            return _page(request, status=422, refusal=[f"{decision!r} is not a decision on a change."])
    except (approvals.ChangeRefused, SignatureRefused, ReasonRequired) as exc:
        return _page(request, status=422, refusal=_refusal(exc))
    signing_session_open(signer)
    messages.success(request, done)
    return HttpResponseRedirect(reverse("configuration"))

"""The equipment status board, a unit's page with its logbook, and the actions people record there.

The board shows each unit's effective status at the server's time (a clean
hold that ended makes a unit "needs cleaning" by itself) and refreshes itself
with htmx every minute. Actions post a plain form and come back to the unit's
page; a refusal shows the reasons in words, status 422, nothing written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor
from batchline.equipment import selectors, services
from batchline.equipment.models import Equipment, LogbookEntry
from batchline.rules.verdict import Refused
from batchline.signatures.models import Meaning, Signature
from batchline.signatures.services import (
    SignatureRefused,
    VerifiedSigner,
    signature_intact,
    signing_session_open,
    username_required,
)

from .access import current_user, record_id, require, signer_posted
from .dates import day_start


def _unit(code: str) -> Equipment:
    try:
        return selectors.equipment_by_code(code)
    except Equipment.DoesNotExist as exc:
        raise Http404(f"No equipment {code}") from exc


@login_required
def board(request: HttpRequest) -> HttpResponse:
    require(request.user, "equipment.view_equipment")
    now = timezone.now()
    context = {"rows": selectors.board(now), "now": now}
    template = "equipment/_board.html" if getattr(request, "htmx", False) else "equipment/board.html"
    return render(request, template, context)


def _detail(
    request: HttpRequest,
    unit: Equipment,
    *,
    refusal: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = current_user(request)
    entries = list(selectors.logbook(unit))
    signatures = {
        int(s.record_id): s
        for s in Signature.objects.filter(
            record_type="equipment.logbookentry", record_id__in=[str(e.pk) for e in entries]
        )
    }
    lines = [
        {
            "entry": e,
            "signature": signatures.get(e.pk),
            "intact": signature_intact(signatures[e.pk], selectors.signed_content(e))
            if e.pk in signatures
            else None,
        }
        for e in entries
    ]
    context: dict[str, Any] = {
        "unit": unit,
        "row": selectors.board_row(unit, timezone.now()),
        "lines": lines,
        "refusal": refusal or [],
        "sign_error": "",
        "username_required": username_required(request),
        "meaning": Meaning.PERFORMED.value,
        "meaning_label": Meaning.PERFORMED.label,
        "can": {
            "clean": user.has_perm("equipment.record_cleaning"),
            "check": user.has_perm("equipment.check_scale") and unit.equipment_class.is_scale,
            "maintain": user.has_perm("equipment.maintain_equipment"),
            "write": user.has_perm("equipment.write_logbook"),
        },
    }
    return render(request, "equipment/detail.html", context, status=status)


@login_required
def detail(request: HttpRequest, code: str) -> HttpResponse:
    require(request.user, "equipment.view_equipment")
    return _detail(request, _unit(code))


def _due(request: HttpRequest, name: str, unit: Equipment) -> dt.datetime | None:
    """A due date from a form: due from 00:00 of that day, in the unit's site zone."""
    return day_start(request.POST.get(name, ""), selectors.site_tz(unit.site))


def _signer(request: HttpRequest) -> VerifiedSigner:
    return signer_posted(request, Meaning.PERFORMED)


# action -> (permission, what happened, in words)
ACTIONS = {
    "cleaning_start": ("equipment.record_cleaning", "Cleaning started."),
    "cleaning_end": ("equipment.record_cleaning", "Cleaning recorded as done."),
    "check": ("equipment.check_scale", "Scale check recorded."),
    "maintenance_start": ("equipment.maintain_equipment", "Maintenance started."),
    "maintenance_end": ("equipment.maintain_equipment", "Maintenance recorded as done."),
    "take_out_of_service": ("equipment.maintain_equipment", "Taken out of service."),
    "return_to_service": ("equipment.maintain_equipment", "Back in service; clean it before use."),
    "calibration": ("equipment.maintain_equipment", "Calibration recorded and signed."),
    "note": ("equipment.write_logbook", "Note written."),
    "correct": ("equipment.write_logbook", "Correction written and signed; the original stays."),
}


def _run(request: HttpRequest, unit: Equipment, action: str, actor: Actor) -> VerifiedSigner | None:
    post = request.POST
    text = post.get("text", "")
    reason = post.get("reason", "")
    code = unit.code
    if action == "cleaning_start":
        services.cleaning_start(actor=actor, code=code, text=text)
    elif action == "cleaning_end":
        services.cleaning_end(actor=actor, code=code, text=text)
    elif action == "check":
        services.scale_check_record(actor=actor, code=code, passed=post.get("passed") == "yes", text=text)
    elif action == "maintenance_start":
        services.maintenance_start(actor=actor, code=code, reason=reason)
    elif action == "maintenance_end":
        services.maintenance_end(actor=actor, code=code, text=text, next_due=_due(request, "next_due", unit))
    elif action in services.STATUS_COMMANDS:
        services.status_set(actor=actor, code=code, command=action, reason=reason)
    elif action == "note":
        services.logbook_note(actor=actor, code=code, text=text)
    elif action == "calibration":
        next_due = _due(request, "next_due", unit)
        signer = _signer(request)
        services.calibration_record(
            actor=actor,
            code=code,
            passed=post.get("passed") == "yes",
            next_due=next_due,
            signer=signer,
            text=text,
        )
        return signer
    elif action == "correct":
        entry = LogbookEntry.objects.filter(pk=record_id(post.get("entry")), equipment=unit).first()
        if entry is None:
            raise Http404("No such logbook entry")
        signer = _signer(request)
        services.logbook_correct(actor=actor, entry=entry, text=text, reason=reason, signer=signer)
        return signer
    return None


@login_required
@require_POST
def action(request: HttpRequest, code: str, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404("Unknown action")
    permission, done = ACTIONS[action]
    require(request.user, permission)
    unit = _unit(code)
    try:
        signer = _run(request, unit, action, Actor.of(current_user(request), via="web"))
    except Refused as refused:  # a rule, or a date that is not one
        return _detail(request, _unit(code), refusal=[r.message for r in refused.verdict.reasons], status=422)
    except SignatureRefused as exc:
        return _detail(request, _unit(code), refusal=[str(exc)], status=422)
    if signer is not None:
        signing_session_open(signer)
    messages.success(request, f"{unit.code}: {done}")
    return HttpResponseRedirect(reverse("equipment_detail", args=[unit.code]))

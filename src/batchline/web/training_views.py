"""Training records per person or per qualification; QA records training and registers qualifications.

Everyone sees their own training; people with ``training.view_trainingrecord``
see everyone's, and QA (``training.manage_training``) records it.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from batchline.accounts.models import User
from batchline.audit.services import Actor
from batchline.rules.verdict import Refused
from batchline.training import selectors, services
from batchline.training.models import Qualification

from .access import current_user, require
from .dates import day_start


def _page(request: HttpRequest, *, refusal: list[str] | None = None, status: int = 200) -> HttpResponse:
    user = current_user(request)
    see_all = user.has_perm("training.view_trainingrecord")
    username = request.GET.get("user", "")[:150] if see_all else user.username
    code = request.GET.get("code", "")[:60] or None
    person = User.objects.filter(username=username).first() if username else None
    rows = selectors.training_records(user_id=person.pk if person else None, code=code)
    if username and person is None:
        rows = rows.none()
    now = timezone.now()
    context = {
        "records": [{"record": r, "state": selectors.record_state(r, now)} for r in rows[:500]],
        "qualifications": Qualification.objects.order_by("code"),
        "people": User.objects.filter(is_active=True).order_by("username") if see_all else [],
        "person": person,
        "code": code,
        "see_all": see_all,
        "can_manage": user.has_perm("training.manage_training"),
        "refusal": refusal or [],
    }
    return render(request, "training/records.html", context, status=status)


@login_required
def training(request: HttpRequest) -> HttpResponse:
    return _page(request)


def _day(text: str) -> dt.datetime | None:
    """A date from the form as 00:00 that day, in the server's display zone."""
    return day_start(text, timezone.get_current_timezone())


@login_required
@require_POST
def training_add(request: HttpRequest) -> HttpResponse:
    require(request.user, "training.manage_training")
    post = request.POST
    try:
        pk = post.get("user", "")
        person = User.objects.filter(pk=int(pk)).first() if pk.isdigit() and len(pk) < 18 else None
        if person is None:
            raise services.TrainingRefused.because("USER", "Choose the person who was trained.")
        trained_at = _day(post.get("trained_on", ""))
        if trained_at is None:
            raise services.TrainingRefused.because("DATE", "Give the date of the training.")
        record = services.training_record_add(
            actor=Actor.of(current_user(request), via="web"),
            user=person,
            code=post.get("code", ""),
            trained_at=trained_at,
            expires_at=_day(post.get("expires_on", "")),
            reason=post.get("reason", ""),
            note=post.get("note", ""),
        )
    except Refused as refused:
        return _page(request, refusal=[r.message for r in refused.verdict.reasons], status=422)
    messages.success(request, f"Training of {person.printed_name} on {record.qualification.code} recorded.")
    return HttpResponseRedirect(reverse("training") + f"?user={person.username}")

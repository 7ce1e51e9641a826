"""Periodic reviews: the access review and the periodic evaluation, prepared, read, signed, printed.

Thin over ``periodic``: an administrator or a QA approver prepares a report (a
frozen snapshot of the records), a QA approver signs it as its reviewer in the
signing dialog, and everyone who may read it opens it as a page or a PDF/A.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from batchline.audit.services import Actor, ReasonRequired
from batchline.configuration.selectors import current
from batchline.equipment.selectors import display_zone
from batchline.periodic import selectors
from batchline.periodic.models import PeriodicReport, ReportKind, ReportState
from batchline.periodic.pdf import header_fields, render_report_pdf, signature_line
from batchline.periodic.sections import sections_of
from batchline.periodic.services import ReportRefused, report_prepare, report_sign
from batchline.reports.layout import Times
from batchline.signatures.models import Meaning
from batchline.signatures.services import SignatureRefused, signing_session_open, username_required

from .access import require, signer_posted

REFUSED = (ReportRefused, SignatureRefused, ReasonRequired)
SIGN_DIALOG = "sign-report"


def _may_view(request: HttpRequest) -> None:
    if not selectors.may_view(request.user):
        raise PermissionDenied(
            "Your roles do not allow this: periodic reviews are for administrators, QA approvers and auditors."
        )


def _when() -> Times:
    return Times(ZoneInfo(timezone.get_current_timezone_name()))


def _index(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    _may_view(request)
    context = {
        "statuses": selectors.due_status(config=current(), now=timezone.now()),
        "reports": selectors.reports_list(),
        "can_prepare": request.user.has_perm(selectors.PREPARE_PERMISSION),
        "kept": request.POST if request.method == "POST" else {},
        **extra,
    }
    return render(request, "periodic/index.html", context, status=status)


@login_required
def periodic(request: HttpRequest) -> HttpResponse:
    return _index(request)


def _day(text: str, label: str, *, end: bool = False) -> dt.datetime | None:
    """A date typed in the site's zone: its first instant, or (``end``) the first instant of the next day."""
    text = text.strip()
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ReportRefused(f"{label}: {text[:40]!r} is not a date (e.g. 2026-01-31).") from None
    if end:
        if day == dt.date.max:
            raise ReportRefused(f"{label}: {text[:40]!r} is not a date Batchline can hold.")
        day += dt.timedelta(days=1)
    try:
        return dt.datetime.combine(day, dt.time.min, tzinfo=display_zone()).astimezone(dt.UTC)
    except OverflowError:
        raise ReportRefused(f"{label}: {text[:40]!r} is not a date Batchline can hold.") from None


@login_required
@require_POST
def periodic_prepare(request: HttpRequest) -> HttpResponse:
    """Freeze a report of the kind asked for; a periodic evaluation over the dates typed (both optional)."""
    require(request.user, selectors.PREPARE_PERMISSION)
    kind = request.POST.get("kind", "")
    try:
        period: dict[str, Any] = {}
        if kind == ReportKind.PERIODIC_EVALUATION:
            period = {
                "period_start": _day(request.POST.get("period_from", ""), "From"),
                "period_end": _day(request.POST.get("period_to", ""), "To", end=True),
            }
        report = report_prepare(
            actor=Actor.of(request.user, via="web"), user=request.user, kind=kind, **period
        )
    except REFUSED as exc:
        return _index(request, status=422, refusal=[str(exc)])
    messages.success(request, f"{report.number} prepared: a QA approver reads and signs it.")
    return HttpResponseRedirect(reverse("periodic_report", args=[report.number]))


def _report_page(request: HttpRequest, number: str, *, status: int = 200, **extra: Any) -> HttpResponse:
    _may_view(request)
    report = get_object_or_404(
        PeriodicReport.objects.select_related("prepared_by", "signed_by"), number=number
    )
    view = selectors.report_view(report)
    when = _when()
    context = {
        "view": view,
        "report": report,
        "fields": header_fields(view, when),
        "sections": sections_of(view["data"], when),
        "signature_line": signature_line(view),
        "can_sign": report.state == ReportState.PREPARED and request.user.has_perm(selectors.SIGN_PERMISSION),
        "username_required": username_required(request),
        "kept": request.POST if request.method == "POST" else {},
        **extra,
    }
    return render(request, "periodic/report.html", context, status=status)


@login_required
def periodic_report(request: HttpRequest, number: str) -> HttpResponse:
    return _report_page(request, number)


@login_required
@require_POST
def periodic_sign(request: HttpRequest, number: str) -> HttpResponse:
    """The reviewer's signature (meaning "reviewed") on the report as it was prepared."""
    require(request.user, selectors.SIGN_PERMISSION)
    report = get_object_or_404(PeriodicReport, number=number)
    try:
        signer = signer_posted(request, Meaning.REVIEWED)
        report_sign(actor=Actor.of(request.user, via="web"), signer=signer, report=report)
    except REFUSED as exc:
        return _report_page(
            request,
            number,
            status=422,
            refusal=[str(exc)],
            open_dialog=SIGN_DIALOG,
            dialog_messages=[str(exc)],
        )
    signing_session_open(signer)
    messages.success(
        request, f"{number} signed: it is kept as it stands, and the next period gets a new one."
    )
    return HttpResponseRedirect(reverse("periodic_report", args=[number]))


@login_required
def periodic_pdf(request: HttpRequest, number: str) -> HttpResponse:
    _may_view(request)
    report = get_object_or_404(
        PeriodicReport.objects.select_related("prepared_by", "signed_by"), number=number
    )
    with timezone.override(display_zone()):
        data = render_report_pdf(selectors.report_view(report))
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{report.number}.pdf"'
    return response

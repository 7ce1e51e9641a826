"""Home page per role, and the security events page for administrators."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from batchline.accounts.models import User
from batchline.accounts.roles import ROLES
from batchline.accounts.selectors import locked_usernames
from batchline.audit.selectors import changes_of, security_events

from .access import require


def role_requests_waiting(user: User) -> int:
    """Requests for GMP signing authority a QA approver (or, to follow them, an administrator) sees."""
    if not (user.has_perm("approvals.approve_change") or user.has_perm("accounts.manage_users")):
        return 0
    from batchline.accounts.grants import ROLE_GRANT
    from batchline.approvals.models import ChangeRequest, RequestState

    return ChangeRequest.objects.filter(kind=ROLE_GRANT, state=RequestState.REQUESTED).count()


def gateway_requests_waiting(user: User) -> int:
    """Gateway tag and endpoint requests a QA approver decides (and their engineers follow)."""
    if not (user.has_perm("approvals.approve_change") or user.has_perm("gateway.configure_gateway")):
        return 0
    from batchline.gateway.selectors import requests_open

    return requests_open().count()


def reviews_overdue(user: User) -> list[str]:
    """Overdue access reviews and periodic evaluations, in words, for those who prepare or sign them."""
    from batchline.periodic import selectors as periodic

    if not (user.has_perm(periodic.PREPARE_PERMISSION) or user.has_perm(periodic.SIGN_PERMISSION)):
        return []
    from django.utils import timezone

    from batchline.configuration.selectors import current

    return [s.message for s in periodic.due_status(config=current(), now=timezone.now()) if s.message]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    roles = [(name, ROLES[name][0], ROLES[name][1]) for name in user.role_names if name in ROLES]
    reads_security = user.has_perm("accounts.view_security_events")
    locked = locked_usernames() if reads_security else []
    from batchline.accounts.alerts import alerts_open

    return render(
        request,
        "web/home.html",
        {
            "roles": roles,
            "esig_pending": user.esig_acknowledged_at is None,
            "locked_accounts": locked,
            # Security alerts (a locked account or station, a failed verification) until acknowledged.
            "security_alerts": alerts_open() if reads_security else [],
            "role_requests_waiting": role_requests_waiting(user),
            "gateway_requests_waiting": gateway_requests_waiting(user),
            "reviews_overdue": reviews_overdue(user),
        },
    )


@login_required
def security(request: HttpRequest) -> HttpResponse:
    require(request.user, "accounts.view_security_events")
    from axes.models import AccessAttempt

    events = [{"entry": e, "changes": changes_of(e)} for e in security_events()]
    attempts = AccessAttempt.objects.order_by("-attempt_time")[:100]
    from batchline.accounts.alerts import alerts_open
    from batchline.accounts.lockout import locked_addresses

    return render(
        request,
        "web/security.html",
        {
            "events": events,
            "attempts": attempts,
            "locked_addresses": locked_addresses(),
            "security_alerts": alerts_open(),
        },
    )


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for a load balancer: answers without touching the database."""
    return HttpResponse("ok", content_type="text/plain")

"""Home page per role, and the security events page for administrators."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from batchline.accounts.models import User
from batchline.accounts.roles import ROLES
from batchline.audit.selectors import changes_of, security_events
from batchline.signatures.services import signing_blocker

from .access import require


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    roles = [(name, ROLES[name][0], ROLES[name][1]) for name in user.role_names if name in ROLES]
    blocker = signing_blocker(user, "performed")
    locked = []
    if user.has_perm("accounts.view_security_events"):
        from axes.models import AccessAttempt
        from django.conf import settings

        locked = list(
            AccessAttempt.objects.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT)
            .values_list("username", flat=True)
            .distinct()
        )
    return render(
        request,
        "web/home.html",
        {
            "roles": roles,
            "signing_enabled": blocker is None or blocker[0] == "NOT_AUTHORISED",
            "esig_pending": user.esig_acknowledged_at is None,
            "locked_accounts": locked,
        },
    )


@login_required
def security(request: HttpRequest) -> HttpResponse:
    require(request.user, "accounts.view_security_events")
    from axes.models import AccessAttempt

    events = [{"entry": e, "changes": changes_of(e)} for e in security_events()]
    attempts = AccessAttempt.objects.order_by("-attempt_time")[:100]
    return render(request, "web/security.html", {"events": events, "attempts": attempts})

"""Idle sessions end (21 CFR 11.10(d), P11-04); issued passwords are changed first (P11-21)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone

from .passwords import password_expired

LAST_ACTIVITY = "batchline_last_activity"
_EXEMPT_PREFIXES = ("/static/",)


class IdleTimeoutMiddleware:
    """End a session after ``BATCHLINE_IDLE_TIMEOUT_MINUTES`` without a request, on the server clock.

    The last activity is written to the session only when it has moved by
    ``IDLE_ACTIVITY_GRANULARITY_SECONDS`` or more (30 s, or a tenth of a
    shorter timeout), so most requests read the session without writing it
    (docs/performance.md). The stored time is therefore less than that older
    than the last request, and an idle session ends less than 30 s before the
    timeout after its last request, never after it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_EXEMPT_PREFIXES) or not request.user.is_authenticated:
            return self.get_response(request)
        now = time.time()
        last = request.session.get(LAST_ACTIVITY)
        if last is not None and now - float(last) > settings.IDLE_TIMEOUT_SECONDS:
            request._batchline_idle_timeout = True  # type: ignore[attr-defined]
            logout(request)
            return _to_login(request, "Your session ended after a period of inactivity. Log in again.")
        if last is None or now - float(last) >= settings.IDLE_ACTIVITY_GRANULARITY_SECONDS:
            request.session[LAST_ACTIVITY] = now
        return self.get_response(request)


class PasswordChangeRequiredMiddleware:
    """Until an issued or expired password is changed, only the password page is reachable."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(_EXEMPT_PREFIXES)
            # Checked before the two URLs are reversed, which cost more, on every request.
            and (user.must_change_password or password_expired(user, now=timezone.now()))
            and request.path not in (reverse("password_change"), reverse("logout"))
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "Change your password in the browser before using the API."},
                    status=403,
                )
            return HttpResponseRedirect(reverse("password_change"))
        return self.get_response(request)


def _to_login(request: HttpRequest, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=401)
    url = f"{reverse('login')}?timeout=1"
    if getattr(request, "htmx", False):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)

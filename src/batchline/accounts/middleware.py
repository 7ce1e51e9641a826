"""Idle sessions end (21 CFR 11.10(d), P11-04); issued passwords are changed first (P11-21)."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from batchline.configuration.selectors import current

from .passwords import password_expired

LAST_ACTIVITY = "batchline_last_activity"
_EXEMPT_PREFIXES = ("/static/",)


# Requests a page makes by itself (polling the scale, refreshing a board) say so with this header;
# they never count as the person's activity. The scale reading counts as background whatever it says.
BACKGROUND_HEADER = "X-Batchline-Background"
_BACKGROUND_PATHS = ("/scales/reading/",)


def is_background(request: HttpRequest) -> bool:
    return request.headers.get(BACKGROUND_HEADER) == "1" or request.path.startswith(_BACKGROUND_PATHS)


def is_htmx(request: HttpRequest) -> bool:
    # Read from the header: this runs before django-htmx's middleware sets ``request.htmx``.
    return request.headers.get("HX-Request") == "true"


class IdleTimeoutMiddleware:
    """End a session after the configured idle timeout without the person's own input (P11-04, P11-19).

    The timeout is the GMP configuration's (``idle_timeout_minutes``, read per
    request). Background requests (polling, live updates) are checked against
    it but never move the clock: an open weighing screen that polls the scale
    does not keep an unattended session alive.

    The last activity is written to the session only when it has moved by
    30 s (or a tenth of a shorter timeout) or more, so most requests read the
    session without writing it (docs/performance.md). The stored time is
    therefore less than that older than the last request, and an idle session
    ends less than 30 s before the timeout after its last request, never after it.

    A timed-out or logged-out htmx request gets ``HX-Redirect`` to a clean
    login page (never a login form swapped into the page), and the login
    leads back to the page the person was on.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(_EXEMPT_PREFIXES):
            return self.get_response(request)
        if not request.user.is_authenticated:
            return _htmx_login_redirect(request, self.get_response(request))
        now = time.time()
        timeout = current().idle_timeout_seconds
        last = request.session.get(LAST_ACTIVITY)
        if last is not None and now - float(last) > timeout:
            request._batchline_idle_timeout = True  # type: ignore[attr-defined]
            logout(request)
            return _to_login(request, "Your session ended after a period of inactivity. Log in again.")
        if last is None or (
            not is_background(request) and now - float(last) >= idle_activity_granularity(timeout)
        ):
            request.session[LAST_ACTIVITY] = now
        return self.get_response(request)


def idle_activity_granularity(timeout_seconds: int) -> int:
    return min(30, timeout_seconds // 10)


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


def _return_path(request: HttpRequest) -> str:
    """Where the person was: the page an htmx request came from, a page's referrer for a POST."""
    candidates = [request.headers.get("HX-Current-URL", "")] if is_htmx(request) else []
    if request.method != "GET":
        candidates.append(request.headers.get("Referer", ""))
    else:
        candidates.append(request.get_full_path())
    for url in candidates:
        if url and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            parts = urlsplit(url)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if path.startswith("/") and not path.startswith(("/login/", "/logout/")):
                return path
    return ""


def _to_login(request: HttpRequest, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=401)
    url = f"{reverse('login')}?timeout=1"
    back = _return_path(request)
    if back:
        url += "&" + urlencode({"next": back})
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def _htmx_login_redirect(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """A login redirect answering an htmx request becomes a full-page navigation to the login page."""
    if not (is_htmx(request) and response.status_code == 302):
        return response
    location = response.get("Location", "")
    if not location.startswith(reverse("login")):
        return response
    back = _return_path(request)
    redirect = HttpResponse(status=204)
    redirect["HX-Redirect"] = reverse("login") + (f"?{urlencode({'next': back})}" if back else "")
    return redirect

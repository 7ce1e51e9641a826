"""Audit entries for logins, logouts, failures and lockouts (21 CFR 11.300(d), Annex 11 §12).

Each handler commits its own entry: a failed login is refused, but the record
of the refusal must survive.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from batchline.audit.models import AuditEntry
from batchline.audit.services import Actor, audit_append

security_log = logging.getLogger("batchline.security")


def _via(request: Any) -> str:
    if request is None:
        return "cli"
    path = getattr(request, "path", "")
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "web"


def _station(request: Any) -> str:
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "")


def _attempted(username: str, request: Any) -> tuple[Actor, Any]:
    user = get_user_model().objects.filter(username=username).first() if username else None
    actor = Actor(
        id=user.pk if user else None,
        username=username or "(blank)",
        name=user.printed_name if user else "(unknown user)",
        via=_via(request),
    )
    return actor, user


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    with transaction.atomic():
        audit_append(
            actor=Actor.of(user, via=_via(request)),
            action="login",
            record_type="accounts.user",
            record_id=user.pk,
            reason=f"station {_station(request)}",
        )


@receiver(user_logged_out)
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    timed_out = getattr(request, "_batchline_idle_timeout", False)
    with transaction.atomic():
        audit_append(
            actor=Actor.of(user, via=_via(request))
            if not timed_out
            else Actor(user.pk, user.username, user.printed_name, "system"),
            action="session_timeout" if timed_out else "logout",
            record_type="accounts.user",
            record_id=user.pk,
            reason="idle session ended by the server" if timed_out else "",
        )


@receiver(user_login_failed)
def audit_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = credentials.get("username") or ""
    actor, user = _attempted(username, request)
    # Signing and password changes re-authenticate through authenticate() too;
    # they mark the request so the entry says what was attempted.
    action = getattr(request, "_batchline_reauth", "") or "login_failed"
    with transaction.atomic():
        audit_append(
            actor=actor,
            action=action,
            record_type="accounts.user",
            record_id=user.pk if user else "",
            reason=f"wrong user ID or password, or account locked; station {_station(request)}",
        )
    security_log.warning("%s for %r from %s", action, username, _station(request))


def _already_locked(username: str, user: Any) -> bool:
    """Whether the last lock-related event of this account is a lockout (no unlock since)."""
    events = AuditEntry.objects.filter(action__in=("lockout", "unlock", "password_reset", "login"))
    if user is not None:
        events = events.filter(record_type="accounts.user", record_id=str(user.pk))
    else:
        events = events.filter(actor_username=username)
    return events.order_by("-id").values_list("action", flat=True).first() == "lockout"


def _address_already_locked(ip_address: str) -> bool:
    last = (
        AuditEntry.objects.filter(
            record_type="accounts.station",
            record_id=ip_address,
            action__in=("address_lockout", "unlock_address"),
        )
        .order_by("-id")
        .values_list("action", flat=True)
        .first()
    )
    return last == "address_lockout"


@receiver(user_locked_out)
def audit_lockout(sender: Any, request: Any, username: str, ip_address: str, **kwargs: Any) -> None:
    """Record a lockout once, alert the security unit, and end the account's sessions.

    Either the account reached the threshold (from any address), or the
    address did (across user names: password spraying), or both. The alert is
    on whatever is configured: in the application for every security
    administrator and auditor, by mail where a relay is configured, and in the log.
    """
    from .alerts import security_alert_raise
    from .lockout import address_failures, failure_limit
    from .selectors import is_locked

    actor, user = _attempted(username, request)
    limit = failure_limit()
    account_locked = bool(username) and (
        is_locked(user) if user is not None else _failures_of(username) >= limit
    )
    if account_locked and not _already_locked(username, user):
        if user is not None:
            from .services import end_sessions

            station_user = getattr(request, "user", None)
            if station_user is not None and station_user.is_authenticated and station_user.pk == user.pk:
                logout(request)  # this very session: end it cleanly, not from under the request
            end_sessions(user)
        with transaction.atomic():
            audit_append(
                actor=actor,
                action="lockout",
                record_type="accounts.user",
                record_id=user.pk if user else "",
                reason=f"account locked after {limit} failed logins or signatures; station {ip_address}",
            )
        security_alert_raise(
            kind="account_locked",
            message=f"Account {username!r} locked after {limit} failed logins or signatures (last from {ip_address}).",
            details={"username": username, "ip_address": ip_address, "threshold": limit},
        )
    if ip_address and address_failures(ip_address) >= limit and not _address_already_locked(ip_address):
        with transaction.atomic():
            audit_append(
                actor=actor,
                action="address_lockout",
                record_type="accounts.station",
                record_id=ip_address,
                reason=f"address blocked after {limit} failed logins or signatures across user names",
            )
        security_alert_raise(
            kind="address_locked",
            message=f"Station {ip_address} blocked after {limit} failed logins or signatures "
            f"(last user name tried: {username!r}).",
            details={"username": username, "ip_address": ip_address, "threshold": limit},
        )


def _failures_of(username: str) -> int:
    from axes.models import AccessAttempt
    from django.db.models import Sum

    total = AccessAttempt.objects.filter(username=username).aggregate(n=Sum("failures_since_start"))["n"]
    return int(total or 0)

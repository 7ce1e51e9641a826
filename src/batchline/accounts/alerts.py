"""Security alerts: in the application, by mail where a relay is configured, and in the log.

:func:`security_alert_raise` commits the alert in its own transaction (an
alert about a refused action must outlive the refusal) and mails it after the
commit, so a slow or failing relay never holds a lock or loses the alert.
Everyone who may read security events is told: security administrators and
auditors (permission ``accounts.view_security_events``), plus any address in
``BATCHLINE_SECURITY_ALERT_EMAILS``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from batchline.audit.services import SYSTEM, Actor, ReasonRequired, record_create, record_update

from .models import AlertSeverity, SecurityAlert, User

security_log = logging.getLogger("batchline.security")

RECIPIENT_PERMISSION = ("accounts", "view_security_events")


def recipients() -> list[User]:
    """Active people who read security events, by role or directly."""
    app_label, codename = RECIPIENT_PERMISSION
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None:
        return []
    return list(
        User.objects.filter(
            Q(groups__permissions=permission) | Q(user_permissions=permission), is_active=True
        )
        .distinct()
        .order_by("username")
    )


def mail_relay_configured() -> bool:
    return bool(settings.BATCHLINE_MAIL_RELAY)


def alert_addresses() -> list[str]:
    addresses = {u.email for u in recipients() if u.email}
    addresses.update(address for _, address in settings.ADMINS)
    return sorted(addresses)


def security_alert_raise(
    *,
    kind: str,
    message: str,
    details: dict[str, Any] | None = None,
    severity: str = AlertSeverity.CRITICAL,
    actor: Actor = SYSTEM,
) -> SecurityAlert:
    """Record, show, mail and log one alert; returns it once committed."""
    with transaction.atomic():
        alert = SecurityAlert(
            kind=kind,
            severity=severity,
            message=message,
            details=details or {},
            raised_at=timezone.now(),
        )
        record_create(alert, actor=actor, action="security_alert", reason=message)
        transaction.on_commit(lambda: _mail(alert))
    log = security_log.critical if severity == AlertSeverity.CRITICAL else security_log.warning
    log("SECURITY ALERT (%s): %s", kind, message)
    return alert


def _mail(alert: SecurityAlert) -> None:
    if not mail_relay_configured():
        return
    addresses = alert_addresses()
    if not addresses:
        return
    try:
        send_mail(
            subject=f"{settings.EMAIL_SUBJECT_PREFIX}{alert.get_severity_display()}: {alert.message[:120]}",
            message=(
                f"{alert.message}\n\nRaised at {alert.raised_at:%Y-%m-%d %H:%M:%S %Z} (alert #{alert.pk}, "
                f"kind {alert.kind}).\nDetails: {alert.details}\n\n"
                "Acknowledge it in Batchline under Security once it has been looked at."
            ),
            from_email=settings.SERVER_EMAIL,
            recipient_list=addresses,
        )
    except Exception:  # the alert is recorded and logged; a relay that fails is itself reported
        security_log.exception("security alert #%s could not be mailed to %s", alert.pk, addresses)


def alerts_open() -> list[SecurityAlert]:
    return list(SecurityAlert.objects.filter(acknowledged_at__isnull=True).order_by("-raised_at", "-id"))


def security_alert_acknowledge(
    *, actor: Actor, user: User, alert: SecurityAlert, comment: str
) -> SecurityAlert:
    """Someone who reads security events says what was done about it; audited, never deleted."""
    if not comment.strip():
        raise ReasonRequired(
            "Say what was looked at or done: the acknowledgement is kept in the audit trail."
        )
    if not user.has_perm("accounts.view_security_events"):
        raise PermissionError("Only security administrators and auditors acknowledge security alerts.")
    with transaction.atomic():
        locked = SecurityAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.acknowledged_at is not None:
            return locked
        record_update(
            locked,
            actor=actor,
            values={
                "acknowledged_by": user,
                "acknowledged_at": timezone.now(),
                "acknowledgement": comment.strip(),
            },
            reason=comment.strip(),
            action="acknowledge",
        )
    return locked

"""Lockout by account and by source address (21 CFR 11.300(d)); every unlock audited with who and why.

django-axes counts failed logins and signatures (both go through
``authenticate()``) per user name and per client address, and locks either
once it reaches the threshold of the GMP configuration in force
(``lockout_failures``): a guessed password is stopped per account, and
password spraying (one address trying many user names) is stopped per
address. So one address can lock out at most one account's worth of
attempts before it is itself blocked. Locks stay until a security
administrator lifts them with a reason (:func:`address_unlock`,
``services.user_unlock``); axes' own reset commands are wrapped to do the
same (``accounts/management/commands/axes_reset*.py``).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.db import transaction
from django.db.models import Sum

from batchline.audit.services import Actor, ReasonRequired, audit_append
from batchline.configuration.selectors import current

security_log = logging.getLogger("batchline.security")


def failure_limit(request: Any = None, credentials: Any = None) -> int:
    """axes' threshold (``AXES_FAILURE_LIMIT``): the GMP configuration's, read at each attempt."""
    return current().lockout_failures


def locked_addresses() -> list[str]:
    """Client addresses blocked after repeated failures across user names."""
    rows = (
        AccessAttempt.objects.values("ip_address")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=failure_limit())
    )
    return sorted(row["ip_address"] for row in rows if row["ip_address"])


def address_failures(ip_address: str) -> int:
    total = AccessAttempt.objects.filter(ip_address=ip_address).aggregate(n=Sum("failures_since_start"))["n"]
    return int(total or 0)


def address_unlock(*, actor: Actor, ip_address: str, reason: str) -> int:
    """Lift the block of a client address, with a reason; returns the attempts cleared."""
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Give a reason: it is kept in the audit trail.")
    ip_address = ip_address.strip()
    try:  # PostgreSQL keeps addresses as inet: anything else is refused here in words, not by the database
        ipaddress.ip_address(ip_address)
    except ValueError:
        from .services import AccountError

        raise AccountError(f"{ip_address[:60]!r} is not a station's address (IPv4 or IPv6).") from None
    with transaction.atomic():
        cleared = axes_reset(ip=ip_address)
        audit_append(
            actor=actor,
            action="unlock_address",
            record_type="accounts.station",
            record_id=ip_address,
            reason=reason,
        )
    security_log.warning("address %s unlocked by %s: %s", ip_address, actor.username, reason)
    return cleared

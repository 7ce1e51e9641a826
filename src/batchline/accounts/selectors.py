"""Reads about accounts shared by pages and the API."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.db.models import QuerySet, Sum

from batchline.configuration.selectors import current

from .models import User


def _locked() -> QuerySet[Any]:
    # Axes keeps one row per username, address and browser and adds them up when
    # it decides; so must we.
    return (
        AccessAttempt.objects.values("username")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=current().lockout_failures)
    )


def locked_usernames() -> list[str]:
    """Accounts locked after too many failed logins or signatures (21 CFR 11.300(d))."""
    return sorted(row["username"] for row in _locked())


def is_locked(user: User) -> bool:
    return _locked().filter(username=user.username).exists()

"""Reads about accounts shared by pages and the API."""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings

from .models import User


def locked_usernames() -> list[str]:
    """Accounts locked after too many failed logins or signatures (21 CFR 11.300(d))."""
    return sorted(
        set(
            AccessAttempt.objects.filter(failures_since_start__gte=settings.AXES_FAILURE_LIMIT).values_list(
                "username", flat=True
            )
        )
    )


def is_locked(user: User) -> bool:
    return AccessAttempt.objects.filter(
        username=user.username, failures_since_start__gte=settings.AXES_FAILURE_LIMIT
    ).exists()

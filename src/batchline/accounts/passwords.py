"""Password rules beyond Django's validators: history and expiry (21 CFR 11.300(b))."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError


class PasswordHistoryValidator:
    """Refuse the current password and the last ``PASSWORD_HISTORY`` ones."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None or user.pk is None:
            return
        if user.password and user.check_password(password):
            raise ValidationError(
                "The new password must differ from the current one.", code="password_reused"
            )
        depth = settings.PASSWORD_HISTORY
        if depth <= 0:
            return
        for old in user.password_history.all()[:depth]:
            if check_password(password, old.password):
                raise ValidationError(
                    f"This password was used recently; choose one not among your last {depth}.",
                    code="password_reused",
                )

    def get_help_text(self) -> str:
        return f"Your password cannot be one of your last {settings.PASSWORD_HISTORY} passwords."


def password_expired(user: Any, *, now: dt.datetime) -> bool:
    days = settings.PASSWORD_MAX_AGE_DAYS
    if days <= 0 or user.password_changed_at is None:
        return False
    return now - user.password_changed_at > dt.timedelta(days=days)

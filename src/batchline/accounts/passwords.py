"""Password rules: length, history and expiry from the GMP configuration in force (21 CFR 11.300(b)).

The environment (``BATCHLINE_PASSWORD_*``) only seeds the first configuration
version; a change takes a QA approver's approval and applies at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError

from batchline.configuration.selectors import current


class PasswordHistoryValidator:
    """Refuse the current password and the last ``PASSWORD_HISTORY`` ones."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None or user.pk is None:
            return
        if user.password and user.check_password(password):
            raise ValidationError(
                "The new password must differ from the current one.", code="password_reused"
            )
        depth = current().password_history
        if depth <= 0:
            return
        for old in user.password_history.all()[:depth]:
            if check_password(password, old.password):
                raise ValidationError(
                    f"This password was used recently; choose one not among your last {depth}.",
                    code="password_reused",
                )

    def get_help_text(self) -> str:
        return f"Your password cannot be one of your last {current().password_history} passwords."


class ConfiguredMinimumLengthValidator:
    """At least the configuration's ``password_min_length`` characters."""

    def validate(self, password: str, user: Any = None) -> None:
        length = current().password_min_length
        if len(password) < length:
            raise ValidationError(
                f"This password is too short: it must have at least {length} characters.",
                code="password_too_short",
            )

    def get_help_text(self) -> str:
        return f"Your password must have at least {current().password_min_length} characters."


def password_expired(user: Any, *, now: dt.datetime) -> bool:
    days = current().password_max_age_days
    if days <= 0 or user.password_changed_at is None:
        return False
    return now - user.password_changed_at > dt.timedelta(days=days)

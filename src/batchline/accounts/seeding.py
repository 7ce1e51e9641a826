"""Accounts for demo and bench databases: ready to sign, with a known password.

The product never lets one person set another's password or grant a GMP
signing role alone (accounts/enrolment.py, accounts/grants.py). Data for a
demonstration or a benchmark needs people who can sign at once; this makes
them, audited as seeded, and refuses on a production installation
(``BATCHLINE_PRODUCTION=1``).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from batchline.audit.services import Actor, record_update

from . import grants
from .enrolment import void_open_credentials
from .models import User
from .services import user_create


def _refuse_in_production() -> None:
    if settings.PRODUCTION:
        raise ImproperlyConfigured(
            "Seeded accounts (known passwords, roles without a QA approval) are for demo and bench "
            "databases only, never on a production installation."
        )


def password_seed(*, actor: Actor, user: User, password: str, reason: str) -> User:
    """Give a seeded account a known password, changed and acknowledged, so it signs at once."""
    _refuse_in_production()
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        void_open_credentials(locked, actor=actor, reason=reason)
        now = timezone.now()
        record_update(
            locked,
            actor=actor,
            values={
                "password": make_password(password),
                "must_change_password": False,
                "password_changed_at": now,
                "esig_acknowledged_at": now,
            },
            action="seed",
            reason=reason,
        )
    return locked


def account_seed(
    *,
    actor: Actor,
    username: str,
    full_name: str,
    roles: Iterable[str],
    password: str,
    reason: str = "seeded",
) -> User:
    """A bench or demo account with ``roles`` set directly (no two-person grant) and a known password."""
    _refuse_in_production()
    roles = grants.check_roles(roles)
    user, _ = user_create(actor=actor, username=username, full_name=full_name, reason=reason)
    with transaction.atomic():
        grants.refuse_incompatible(user, roles)
        if roles:
            grants.set_groups(user, roles)
            record_update(
                user,
                actor=actor,
                values={"is_staff": grants.admin_site_access(roles)},
                extra_before={"roles": []},
                action="seed",
                reason=reason,
            )
    return password_seed(actor=actor, user=user, password=password, reason=reason)

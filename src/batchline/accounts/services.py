"""Account services: every change audited in its own transaction (Part 11 §11.10(e), §11.300).

Services take keyword arguments, open the transaction, lock what they change
and write the change with its audit entry. Views, the API, the admin and the
commands all call these.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from axes.utils import reset as axes_reset
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from batchline.audit.services import (
    SYSTEM,
    Actor,
    ReasonRequired,
    audit_append,
    record_create,
    record_update,
)
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply

from .models import ApiToken, PasswordHistory, RoleChange, User
from .passwords import password_expired
from .roles import ROLES
from .selectors import is_locked

security_log = logging.getLogger("batchline.security")


class AccountError(ValueError):
    """A refused account action; the message is for the person in front of the screen."""


def _require_reason(reason: str) -> str:
    if not reason.strip():
        raise ReasonRequired("Give a reason: it is kept in the audit trail.")
    return reason.strip()


def _check_roles(roles: Iterable[str]) -> list[str]:
    roles = sorted(set(roles))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise AccountError(f"Unknown role: {', '.join(unknown)}")
    return roles


def one_time_password() -> str:
    # Long and random: it only has to survive until the user's first login.
    return "-".join(secrets.token_urlsafe(6) for _ in range(3))


def admin_site_access(roles: Iterable[str]) -> bool:
    """The Django admin (master data) is for engineers and administrators only."""
    return "administrator" in roles


def _set_groups(user: User, roles: list[str]) -> None:
    user.groups.set(Group.objects.filter(name__in=roles))
    # The prefetch cache, if any, now lies about the roles.
    getattr(user, "_prefetched_objects_cache", {}).pop("groups", None)


def user_create(
    *,
    actor: Actor,
    username: str,
    full_name: str,
    email: str = "",
    roles: Iterable[str] = (),
    reason: str = "",
) -> tuple[User, str]:
    """Create a personal account with a one-time password the user must change.

    Returns the user and the one-time password, to be handed over once. The
    administrator never chooses it and it cannot be used to sign (P11-21).
    """
    username = username.strip()
    full_name = full_name.strip()
    if not username or not full_name:
        raise AccountError("A user needs a username and a printed full name.")
    roles = _check_roles(roles)
    password = one_time_password()
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            # Usernames are never reused, even those of deactivated accounts (P11-15).
            raise AccountError(f"The username {username!r} exists or existed; user IDs are never reused.")
        user = User(username=username, full_name=full_name, email=email.strip(), must_change_password=True)
        user.set_password(password)
        record_create(user, actor=actor, reason=reason)
        if roles:
            _set_groups(user, roles)
            record_update(
                user,
                actor=actor,
                values={"is_staff": admin_site_access(roles)},
                extra_before={"roles": []},
                reason=reason,
                action="roles",
            )
    return user, password


def user_create_bootstrap(
    *, username: str, email: str, password: str | None, roles: Iterable[str] = (), **extra: Any
) -> User:
    """``createsuperuser``: the first administrator, created from the command line.

    The password typed at the console still has to be changed at first login
    before that person can sign.
    """
    full_name = extra.pop("full_name", "") or username
    user, _ = user_create(
        actor=Actor(None, "cli", "Command line", "cli"),
        username=username,
        full_name=full_name,
        email=email,
        roles=roles,
        reason="created from the command line",
    )
    if password:
        with transaction.atomic():
            record_update(
                user,
                actor=SYSTEM,
                values={"password": make_password(password)},
                action="password_set",
                reason="initial password typed at the command line; must be changed at first login",
            )
    return user


def _lock(user: User) -> User:
    return User.objects.select_for_update().get(pk=user.pk)


def user_update(*, actor: Actor, user: User, full_name: str, email: str, reason: str) -> User:
    with transaction.atomic():
        locked = _lock(user)
        record_update(
            locked,
            actor=actor,
            values={"full_name": full_name.strip(), "email": email.strip()},
            reason=reason,
            reason_required=True,
        )
    return locked


def end_sessions(user: User) -> None:
    for session in Session.objects.filter(expire_date__gt=timezone.now()):
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()


def user_deactivate(*, actor: Actor, user: User, reason: str) -> User:
    """Deactivate (never delete) an account, end its sessions and revoke its tokens."""
    reason = _require_reason(reason)
    if actor.id == user.pk:
        raise AccountError("You cannot deactivate your own account.")
    with transaction.atomic():
        locked = _lock(user)
        if not locked.is_active:
            raise AccountError(f"{locked.username} is already deactivated.")
        # Every row lock before the first audit entry: the audit append takes the
        # chain lock, and locks taken in one order everywhere cannot deadlock.
        tokens = list(ApiToken.objects.select_for_update().filter(user=locked, revoked_at__isnull=True))
        record_update(locked, actor=actor, values={"is_active": False}, reason=reason, action="deactivate")
        _revoke_tokens(locked, actor=actor, reason=reason, tokens=tokens)
        end_sessions(locked)
    return locked


def _revoke_tokens(user: User, *, actor: Actor, reason: str, tokens: list[ApiToken] | None = None) -> None:
    if tokens is None:
        tokens = list(ApiToken.objects.select_for_update().filter(user=user, revoked_at__isnull=True))
    for token in tokens:
        record_update(
            token, actor=actor, values={"revoked_at": timezone.now()}, reason=reason, action="revoke"
        )


def user_reactivate(*, actor: Actor, user: User, reason: str) -> tuple[User, str]:
    """Reactivate an account with a new one-time password."""
    reason = _require_reason(reason)
    with transaction.atomic():
        locked = _lock(user)
        if locked.is_active:
            raise AccountError(f"{locked.username} is active.")
        password = one_time_password()
        record_update(
            locked,
            actor=actor,
            values={"is_active": True, "must_change_password": True, "password": make_password(password)},
            reason=reason,
            action="reactivate",
        )
    return locked, password


def user_reset_password(*, actor: Actor, user: User, reason: str) -> str:
    """Issue a one-time password; the user must change it before signing (P11-21)."""
    reason = _require_reason(reason)
    with transaction.atomic():
        locked = _lock(user)
        password = one_time_password()
        record_update(
            locked,
            actor=actor,
            values={"must_change_password": True, "password": make_password(password)},
            reason=reason,
            action="password_reset",
        )
        _revoke_tokens(locked, actor=actor, reason=reason)
        axes_reset(username=locked.username)
        end_sessions(locked)
    return password


def user_unlock(*, actor: Actor, user: User, reason: str) -> None:
    reason = _require_reason(reason)
    with transaction.atomic():
        axes_reset(username=user.username)
        audit_append(
            actor=actor,
            action="unlock",
            record_type="accounts.user",
            record_id=user.pk,
            reason=reason,
        )
    security_log.warning("account %s unlocked by %s: %s", user.username, actor.username, reason)


def user_set_roles(
    *, actor: Actor, user: User, roles: Iterable[str], reason: str, signer: VerifiedSigner, comment: str = ""
) -> RoleChange:
    """Change a user's roles under the administrator's e-signature (Annex 11 §12.3)."""
    reason = _require_reason(reason)
    roles = _check_roles(roles)
    if signer.user.pk != actor.id:
        raise AccountError("Role changes are signed by the administrator who makes them.")
    if actor.id == user.pk:
        raise AccountError("You cannot change your own roles.")
    with transaction.atomic():
        locked = _lock(user)
        before = locked.role_names
        if before == roles:
            raise AccountError("These are already the user's roles.")
        _set_groups(locked, roles)
        record_update(
            locked,
            actor=actor,
            values={"is_staff": admin_site_access(roles)},
            extra_before={"roles": before},
            reason=reason,
            action="roles",
        )
        change = RoleChange(
            user=locked,
            roles_before=before,
            roles_after=roles,
            reason=reason,
            changed_at=timezone.now(),
            changed_by=signer.user,
        )
        record_create(change, actor=actor, reason=reason)
        signature_apply(
            signer=signer,
            meaning=Meaning.APPROVED,
            record=change,
            content=change.signed_content(),
            actor=actor,
            comment=comment,
        )
    return change


def password_change(
    *, user: User, old_password: str, new_password: str, actor: Actor, request: HttpRequest
) -> None:
    """The user's own change; clears the one-time flag and restarts the expiry clock.

    The current password is checked through ``authenticate()``, so a wrong one
    counts towards lockout and is audited like a failed login: an unattended,
    logged-in station is no place to guess a password (21 CFR 11.300(d)).
    """
    request._batchline_reauth = "password_change_failed"  # type: ignore[attr-defined]
    try:
        confirmed = authenticate(request, username=user.get_username(), password=old_password)
    finally:
        request._batchline_reauth = ""  # type: ignore[attr-defined]
    if confirmed is None or confirmed.pk != user.pk:
        raise AccountError("The current password is wrong (or the account is locked).")
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages)) from exc
    with transaction.atomic():
        locked = _lock(user)
        PasswordHistory.objects.create(user=locked, password=locked.password, created_at=timezone.now())
        record_update(
            locked,
            actor=actor,
            values={
                "must_change_password": False,
                "password_changed_at": timezone.now(),
                "password": make_password(new_password),
            },
            action="password_change",
        )
    user.refresh_from_db()


def esig_acknowledge(*, user: User, actor: Actor) -> User:
    """Record, once, that the user's e-signature binds like a handwritten one (P11-10)."""
    with transaction.atomic():
        locked = _lock(user)
        if locked.esig_acknowledged_at is None:
            record_update(
                locked,
                actor=actor,
                values={"esig_acknowledged_at": timezone.now()},
                action="esig_acknowledge",
                reason="acknowledged: my electronic signature is the legally binding equivalent of my handwritten signature",
            )
    user.refresh_from_db()
    return locked


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def token_create(*, actor: Actor, user: User, name: str, expires_at: Any = None) -> tuple[ApiToken, str]:
    """A personal API token; the raw value is returned once and never stored."""
    name = name.strip()
    if not name:
        raise AccountError("Name the token after the machine or script that will use it.")
    if expires_at is not None and (timezone.is_naive(expires_at) or expires_at <= timezone.now()):
        raise AccountError("A token's expiry is a time in the future, with its time zone.")
    raw = "bl_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken(
            user=user,
            name=name,
            prefix=raw[:10],
            key_hash=_token_hash(raw),
            created_at=timezone.now(),
            expires_at=expires_at,
        )
        record_create(token, actor=actor)
    return token, raw


def token_revoke(*, actor: Actor, token: ApiToken, reason: str = "") -> ApiToken:
    with transaction.atomic():
        locked = ApiToken.objects.select_for_update().get(pk=token.pk)
        if locked.revoked_at is not None:
            raise AccountError("This token is already revoked.")
        record_update(
            locked,
            actor=actor,
            values={"revoked_at": timezone.now()},
            reason=reason,
            action="revoke",
        )
    return locked


def token_user(raw: str) -> User | None:
    """The active user behind a raw token, or None. Marks the token as used."""
    if not raw.startswith("bl_"):
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=_token_hash(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at or (token.expires_at and token.expires_at <= now):
        return None
    user = token.user
    if not user.is_active or user.must_change_password or password_expired(user, now=now) or is_locked(user):
        return None
    token.last_used_at = now
    token.save(update_fields=["last_used_at"])
    return token.user

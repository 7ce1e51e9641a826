"""Account services: every change audited in its own transaction (Part 11 §11.10(e), §11.300).

Services take keyword arguments, open the transaction, lock what they change
and write the change with its audit entry. Views, the API, the admin and the
commands all call these.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from axes.utils import reset as axes_reset
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from batchline.approvals.models import ChangeRequest
from batchline.audit.services import (
    SYSTEM,
    Actor,
    ReasonRequired,
    audit_append,
    record_create,
    record_update,
)
from batchline.configuration.definitions import GMP_SIGNING_ROLES
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply

from . import grants
from .enrolment import Issued, credential_issue, credential_mail, void_open_credentials
from .models import ApiToken, PasswordHistory, RoleChange, TokenScope, User
from .passwords import password_expired
from .roles import role_label
from .selectors import is_locked

security_log = logging.getLogger("batchline.security")


class AccountError(ValueError):
    """A refused account action; the message is for the person in front of the screen."""


def _require_reason(reason: str) -> str:
    if not reason.strip():
        raise ReasonRequired("Give a reason: it is kept in the audit trail.")
    return reason.strip()


def user_create(
    *,
    actor: Actor,
    username: str,
    full_name: str,
    email: str = "",
    roles: Iterable[str] = (),
    reason: str = "",
    signer: VerifiedSigner | None = None,
) -> tuple[User, Issued]:
    """Create a personal account with no usable password; its credential reaches the person (P11-21).

    Returns the user and what the administrator may know of the credential
    (:mod:`batchline.accounts.enrolment`): mailed to the person's own address,
    or an enrolment code redeemed only with a second person's identity check.
    Roles without GMP signing authority are set at once; GMP signing roles are
    requested under ``signer`` (the administrator, meaning "requested") and
    take effect only when a QA approver approves (:mod:`batchline.accounts.grants`).
    Call :func:`credential_deliver` after the transaction to mail the credential.
    """
    username = username.strip()
    full_name = full_name.strip()
    if not username or not full_name:
        raise AccountError("A user needs a username and a printed full name.")
    try:
        roles = grants.check_roles(roles)
    except grants.RolesRefused as exc:
        raise AccountError(str(exc)) from exc
    gmp = grants.gmp_roles_added([], roles)
    if gmp and signer is None:
        raise AccountError(
            f"{', '.join(role_label(r) for r in gmp)} carr{'ies' if len(gmp) == 1 else 'y'} GMP signing "
            "authority: sign the request with your user ID and password; a QA approver then approves it."
        )
    direct = [r for r in roles if r not in gmp]
    with transaction.atomic():
        if User.objects.filter(username__iexact=username).exists():
            # Usernames are never reused, even those of deactivated accounts (P11-15).
            raise AccountError(f"The username {username!r} exists or existed; user IDs are never reused.")
        user = User(username=username, full_name=full_name, email=email.strip(), must_change_password=True)
        user.set_unusable_password()
        try:
            grants.refuse_incompatible(user, roles)
        except grants.RolesRefused as exc:
            raise AccountError(str(exc)) from exc
        record_create(user, actor=actor, reason=reason)
        if direct:
            grants.set_groups(user, direct)
            record_update(
                user,
                actor=actor,
                values={"is_staff": grants.admin_site_access(direct)},
                extra_before={"roles": []},
                reason=reason,
                action="roles",
            )
        issued = credential_issue(actor=actor, user=user, purpose="new account", reason=reason)
        if gmp:
            try:
                grants.role_grant_request(
                    actor=actor,
                    signer=signer,
                    user=user,
                    roles=roles,
                    reason=reason or f"roles of the new account {username}",
                )
            except grants.RolesRefused as exc:
                raise AccountError(str(exc)) from exc
    return user, issued


def credential_deliver(issued: Issued) -> Issued:
    """Mail a credential issued by :func:`user_create`, :func:`user_reset_password` or :func:`user_reactivate`.

    Call once the issuing transaction has committed: the code is mailed and forgotten.
    """
    return credential_mail(issued)


def user_create_bootstrap(
    *, username: str, email: str, password: str | None, roles: Iterable[str] = (), **extra: Any
) -> User:
    """``createsuperuser``: the first administrator, created from the command line.

    The password typed at the console (by that person, at the server) still
    has to be changed at first login before they can sign. Without one, the
    account gets a credential like any other: mailed where a relay is
    configured, else an enrolment code redeemed with a second person's check.
    """
    full_name = extra.pop("full_name", "") or username
    user, issued = user_create(
        actor=Actor(None, "cli", "Command line", "cli"),
        username=username,
        full_name=full_name,
        email=email,
        roles=roles,
        reason="created from the command line",
    )
    if not password:
        credential_deliver(issued)
    else:
        with transaction.atomic():
            void_open_credentials(user, actor=SYSTEM, reason="the password was typed at the command line")
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
    """Change a printed name or address. Another person's address is not changed while they sign GMP records.

    Credentials are mailed to that address: an administrator who could point
    it at themselves and then reset the password would receive the person's
    credential (the "reset-and-sign" attack of issue 10).
    """
    with transaction.atomic():
        locked = _lock(user)
        if (
            email.strip() != locked.email
            and actor.id != locked.pk
            and (set(locked.role_names) & set(GMP_SIGNING_ROLES) or grants.open_grant(locked))
        ):
            raise AccountError(
                f"{locked.printed_name} holds or is being granted GMP signing authority: their mail address "
                "receives their credentials, so only they change it (or their signing roles are removed first)."
            )
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


def user_reactivate(*, actor: Actor, user: User, reason: str) -> tuple[User, Issued]:
    """Reactivate an account; a new credential reaches the person (never the administrator)."""
    reason = _require_reason(reason)
    with transaction.atomic():
        locked = _lock(user)
        if locked.is_active:
            raise AccountError(f"{locked.username} is active.")
        record_update(locked, actor=actor, values={"is_active": True}, reason=reason, action="reactivate")
        issued = credential_issue(actor=actor, user=locked, purpose="reactivation", reason=reason)
    return locked, issued


def user_reset_password(*, actor: Actor, user: User, reason: str) -> Issued:
    """Void the password and issue a credential that reaches the person, not the administrator (P11-21).

    The old password stops working at once, the person's sessions end and
    their tokens are revoked; the account stays locked, if it was, until the
    person redeems the credential.
    """
    reason = _require_reason(reason)
    if actor.id == user.pk:
        raise AccountError("Change your own password on the password page.")
    with transaction.atomic():
        locked = _lock(user)
        tokens = list(ApiToken.objects.select_for_update().filter(user=locked, revoked_at__isnull=True))
        issued = credential_issue(actor=actor, user=locked, purpose="password reset", reason=reason)
        audit_append(
            actor=actor,
            action="password_reset",
            record_type="accounts.user",
            record_id=locked.pk,
            reason=reason,
        )
        _revoke_tokens(locked, actor=actor, reason=reason, tokens=tokens)
        end_sessions(locked)
    return issued


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
) -> RoleChange | ChangeRequest:
    """Change a user's roles under the administrator's e-signature (Annex 11 §12.3).

    A change that grants GMP signing authority becomes a signed request (the
    signer's meaning is "requested") that a QA approver approves; any other
    change, a removal above all, takes effect at once, signed "approved".
    Roles the GMP configuration keeps apart are refused either way.
    """
    reason = _require_reason(reason)
    try:
        roles = grants.check_roles(roles)
    except grants.RolesRefused as exc:
        raise AccountError(str(exc)) from exc
    if signer.user.pk != actor.id:
        raise AccountError("Role changes are signed by the administrator who makes them.")
    if actor.id == user.pk:
        raise AccountError("You cannot change your own roles.")
    if user.role_names == roles:
        raise AccountError("These are already the user's roles.")
    try:
        if grants.needs_approval(user, roles):
            return grants.role_grant_request(
                actor=actor, signer=signer, user=user, roles=roles, reason=reason, comment=comment
            )
        grants.refuse_incompatible(user, roles)
    except grants.RolesRefused as exc:
        raise AccountError(str(exc)) from exc
    with transaction.atomic():
        locked = _lock(user)
        before = locked.role_names
        if before == roles:
            raise AccountError("These are already the user's roles.")
        if grants.needs_approval(locked, roles):
            raise AccountError("The user's roles changed meanwhile: look again and repeat the change.")
        grants.set_groups(locked, roles)
        record_update(
            locked,
            actor=actor,
            values={"is_staff": grants.admin_site_access(roles)},
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


TOKEN_DAYS = 90
TOKEN_MAX_DAYS = 365


def token_create(
    *,
    actor: Actor,
    user: User,
    name: str,
    expires_at: Any = None,
    scope: str = TokenScope.READ,
    reason: str = "",
) -> tuple[ApiToken, str]:
    """A personal API token; the raw value is returned once and never stored.

    Every token expires: after 90 days unless an earlier time (at most a year
    ahead) is chosen. Its scope is read-only unless read-write is asked for.
    """
    name = name.strip()
    if not name:
        raise AccountError("Name the token after the machine or script that will use it.")
    if scope not in TokenScope.values:
        raise AccountError("A token's scope is 'read' (read only) or 'write' (read and write).")
    now = timezone.now()
    if expires_at is None:
        expires_at = now + dt.timedelta(days=TOKEN_DAYS)
    if timezone.is_naive(expires_at) or expires_at <= now:
        raise AccountError("A token's expiry is a time in the future, with its time zone.")
    if expires_at > now + dt.timedelta(days=TOKEN_MAX_DAYS):
        raise AccountError(f"A token expires within {TOKEN_MAX_DAYS} days at most.")
    raw = "bl_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken(
            user=user,
            name=name,
            scope=scope,
            prefix=raw[:10],
            key_hash=_token_hash(raw),
            created_at=now,
            expires_at=expires_at,
        )
        record_create(token, actor=actor, reason=reason)
    return token, raw


# The roles of machines: an account holding only these is an interface, never a person.
INTERFACE_ROLES = frozenset({"erp_interface", "lims_interface"})


def is_interface(user: User) -> bool:
    roles = set(user.role_names)
    return bool(roles) and roles <= INTERFACE_ROLES and not user.has_usable_password()


def interface_token_issue(
    *, actor: Actor, user: User, name: str, reason: str, days: int = TOKEN_DAYS
) -> tuple[ApiToken, str]:
    """A read-write token for an interface's account (a LIMS's), issued by a security administrator.

    A machine cannot log in to make its own token, so an administrator issues it, on the server's
    command line (``batchline accounts interface-token``), where the raw value goes into a file for
    the interface's configuration and is never shown on a screen. The token lets the machine do
    only what its roles allow, and those were granted by two people (accounts.grants); the issue
    is audited with its reason, and the account stays one that no person can use: its open
    credentials are voided and it keeps no password (docs/security.md, interface accounts).
    """
    reason = _require_reason(reason)
    if not 1 <= days <= TOKEN_MAX_DAYS:
        raise AccountError(f"An interface token is valid for 1 to {TOKEN_MAX_DAYS} days.")
    if not actor.id or not User.objects.filter(pk=actor.id, is_active=True).exists():
        raise AccountError("An interface token is issued by a named security administrator.")
    with transaction.atomic():
        locked = _lock(user)
        if not locked.is_active:
            raise AccountError(f"{locked.username} is deactivated: it gets no token.")
        if not is_interface(locked):
            raise AccountError(
                f"{locked.username} is not an interface account (only interface roles, no password): "
                "a person makes their own tokens after logging in."
            )
        if locked.pk == actor.id:
            raise AccountError("An interface token is issued by a person, not by the interface itself.")
        void_open_credentials(locked, actor=actor, reason=f"interface account: {reason}")
        if locked.must_change_password:
            record_update(
                locked,
                actor=actor,
                values={"must_change_password": False},
                reason=f"interface account, its credential a token: {reason}",
                action="interface",
            )
        token, raw = token_create(
            actor=actor,
            user=locked,
            name=name,
            scope=TokenScope.WRITE,
            expires_at=timezone.now() + dt.timedelta(days=days),
            reason=reason,
        )
    return token, raw


def token_expiry(token: ApiToken) -> dt.datetime:
    """When a token stops working (a token made before expiry was mandatory: 90 days after it was made)."""
    return token.expires_at or token.created_at + dt.timedelta(days=TOKEN_DAYS)


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
    token = token_of(raw)
    return token.user if token is not None else None


def token_of(raw: str) -> ApiToken | None:
    """The usable token behind a raw value (not revoked, not expired, its owner able to work), or None."""
    if not raw.startswith("bl_"):
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=_token_hash(raw)).first()
    now = timezone.now()
    if token is None or token.revoked_at or token_expiry(token) <= now:
        return None
    user = token.user
    if not user.is_active or user.must_change_password or password_expired(user, now=now) or is_locked(user):
        return None
    token.last_used_at = now
    token.save(update_fields=["last_used_at"])
    return token

"""One signing service for every screen, the API and the commands.

Signing has two halves. :func:`signer_authenticate` re-authenticates the
signer and runs outside any transaction, so a failed attempt is committed and
counts towards lockout even though the action itself is refused (21 CFR
11.300(d)). :func:`signature_apply` then runs inside the caller's
transaction and writes the signature with the change it signs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from batchline.audit.chain import in_action_transaction
from batchline.audit.services import Actor, audit_append, record_create, record_type_of
from batchline.rules import bindings, canonical

from .models import Meaning, Method, Signature

security_log = logging.getLogger("batchline.security")

SESSION_KEY = "batchline_esig_signer"


class SignatureRefused(Exception):
    """Signing was refused; the message says why in plain words."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class VerifiedSigner:
    """A signer who has just re-authenticated. Only :func:`signer_authenticate` makes one."""

    user: Any
    method: str
    witness: bool
    # The station's session, which counts as "signed in" once a signature by this signer commits.
    session: Any = None
    # What the signer typed in the dialog's optional comment: kept with the signature and in the trail.
    comment: str = ""


def signing_session_open(signer: VerifiedSigner) -> None:
    """Call after the signed action has committed: later signings in this session need only the password.

    Only a signature that really committed opens the continuous signing session
    (P11-19); a refused or rolled-back action leaves it closed. Witnesses and
    API clients never open one.
    """
    if signer.session is not None:
        signer.session[SESSION_KEY] = signer.user.pk


def username_required(request: HttpRequest | None, *, witness: bool = False) -> bool:
    """Whether this signing needs the user ID as well as the password (P11-19, P11-20).

    Inside one continuous session, after its first signing, the password is
    enough; a witness at someone else's station, an API call (no session) and
    the first signing of a session always give both.
    """
    if witness or request is None or not hasattr(request, "session"):
        return True
    if request.path.startswith("/api/"):  # machine clients: no continuous session to lean on
        return True
    user = getattr(request, "user", None)
    return not (user and user.is_authenticated and request.session.get(SESSION_KEY) == user.pk)


def _refuse_and_record(request: HttpRequest, username: str, code: str, message: str) -> SignatureRefused:
    with transaction.atomic():
        user = get_user_model().objects.filter(username=username).first()
        audit_append(
            actor=Actor(
                user.pk if user else None,
                username,
                user.printed_name if user else "(unknown)",
                _via(request),
            ),
            action="signature_refused",
            record_type="accounts.user",
            record_id=user.pk if user else "",
            changes={},
            reason=message,
        )
    return SignatureRefused(message, code=code)


def _via(request: HttpRequest | None) -> str:
    if request is None:
        return "cli"
    return "api" if request.path.startswith("/api/") else "web"


MAX_COMMENT = 2000  # as the API's signature comment


def signer_authenticate(
    *,
    request: HttpRequest,
    password: str,
    meaning: str,
    username: str | None = None,
    witness: bool = False,
) -> VerifiedSigner:
    """Re-authenticate a signer for one signature with ``meaning``.

    ``request.user`` is the person at the station. Without ``witness`` the
    signer must be that person; with it, a second person signs at this
    station and always gives user ID and password. Raises
    :class:`SignatureRefused` with the reason; wrong passwords count towards
    lockout like failed logins.
    """
    if in_action_transaction():
        raise RuntimeError("signer_authenticate runs before the transaction, so failures are kept")
    # Every signing dialog names its comment field so (signatures/_dialog.html). Kept whole or refused
    # (before the password is tried), never cut short.
    comment = (request.POST.get("signer_comment") or "").strip()
    if len(comment) > MAX_COMMENT:
        raise SignatureRefused(
            f"The comment is {len(comment):,} characters long: at most {MAX_COMMENT:,}. Nothing was signed.",
            code="COMMENT_TOO_LONG",
        )
    station_user = getattr(request, "user", None)
    full = username_required(request, witness=witness)
    if full:
        if not username:
            raise SignatureRefused("Enter your user ID and password to sign.", code="USERNAME_REQUIRED")
        username = username.strip()
    else:
        username = station_user.get_username()  # type: ignore[union-attr]
    if not password:
        raise SignatureRefused("Enter your password to sign.", code="PASSWORD_REQUIRED")
    if meaning not in Meaning.values:
        raise SignatureRefused(f"{meaning!r} is not a signature meaning.", code="UNKNOWN_MEANING")
    if station_user is not None and station_user.is_authenticated:
        is_station_user = username == station_user.get_username()
        if witness and is_station_user:
            raise SignatureRefused(
                "A witness must be a different person from the one at this station.",
                code="WITNESS_SAME_PERSON",
            )
        if not witness and not is_station_user:
            # Recorded against the person logged in, naming the identity tried (never under the victim's name).
            with transaction.atomic():
                audit_append(
                    actor=Actor.of(station_user, via=_via(request)),
                    action="sign_as_other_refused",
                    record_type="accounts.user",
                    record_id=station_user.pk,
                    changes={},
                    reason=f"{station_user.get_username()} tried to sign as {username!r}; refused",
                )
            raise SignatureRefused(
                f"You are logged in as {station_user.get_username()}: you can only sign as yourself. "
                "A second person signs as witness.",
                code="SIGN_AS_OTHER",
            )

    request._batchline_reauth = "signature_failed"  # type: ignore[attr-defined]  # the failure handler says so
    try:
        user = authenticate(request, username=username, password=password)
    finally:
        request._batchline_reauth = ""  # type: ignore[attr-defined]
    if user is None:
        # The failed attempt is already audited and counted by the login-failed handler.
        raise SignatureRefused(
            "User ID or password is wrong, or the account is locked. Nothing was signed.",
            code="BAD_CREDENTIALS",
        )
    problem = signing_blocker(user, meaning)
    if problem:
        raise _refuse_and_record(request, username, problem[0], problem[1])
    return VerifiedSigner(
        user=user,
        method=Method.ID_AND_PASSWORD if full else Method.PASSWORD,
        witness=witness,
        session=None if witness or request.path.startswith("/api/") else getattr(request, "session", None),
        comment=comment,
    )


def signing_blocker(user: Any, meaning: str) -> tuple[str, str] | None:
    """Why ``user`` may not sign with ``meaning`` now, or None."""
    from batchline.accounts.passwords import password_expired

    if user.esig_acknowledged_at is None:
        return (
            "ESIG_NOT_ACKNOWLEDGED",
            "Signing is not enabled yet: first acknowledge that your electronic signature "
            "is the legally binding equivalent of your handwritten signature.",
        )
    if user.must_change_password:
        return (
            "PASSWORD_CHANGE_REQUIRED",
            "Your password was issued by an administrator: change it before you sign.",
        )
    if password_expired(user, now=timezone.now()):
        return ("PASSWORD_EXPIRED", "Your password has expired: change it before you sign.")
    if not user.has_perm(f"signatures.sign_{meaning}"):
        return (
            "NOT_AUTHORISED",
            f"Your roles do not allow you to sign as '{Meaning(meaning).label}'.",
        )
    return None


def signature_fields(signature: Signature) -> dict[str, Any]:
    """A signature as the plain dict ``rules.bindings`` judges (the same fields the archive holds)."""
    return {
        "id": signature.pk,
        **{k: getattr(signature, k) for k in bindings.BOUND_FIELDS},
        "signed_at": canonical.normalise(signature.signed_at),
        "binding_hash": signature.binding_hash,
        "manifestation": signature.manifestation(),
    }


def binding_hash(signature: Signature, content: Any) -> str:
    """SHA-256 over exactly what was signed and every part of the manifestation (``rules.bindings``).

    Who (id, user ID, printed name), when, with what meaning, comment, method
    and witness flag, and the signed record's content: changing any of them
    afterwards breaks the binding (21 CFR 11.70).
    """
    return bindings.binding_hash({k: getattr(signature, k) for k in bindings.BOUND_FIELDS}, content)


def signature_apply(
    *,
    signer: VerifiedSigner,
    meaning: str,
    record: models.Model,
    content: Any,
    actor: Actor,
    comment: str = "",
    comment_required: bool = False,
) -> Signature:
    """Write the signature for ``record`` inside the caller's transaction, with its audit entry."""
    if not in_action_transaction():
        raise RuntimeError("a signature is written in the same transaction as what it signs")
    comment = comment or signer.comment  # the dialog's comment where the action has none of its own
    if comment_required and not comment.strip():
        raise SignatureRefused("A comment is required for this signature.", code="COMMENT_REQUIRED")
    user = signer.user
    now = timezone.now()
    rtype, rid = record_type_of(record), str(record.pk)
    signature = Signature(
        signer=user,
        signer_username=user.get_username(),
        signer_name=user.printed_name,
        meaning=meaning,
        comment=comment.strip(),
        signed_at=now,
        record_type=rtype,
        record_id=rid,
        method=signer.method,
        witness=signer.witness,
        station=actor.station,
    )
    signature.binding_hash = binding_hash(signature, content)
    return record_create(
        signature, actor=Actor.of(user, via=actor.via), action="sign", reason=comment.strip()
    )


def signature_intact(signature: Signature, content: Any) -> bool:
    """True while the record still holds exactly what was signed (21 CFR 11.70)."""
    return signature.binding_hash == binding_hash(signature, content)

"""Credentials that reach the person, never the administrator (21 CFR 11.100(b), 11.200(a)(2)-(3), 11.300).

A new account, a password reset and a reactivation leave the account without a
usable password and issue an :class:`~batchline.accounts.models.Enrolment`:

- where a mail relay is configured (``settings.BATCHLINE_MAIL_RELAY``) and the
  person has an address, a one-time code is mailed to that address after the
  transaction commits; nobody else ever sees it;
- otherwise an enrolment code is shown to the administrator to hand over. It is
  not a password: it is redeemed only at a station while a second person, who
  holds ``accounts.verify_identity`` and is neither an administrator, nor the
  person, nor whoever issued the code, checks the person's identity and signs
  that check with their own user ID and password (P11-16).

Redeeming, the person chooses their own password. A wrong code is audited and
counted; five void the credential. Codes expire (mail: 24 hours; station: 7 days).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from batchline.audit.services import Actor, audit_append, record_create, record_update
from batchline.signatures.models import Meaning
from batchline.signatures.services import SignatureRefused, signature_apply, signer_authenticate

from .models import Delivery, Enrolment, PasswordHistory, User
from .selectors import is_locked

security_log = logging.getLogger("batchline.security")

MAIL_VALID = dt.timedelta(hours=24)
STATION_VALID = dt.timedelta(days=7)
MAX_WRONG_CODES = 5
NO_RELAY_NOTICE = (
    "No mail relay is configured (BATCHLINE_EMAIL_HOST is not set), so nothing is e-mailed. "
    "Hand this enrolment code to the person. It is not a password: it works only at a station "
    "while a second person, not an administrator, checks the person's identity and signs that check."
)


class EnrolmentRefused(ValueError):
    """A refused redemption; the message is for the person at the station."""


@dataclass(frozen=True)
class Issued:
    """What the administrator learns of an issued credential: how it travels, never a password."""

    enrolment: Enrolment
    delivery: str
    notice: str
    # Only on the station path: the code the administrator hands over (useless without a second person).
    enrolment_code: str = ""
    mailed: bool = False
    # The mailed code, held only until credential_mail() sends it; never shown, never stored.
    mail_code: str = field(default="", repr=False, compare=False)


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def _new_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # nothing a person misreads (0/O, 1/I)
    raw = "".join(secrets.choice(alphabet) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def mail_relay_configured() -> bool:
    return bool(settings.BATCHLINE_MAIL_RELAY)


def void_open_credentials(user: User, *, actor: Actor, reason: str) -> None:
    for old in Enrolment.objects.select_for_update().filter(
        user=user, redeemed_at__isnull=True, void_at__isnull=True
    ):
        record_update(old, actor=actor, values={"void_at": timezone.now()}, reason=reason, action="void")


def credential_issue(*, actor: Actor, user: User, purpose: str, reason: str) -> Issued:
    """Inside the caller's transaction (``user`` locked): make the password unusable and issue a credential.

    Returns what the administrator may see; on the mail path it holds the code
    until :func:`credential_mail` sends it, once the transaction has committed.
    """
    now = timezone.now()
    void_open_credentials(user, actor=actor, reason=f"replaced by a new {purpose} credential")
    if user.has_usable_password():  # a reset: the old password joins the history, so it is not chosen again
        PasswordHistory.objects.create(user=user, password=user.password, created_at=now)
    by_mail = mail_relay_configured() and bool(user.email)
    code = _new_code()
    enrolment = Enrolment(
        user=user,
        purpose=purpose,
        delivery=Delivery.MAIL if by_mail else Delivery.STATION,
        address=user.email if by_mail else "",
        code_hash=_hash(code),
        issued_by_id=actor.id,
        issued_at=now,
        expires_at=now + (MAIL_VALID if by_mail else STATION_VALID),
    )
    record_create(enrolment, actor=actor, reason=reason, action="credential_issue")
    record_update(
        user,
        actor=actor,
        values={"password": make_password(None), "must_change_password": True},
        reason=f"{purpose}: no usable password until the person redeems their credential",
        action="credential_issue",
    )
    if by_mail:
        return Issued(
            enrolment,
            Delivery.MAIL,
            f"A one-time code was sent to {user.printed_name}'s own address {user.email}. "
            "Nobody else sees it; with it they choose their own password.",
            mail_code=code,
        )
    if mail_relay_configured():
        notice = (
            f"{user.printed_name} has no e-mail address, so nothing is e-mailed. "
            + NO_RELAY_NOTICE.split(". ", 1)[1]
        )
    else:
        notice = NO_RELAY_NOTICE
    return Issued(enrolment, Delivery.STATION, notice, enrolment_code=code)


def credential_mail(issued: Issued) -> Issued:
    """Mail a credential to the person's own address; call after the issuing transaction committed.

    A relay that fails is recorded in the audit trail and said: the
    administrator issues a new credential (the mailed code never existed
    anywhere else).
    """
    code = issued.mail_code
    if issued.delivery != Delivery.MAIL or not code:
        return issued
    enrolment = issued.enrolment
    user = enrolment.user
    base = settings.BATCHLINE_BASE_URL.rstrip("/")
    try:
        send_mail(
            subject="Your Batchline account: choose your password",
            message=(
                f"Hello {user.printed_name},\n\n"
                f"A {enrolment.purpose} credential was issued for your Batchline account "
                f"'{user.username}'.\n\nYour one-time code: {code}\n\n"
                f"Open {base}/enrol/ , enter your user ID, this code and the password you choose. "
                f"The code works once and until {enrolment.expires_at:%Y-%m-%d %H:%M %Z}.\n\n"
                "If you did not expect this mail, tell your security administrator."
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[enrolment.address],
        )
    except Exception as exc:  # the relay failed: say so, keep it in the trail
        security_log.exception("credential mail to %s failed", enrolment.address)
        with transaction.atomic():
            audit_append(
                actor=Actor(None, "system", "Batchline", "system"),
                action="credential_mail_failed",
                record_type="accounts.enrolment",
                record_id=enrolment.pk,
                reason=f"mail relay refused or unreachable: {exc}",
            )
        return Issued(
            enrolment,
            issued.delivery,
            f"The mail to {enrolment.address} could not be sent ({exc}). Issue the credential again.",
        )
    return Issued(enrolment, issued.delivery, issued.notice, mailed=True)


def _refuse(user: User | None, username: str, message: str, request: HttpRequest) -> EnrolmentRefused:
    with transaction.atomic():
        audit_append(
            actor=Actor(
                user.pk if user else None,
                username or "(blank)",
                user.printed_name if user else "(unknown)",
                "web",
            ),
            action="enrolment_refused",
            record_type="accounts.user",
            record_id=user.pk if user else "",
            reason=f"{message} (station {request.META.get('REMOTE_ADDR', '')})",
        )
    return EnrolmentRefused(message)


def enrolment_redeem(
    *,
    request: HttpRequest,
    username: str,
    code: str,
    new_password: str,
    verifier_username: str = "",
    verifier_password: str = "",
    identity_check: str = "",
) -> User:
    """The person redeems their credential and chooses their password (P11-16, P11-21).

    On the station path the verifier re-authenticates (user ID and password,
    as a witness) and signs the identity check (meaning "performed"); they
    must hold ``accounts.verify_identity`` and be neither an administrator,
    the person, nor the issuer. Every refusal is audited; nothing else is written.
    """
    username = username.strip()
    user = User.objects.filter(username__iexact=username).first() if username else None
    enrolment = (
        Enrolment.objects.filter(user=user, redeemed_at__isnull=True, void_at__isnull=True)
        .order_by("-issued_at", "-id")
        .first()
        if user
        else None
    )
    now = timezone.now()
    if user is None or enrolment is None or not user.is_active:
        raise _refuse(user, username, "No open credential for this user ID: ask for a new one.", request)
    if enrolment.expires_at <= now:
        raise _refuse(
            user, username, "This credential has expired: ask your administrator for a new one.", request
        )
    if not hmac.compare_digest(enrolment.code_hash, _hash(code)):
        with transaction.atomic():
            locked = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
            values: dict[str, object] = {"failed_attempts": locked.failed_attempts + 1}
            if locked.failed_attempts + 1 >= MAX_WRONG_CODES:
                values["void_at"] = now
            record_update(
                locked,
                actor=Actor(user.pk, user.username, user.printed_name, "web"),
                values=values,
                action="enrolment_wrong_code",
                reason=f"wrong enrolment code from station {request.META.get('REMOTE_ADDR', '')}",
            )
        raise EnrolmentRefused(
            "The code is wrong."
            + (" It is now void: ask for a new one." if "void_at" in values else " Check it and try again.")
        )
    verifier = None
    check = identity_check.strip()
    if enrolment.delivery == Delivery.STATION:
        if not verifier_username.strip() or not verifier_password:
            raise _refuse(
                user,
                username,
                "A second person must check your identity here: they enter their own user ID and password "
                "and say how they checked it.",
                request,
            )
        if not check:
            raise _refuse(
                user,
                username,
                "Say how the identity was checked (for example: badge 4711, photo compared).",
                request,
            )
        try:
            signer = signer_authenticate(
                request=request,
                username=verifier_username,
                password=verifier_password,
                meaning=Meaning.PERFORMED,
                witness=True,
            )
        except SignatureRefused as exc:
            raise _refuse(user, username, f"The identity check was not signed: {exc}", request) from exc
        verifier = signer.user
        if verifier.pk == user.pk:
            raise _refuse(
                user, username, "You cannot check your own identity: a second person does.", request
            )
        if verifier.pk == enrolment.issued_by_id:
            raise _refuse(
                user,
                username,
                "Whoever issued the code does not also check the identity: another person does.",
                request,
            )
        if verifier.has_perm("accounts.manage_users"):
            raise _refuse(
                user,
                username,
                "An administrator cannot check identities: a supervisor or QA person does.",
                request,
            )
        if not verifier.has_perm("accounts.verify_identity"):
            raise _refuse(
                user,
                username,
                f"{verifier.printed_name} may not check identities (a supervisor or QA person does).",
                request,
            )
    else:
        check = f"one-time code received at the person's own address {enrolment.address}"
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise EnrolmentRefused(" ".join(exc.messages)) from exc
    person = Actor(user.pk, user.username, user.printed_name, "web")
    with transaction.atomic():
        locked_user = User.objects.select_for_update().get(pk=user.pk)
        locked = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
        if locked.redeemed_at is not None or locked.void_at is not None:
            raise EnrolmentRefused("This credential was used or replaced meanwhile: ask for a new one.")
        record_update(
            locked,
            actor=person,
            values={"redeemed_at": now, "identity_checked_by": verifier, "identity_check": check},
            action="enrolment_redeem",
            reason=f"identity: {check}",
        )
        if verifier is not None:
            signature_apply(
                signer=signer,
                meaning=Meaning.PERFORMED,
                record=locked,
                content=locked.signed_content(),
                actor=Actor.of(verifier, via="web"),
                comment=f"identity check: {check}",
            )
        if locked_user.password and locked_user.has_usable_password():
            PasswordHistory.objects.create(user=locked_user, password=locked_user.password, created_at=now)
        record_update(
            locked_user,
            actor=person,
            values={
                "password": make_password(new_password),
                "must_change_password": False,
                "password_changed_at": now,
            },
            action="password_set",
            reason="chosen by the person when redeeming their credential",
        )
        # A reset of a locked account unlocks it here, with the credential and identity check on record.
        if is_locked(locked_user):
            audit_append(
                actor=person,
                action="unlock",
                record_type="accounts.user",
                record_id=locked_user.pk,
                reason=f"credential redeemed ({locked.purpose}); identity: {check}",
            )
        axes_reset(username=locked_user.username)
    return locked_user


def open_enrolment(user: User) -> Enrolment | None:
    return (
        Enrolment.objects.filter(user=user, redeemed_at__isnull=True, void_at__isnull=True)
        .order_by("-issued_at", "-id")
        .first()
    )

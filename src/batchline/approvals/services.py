"""Request, approve, reject and withdraw two-person changes; each signed and audited.

A kind of change registers itself (:func:`kind_register`) with who may
request it, how to read the current state of its subject and how to apply
it. The rules here are the same for every kind:

- the requester signs the request (meaning "requested"); a machine interface
  (the ERP) requests unsigned, under its own account (:func:`change_request_received`);
- the approver is another person, holds ``approvals.approve_change``, is not
  the person the change is about, and signs the approval ("approved") or the
  rejection ("rejected");
- the change is applied inside the approval's transaction, and only if its
  subject still stands as it did when requested; otherwise the approval is
  refused in words and nothing changes.

Signers are authenticated before the transaction (``signer_authenticate``),
as everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from batchline.audit.services import Actor, ReasonRequired, record_create, record_update
from batchline.rules import canonical
from batchline.signatures.models import Meaning
from batchline.signatures.services import VerifiedSigner, signature_apply

from .models import ChangeRequest, RequestState

APPROVE_PERMISSION = "approvals.approve_change"


class ChangeRefused(ValueError):
    """A refused request or decision; the message is for the person in front of the screen."""


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    request_permission: str
    # The subject's state now, in the form the request's ``before`` holds it.
    current: Callable[[ChangeRequest], Any]
    # Make the change, inside the approval's transaction, as the approver.
    apply: Callable[[ChangeRequest, Actor], None]
    # The user the change is about, if any: they never approve it themselves.
    subject_user_id: Callable[[ChangeRequest], int | None] = lambda request: None


_KINDS: dict[str, Kind] = {}


def kind_register(kind: Kind) -> None:
    _KINDS[kind.name] = kind


def kind_of(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ChangeRefused(f"{name!r} is not a kind of change Batchline knows.") from None


def change_request(
    *,
    actor: Actor,
    signer: VerifiedSigner,
    kind: str,
    subject_type: str,
    subject_id: object,
    summary: str,
    payload: Any,
    before: Any,
    reason: str,
    comment: str = "",
) -> ChangeRequest:
    """Record a signed request; nothing changes until someone else approves it."""
    user = signer.user
    if user.pk != actor.id:
        raise ChangeRefused("A change is requested and signed by the same person.")
    return _request_write(
        actor=actor,
        user=user,
        signer=signer,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        summary=summary,
        payload=payload,
        before=before,
        reason=reason,
        comment=comment,
    )


def change_request_received(
    *,
    actor: Actor,
    kind: str,
    subject_type: str,
    subject_id: object,
    summary: str,
    payload: Any,
    before: Any,
    reason: str,
) -> ChangeRequest:
    """A request made by a machine interface from a message it received (an ERP's material definition).

    Attributed to the interface's own account, whose roles must allow the request,
    and not signed: an electronic signature is a person's (21 CFR 11.50, 11.100) and
    an interface is none. Its reason names the message. It takes effect only as any
    request does, by another person's signed approval, so two parties still decide.
    """
    user = get_user_model().objects.filter(pk=actor.id, is_active=True).first() if actor.id else None
    if user is None:
        raise ChangeRefused("A request from an interface names the interface's active account.")
    return _request_write(
        actor=actor,
        user=user,
        signer=None,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        summary=summary,
        payload=payload,
        before=before,
        reason=reason,
        comment="",
    )


def _request_write(
    *,
    actor: Actor,
    user: Any,
    signer: VerifiedSigner | None,
    kind: str,
    subject_type: str,
    subject_id: object,
    summary: str,
    payload: Any,
    before: Any,
    reason: str,
    comment: str,
) -> ChangeRequest:
    k = kind_of(kind)
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Give a reason for the change: the approver and the audit trail read it.")
    if not user.has_perm(k.request_permission):
        raise ChangeRefused(f"Your roles do not allow you to request this: {k.label.lower()}.")
    if canonical.normalise(payload) == canonical.normalise(before):
        raise ChangeRefused("Nothing would change.")
    try:
        with transaction.atomic():
            request = ChangeRequest(
                kind=kind,
                subject_type=subject_type,
                subject_id=str(subject_id),
                summary=summary,
                payload=canonical.normalise(payload),
                before=canonical.normalise(before),
                reason=reason,
                requested_by=user,
                requested_at=timezone.now(),
            )
            record_create(request, actor=actor, reason=reason, action="change_request")
            if signer is not None:
                signature_apply(
                    signer=signer,
                    meaning=Meaning.REQUESTED,
                    record=request,
                    content=request.signed_content(),
                    actor=actor,
                    comment=comment,
                )
    except IntegrityError:
        raise ChangeRefused(
            "A request for this is already waiting for approval: it must be decided or withdrawn first."
        ) from None
    return request


def _lock_open(request: ChangeRequest) -> ChangeRequest:
    locked = ChangeRequest.objects.select_for_update().get(pk=request.pk)
    if locked.state != RequestState.REQUESTED:
        raise ChangeRefused(
            f"{locked.number} is {locked.get_state_display().lower()}: it cannot be decided again."
        )
    return locked


def _check_decider(request: ChangeRequest, k: Kind, signer: VerifiedSigner, actor: Actor) -> None:
    user = signer.user
    if user.pk != actor.id:
        raise ChangeRefused("A change is decided and signed by the same person.")
    if user.pk == request.requested_by_id:
        raise ChangeRefused("You requested this change: another person must approve or reject it.")
    if user.pk == k.subject_user_id(request):
        raise ChangeRefused("This change is about you: another person must approve or reject it.")
    if not user.has_perm(APPROVE_PERMISSION):
        raise ChangeRefused("Only a QA approver approves or rejects a change.")


def change_approve(
    *, actor: Actor, signer: VerifiedSigner, request: ChangeRequest, comment: str = ""
) -> ChangeRequest:
    """Approve, sign and apply the change in one transaction; refused if its subject moved on."""
    with transaction.atomic():
        locked = _lock_open(request)
        k = kind_of(locked.kind)
        _check_decider(locked, k, signer, actor)
        if canonical.normalise(k.current(locked)) != locked.before:
            raise ChangeRefused(
                f"What {locked.number} would change is no longer as it was when requested: "
                "withdraw it and request the change again."
            )
        record_update(
            locked,
            actor=actor,
            values={
                "state": RequestState.APPROVED,
                "decided_by": signer.user,
                "decided_at": timezone.now(),
                "decision_comment": comment.strip(),
            },
            reason=comment.strip(),
            action="change_approve",
        )
        signature_apply(
            signer=signer,
            meaning=Meaning.APPROVED,
            record=locked,
            content=locked.signed_content(),
            actor=actor,
            comment=comment,
        )
        try:
            k.apply(locked, actor)
        except IntegrityError:  # a unique code or number written by someone else in the meantime
            raise ChangeRefused(
                f"{locked.number} conflicts with a record written at the same moment: nothing was changed; "
                "look at the subject again and request the change anew if it still applies."
            ) from None
    return locked


def change_reject(
    *, actor: Actor, signer: VerifiedSigner, request: ChangeRequest, comment: str
) -> ChangeRequest:
    """Reject with a reason, signed; nothing is applied."""
    if not comment.strip():
        raise ReasonRequired("Say why the change is rejected: the requester and the audit trail read it.")
    with transaction.atomic():
        locked = _lock_open(request)
        _check_decider(locked, kind_of(locked.kind), signer, actor)
        record_update(
            locked,
            actor=actor,
            values={
                "state": RequestState.REJECTED,
                "decided_by": signer.user,
                "decided_at": timezone.now(),
                "decision_comment": comment.strip(),
            },
            reason=comment.strip(),
            action="change_reject",
        )
        signature_apply(
            signer=signer,
            meaning=Meaning.REJECTED,
            record=locked,
            content=locked.signed_content(),
            actor=actor,
            comment=comment,
        )
    return locked


def change_withdraw(*, actor: Actor, user: Any, request: ChangeRequest, reason: str) -> ChangeRequest:
    """The requester (or another holder of the request permission) takes back an open request."""
    if not reason.strip():
        raise ReasonRequired("Say why the request is withdrawn.")
    with transaction.atomic():
        locked = _lock_open(request)
        if user.pk != locked.requested_by_id and not user.has_perm(kind_of(locked.kind).request_permission):
            raise ChangeRefused(
                "Only the requester or another person who may request it withdraws a request."
            )
        record_update(
            locked,
            actor=actor,
            values={"state": RequestState.WITHDRAWN, "decided_at": timezone.now()},
            reason=reason.strip(),
            action="change_withdraw",
        )
    return locked

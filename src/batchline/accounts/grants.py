"""Roles: GMP signing authority takes two people; some roles never go together (21 CFR 11.10(g); Annex 11 §12).

- Granting a role that carries GMP signing authority (``GMP_SIGNING_ROLES``:
  operator, supervisor, warehouse, recipe author, QA reviewer, QA approver,
  qualified person; a recipe is approved by the QA approver) is a change
  request of kind ``role_grant`` (:mod:`batchline.approvals`): the
  administrator signs the request (meaning "requested"), a QA approver who is
  neither the requester nor the person signs the approval, and only the
  approval sets the roles. Both signatures bind the request and are shown on
  the person's history.
- Taking roles away, and roles without signing authority (administrator,
  auditor), take effect at once under the administrator's signature: a
  deauthorisation never waits (P11-25).
- The GMP configuration's matrix of incompatible roles is checked on the
  request and again on the approval; by default an administrator holds no
  GMP signing role.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from batchline.approvals.models import ChangeRequest, RequestState
from batchline.approvals.services import ChangeRefused, Kind, change_request, kind_register
from batchline.audit.services import Actor, audit_append, record_create, record_update
from batchline.configuration.definitions import GMP_SIGNING_ROLES
from batchline.configuration.selectors import current
from batchline.signatures.models import Meaning

from .models import RoleChange, User
from .roles import ROLES, role_label

ROLE_GRANT = "role_grant"


class RolesRefused(ValueError):
    """A refused role change; the message is for the administrator."""


def admin_site_access(roles: Iterable[str]) -> bool:
    """The Django admin (master data) is for engineers and administrators only."""
    return "administrator" in roles


def set_groups(user: User, roles: list[str]) -> None:
    user.groups.set(Group.objects.filter(name__in=roles))
    # The prefetch cache, if any, now lies about the roles.
    getattr(user, "_prefetched_objects_cache", {}).pop("groups", None)


def check_roles(roles: Iterable[str]) -> list[str]:
    roles = sorted(set(roles))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise RolesRefused(f"Unknown role: {', '.join(unknown)}")
    return roles


def incompatible(roles: Iterable[str]) -> list[str]:
    """Each pair of ``roles`` the configuration in force forbids one person to hold, in words."""
    held = set(roles)
    return [
        f"{role_label(a)} and {role_label(b)}"
        for a, b in current().incompatible_roles
        if a in held and b in held
    ]


def refuse_incompatible(user: User, roles: Iterable[str]) -> None:
    clashes = incompatible(roles)
    if clashes:
        raise RolesRefused(
            f"{user.printed_name} cannot hold {'; '.join(clashes)} together: the GMP configuration "
            f"(version {current().version}) keeps these roles apart, so that no one both administers "
            "the system and signs GMP records."
        )


def gmp_roles_added(before: Iterable[str], after: Iterable[str]) -> list[str]:
    return sorted((set(after) - set(before)) & set(GMP_SIGNING_ROLES))


def needs_approval(user: User, roles: Iterable[str]) -> bool:
    """Whether changing ``user``'s roles to ``roles`` grants GMP signing authority (and so waits for QA)."""
    return bool(gmp_roles_added(user.role_names, roles))


def signing_meaning(user: User, roles: Iterable[str]) -> str:
    """The meaning the administrator signs this change with: a request, or the change itself."""
    return Meaning.REQUESTED if needs_approval(user, roles) else Meaning.APPROVED


def open_grant(user: User) -> ChangeRequest | None:
    return ChangeRequest.objects.filter(
        kind=ROLE_GRANT, subject_type="accounts.user", subject_id=str(user.pk), state=RequestState.REQUESTED
    ).first()


def role_grant_request(
    *, actor: Actor, signer: object, user: User, roles: Iterable[str], reason: str, comment: str = ""
) -> ChangeRequest:
    """The administrator's signed request; nothing changes until a QA approver approves it."""
    roles = check_roles(roles)
    refuse_incompatible(user, roles)
    before = user.role_names
    added = gmp_roles_added(before, roles)
    labels = ", ".join(role_label(r) for r in added)
    try:
        return change_request(
            actor=actor,
            signer=signer,  # type: ignore[arg-type]
            kind=ROLE_GRANT,
            subject_type="accounts.user",
            subject_id=user.pk,
            summary=(
                f"Grant {user.printed_name} ({user.username}) GMP signing authority: {labels}. "
                f"Roles {', '.join(role_label(r) for r in before) or 'none'} → "
                f"{', '.join(role_label(r) for r in roles) or 'none'}."
            ),
            payload={"roles": roles},
            before={"roles": before},
            reason=reason,
            comment=comment,
        )
    except ChangeRefused as exc:
        raise RolesRefused(str(exc)) from exc


def _current(request: ChangeRequest) -> dict[str, list[str]]:
    return {"roles": User.objects.get(pk=int(request.subject_id)).role_names}


def _apply(request: ChangeRequest, actor: Actor) -> None:
    user = User.objects.select_for_update().get(pk=int(request.subject_id))
    roles = list(request.payload["roles"])
    if not user.is_active:
        raise ChangeRefused(f"{user.username} is deactivated: a role is not granted to an inactive account.")
    clashes = incompatible(roles)
    if clashes:
        raise ChangeRefused(
            f"{user.printed_name} cannot hold {'; '.join(clashes)} together under the GMP configuration in "
            f"force (version {current().version}): reject this request."
        )
    before = user.role_names
    set_groups(user, roles)
    record_update(
        user,
        actor=actor,
        values={"is_staff": admin_site_access(roles)},
        extra_before={"roles": before},
        reason=f"{request.number} approved: {request.reason}",
        action="roles",
    )
    record_create(
        RoleChange(
            user=user,
            roles_before=before,
            roles_after=roles,
            reason=request.reason,
            changed_at=timezone.now(),
            changed_by_id=request.requested_by_id,
            change_request=request,
        ),
        actor=actor,
        reason=f"{request.number} approved",
    )


kind_register(
    Kind(
        name=ROLE_GRANT,
        label="Grant of GMP signing authority",
        request_permission="accounts.manage_users",
        current=_current,
        apply=_apply,
        subject_user_id=lambda request: int(request.subject_id),
    )
)


def first_approver_grant(*, actor: Actor, user: User, reason: str) -> None:
    """A new installation's first QA approver, from the command line only (``batchline accounts first-approver``).

    Every later grant needs a QA approver's approval; the first cannot have
    one. Allowed only while no account holds the QA approver role, never to an
    account holding an incompatible role; audited and raised as a security
    alert, so the auditors see it.
    """
    from .alerts import security_alert_raise

    if not reason.strip():
        raise RolesRefused("Give a reason: it is kept in the audit trail.")
    with transaction.atomic():
        if User.objects.filter(groups__name="qa_approver").exists():
            raise RolesRefused(
                "A QA approver exists: every further grant is requested by an administrator and approved by them."
            )
        locked = User.objects.select_for_update().get(pk=user.pk)
        roles = sorted({*locked.role_names, "qa_approver"})
        refuse_incompatible(locked, roles)
        before = locked.role_names
        set_groups(locked, roles)
        record_update(
            locked,
            actor=actor,
            values={"is_staff": admin_site_access(roles)},
            extra_before={"roles": before},
            reason=f"first QA approver of this installation: {reason.strip()}",
            action="roles",
        )
        audit_append(
            actor=actor,
            action="first_approver",
            record_type="accounts.user",
            record_id=locked.pk,
            reason=reason.strip(),
        )
    security_alert_raise(
        kind="first_approver",
        message=f"{locked.printed_name} ({locked.username}) was made the first QA approver from the command line.",
        details={"user": locked.username, "by": actor.username, "reason": reason.strip()},
        severity="warning",
        actor=actor,
    )

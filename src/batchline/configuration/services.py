"""Changing the GMP configuration: an administrator's signed request, a QA approver's signed approval.

The approval writes the new version in its own transaction (through
``approvals``); the audit entry of the version holds every old and new value
and the reason. Environment variables only seed the first version of a new
installation (:func:`seed_after_migrate`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from batchline.approvals.models import ChangeRequest
from batchline.approvals.services import ChangeRefused, Kind, change_request
from batchline.audit.services import SYSTEM, Actor, record_create
from batchline.signatures.services import VerifiedSigner

from .definitions import Invalid, config_from, describe_change, parse_values, seed_values
from .models import ConfigVersion
from .selectors import current

SUBJECT = "configuration.configversion"


def _current_values(request: ChangeRequest | None = None) -> dict[str, Any]:
    config = current()
    return {"version": config.version, "values": config.values()}


def configuration_version_create(
    *, actor: Actor, values: Mapping[str, Any], reason: str, change_request: ChangeRequest | None = None
) -> ConfigVersion:
    """Write the next version (in the caller's transaction) with every value; in force at once.

    The number is the previous one plus one under a unique constraint, so two
    approvals racing cannot both become version N.
    """
    latest = ConfigVersion.objects.select_for_update().order_by("-number").first()
    number = (latest.number + 1) if latest else 1
    merged = {**(latest.values if latest else {}), **values}
    version = ConfigVersion(
        number=number,
        values=config_from(number, merged).values(),
        effective_at=timezone.now(),
        reason=reason,
        change_request=change_request,
    )
    return record_create(version, actor=actor, reason=reason, action="configure")


def _apply(request: ChangeRequest, actor: Actor) -> None:
    configuration_version_create(
        actor=actor, values=request.payload["values"], reason=request.reason, change_request=request
    )


KIND = Kind(
    name="configuration",
    label="Change of the GMP configuration",
    request_permission="configuration.request_change",
    current=_current_values,
    apply=_apply,
)


def configuration_change_request(
    *, actor: Actor, signer: VerifiedSigner, values: Mapping[str, Any], reason: str, comment: str = ""
) -> ChangeRequest:
    """Request the change of some settings; checked now, applied when a QA approver approves it."""
    try:
        parsed = parse_values(values)
    except Invalid as exc:
        raise ChangeRefused(str(exc)) from None
    now = _current_values()
    proposed = config_from(now["version"], {**now["values"], **parsed}).values()
    changed = {k: v for k, v in proposed.items() if now["values"].get(k) != v}
    if not changed:
        raise ChangeRefused("These are the settings in force already: nothing would change.")
    words = describe_change(now["values"], changed)
    return change_request(
        actor=actor,
        signer=signer,
        kind=KIND.name,
        subject_type=SUBJECT,
        subject_id="current",
        summary="GMP configuration: " + "; ".join(words),
        payload={"version": now["version"], "values": {**now["values"], **changed}},
        before=now,
        reason=reason,
        comment=comment,
    )


def seed_after_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """A new installation's first version, from the environment; nothing if a version exists."""
    if ConfigVersion.objects.using(using).exists():
        return
    with transaction.atomic(using=using):
        configuration_version_create(
            actor=SYSTEM,
            values=seed_values(os.environ),
            reason="first GMP configuration of this installation, seeded from its environment",
        )

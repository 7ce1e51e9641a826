"""The only way GMP records are written: each change and its audit entry together.

Every function here must run inside the caller's ``transaction.atomic()`` so
that the record and its entry commit or roll back as one (21 CFR 11.10(e),
Annex 11 §9, DESIGN invariant 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from batchline.rules import canonical, hashchain

from . import chain
from .models import AuditedModel

M = TypeVar("M", bound=AuditedModel)


class ReasonRequired(ValueError):
    """A change of GMP significance was attempted without saying why."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something, and through which door (web, api, admin, cli, system)."""

    id: int | None
    username: str
    name: str
    via: str

    @classmethod
    def of(cls, user: Any, *, via: str) -> Actor:
        return cls(id=user.pk, username=user.get_username(), name=user.printed_name, via=via)


SYSTEM = Actor(id=None, username="system", name="Batchline (system)", via="system")


def record_type_of(model: type[models.Model] | models.Model) -> str:
    return model._meta.label_lower


def audit_state(obj: AuditedModel) -> dict[str, canonical.JSONValue]:
    """The record's audited values in canonical form, as the trail describes them."""
    state: dict[str, canonical.JSONValue] = {}
    for field in obj._meta.concrete_fields:
        if field.name in obj.AUDIT_EXCLUDE or field.primary_key:
            continue
        value = getattr(obj, field.attname)
        if isinstance(field, models.DecimalField) and value is not None:
            # As the database will hand it back: at the column's scale, so the trail
            # says "100000.000000" whether the value came from a form or a row.
            value = Decimal(value).quantize(Decimal(1).scaleb(-field.decimal_places))
        if field.name in obj.AUDIT_DIGEST:
            value = "sha256:" + hashlib.sha256(str(value).encode()).hexdigest() if value else None
        state[field.attname] = canonical.normalise(value)
    for name, value in obj.audit_extra_state().items():
        state[name] = canonical.normalise(value)
    return state


def audit_append(
    *,
    actor: Actor,
    action: str,
    record_type: str,
    record_id: object,
    changes: dict[str, Any] | None = None,
    reason: str = "",
    _normalised: bool = False,
) -> chain.Appended:
    """Append one entry: an event (login, lockout, signature) or a record change."""
    now = timezone.now()
    content = hashchain.EntryContent(
        at=str(canonical.normalise(now)),
        actor_id=actor.id,
        actor_username=actor.username,
        actor_name=actor.name,
        action=action,
        record_type=record_type,
        record_id=str(record_id),
        changes=canonical.dumps_normalised(changes or {}) if _normalised else canonical.dumps(changes or {}),
        reason=reason.strip(),
        via=actor.via,
    )
    return chain.append(content, at=now)


def _save(obj: models.Model, **kwargs: Any) -> None:
    obj._audit_permit = True  # type: ignore[attr-defined]
    try:
        obj.save(**kwargs)
    finally:
        obj._audit_permit = False  # type: ignore[attr-defined]


def record_create(obj: M, *, actor: Actor, reason: str = "", action: str = "create") -> M:
    """Insert a new GMP record and its creation entry (every field, old value null)."""
    _save(obj, force_insert=True)
    state = audit_state(obj)
    audit_append(
        actor=actor,
        action=action,
        record_type=record_type_of(obj),
        record_id=obj.pk,
        changes={k: [None, v] for k, v in state.items()},
        reason=reason,
        _normalised=True,
    )
    return obj


def record_update(
    obj: M,
    *,
    actor: Actor,
    values: dict[str, Any],
    reason: str = "",
    reason_required: bool = False,
    action: str = "update",
    extra_before: dict[str, Any] | None = None,
) -> dict[str, list[canonical.JSONValue]]:
    """Apply ``values`` to ``obj``, save the changed fields and append their old and new values.

    The caller has locked ``obj`` (``select_for_update``) where a concurrent
    change would matter. Returns the changes; no change writes nothing.
    ``extra_before`` carries the previous value of a non-column field (roles)
    that the caller has already changed.
    """
    before = audit_state(obj)
    if extra_before:
        before.update({k: canonical.normalise(v) for k, v in extra_before.items()})
    for name, value in values.items():
        setattr(obj, name, value)
    after = audit_state(obj)
    changes = canonical.diff(before, after)
    if not changes:
        return {}
    if reason_required and not reason.strip():
        raise ReasonRequired("a reason is required for this change")
    columns = {f.attname: f.name for f in obj._meta.concrete_fields}
    changed_columns = [columns[name] for name in changes if name in columns]
    if changed_columns:
        _save(obj, update_fields=changed_columns)
    audit_append(
        actor=actor,
        action=action,
        record_type=record_type_of(obj),
        record_id=obj.pk,
        changes=changes,
        reason=reason,
        _normalised=True,
    )
    return changes

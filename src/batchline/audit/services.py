"""The only way GMP records are written: each change and its audit entry together.

Every function here must run inside the caller's ``transaction.atomic()`` so
that the record and its entry commit or roll back as one (21 CFR 11.10(e),
Annex 11 §9, DESIGN invariant 1).
"""

from __future__ import annotations

import functools
import hashlib
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar, cast

from django.db import DatabaseError, connection, models
from django.db.models import NOT_PROVIDED, signals
from django.utils import timezone

from batchline.rules import canonical, hashchain
from batchline.rules.verdict import Refused

from . import chain
from .models import AuditedModel

M = TypeVar("M", bound=AuditedModel)


class ReasonRequired(ValueError):
    """A change of GMP significance was attempted without saying why."""


class DoesNotFit(Refused):
    """A value longer or larger than its field holds: refused in words before anything is written.

    SQLite would store it whole and PostgreSQL refuse it with an error: neither is what
    the person should see, and both databases must keep the same records.
    """


@functools.cache
def _limits(model: type[models.Model]) -> tuple[tuple[str, str, int, int | None], ...]:
    """(attname, name in words, characters or integer digits, decimal places) of the sized columns."""
    out: list[tuple[str, str, int, int | None]] = []
    for f in model._meta.concrete_fields:
        if isinstance(f, models.CharField) and f.max_length:
            out.append((f.attname, str(f.verbose_name), f.max_length, None))
        elif isinstance(f, models.DecimalField) and f.max_digits is not None and f.decimal_places is not None:
            out.append((f.attname, str(f.verbose_name), f.max_digits - f.decimal_places, f.decimal_places))
    return tuple(out)


def _fits(obj: models.Model, names: set[str] | None = None) -> None:
    """Every sized value of ``obj`` fits its column; otherwise :class:`DoesNotFit`, naming the field."""
    for attname, words, size, places in _limits(type(obj)):
        if names is not None and attname not in names:
            continue
        value = getattr(obj, attname)
        if value is None:
            continue
        what = f"{str(obj._meta.verbose_name).capitalize()} {words}"
        if places is None:
            if isinstance(value, str) and len(value) > size:
                raise DoesNotFit.because(
                    "TOO_LONG", f"{what}: at most {size:,} characters, not {len(value):,}."
                )
        elif isinstance(value, Decimal) and (not value.is_finite() or abs(value) >= Decimal(10) ** size):
            raise DoesNotFit.because(
                "OUT_OF_RANGE",
                f"{what}: {value} is not a number with at most {size} digits before the decimal mark.",
            )


class Terminal(Protocol):
    """The network address a request came from, and the registered station it falls in ("" if none)."""

    address: str

    @property
    def station(self) -> str: ...


# The terminal of the request being served, set for its length by the station middleware
# (equipment/stations.py, a layer above): every actor made for the web or the API then names
# its station (21 CFR 11.10(h)) without each of the many views passing it along.
TERMINAL: ContextVar[Terminal | None] = ContextVar("batchline_terminal", default=None)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something, through which door (web, api, admin, cli, system), and at which station."""

    id: int | None
    username: str
    name: str
    via: str
    station: str = ""  # the registered station's code; "" from the command line or an unregistered terminal

    @classmethod
    def of(cls, user: Any, *, via: str) -> Actor:
        terminal = TERMINAL.get() if via in ("web", "api") else None
        return cls(
            id=user.pk,
            username=user.get_username(),
            name=user.printed_name,
            via=via,
            station=terminal.station if terminal is not None else "",
        )


SYSTEM = Actor(id=None, username="system", name="Batchline (system)", via="system")


def record_type_of(model: type[models.Model] | models.Model) -> str:
    return model._meta.label_lower


@functools.cache
def _audited_fields(model: type[AuditedModel]) -> tuple[tuple[str, Decimal | None, bool], ...]:
    """For each audited column: its attribute, the quantum of a decimal column, whether it is a digest."""
    return tuple(
        (
            field.attname,
            Decimal(1).scaleb(-field.decimal_places) if isinstance(field, models.DecimalField) else None,
            field.name in model.AUDIT_DIGEST,
        )
        for field in model._meta.concrete_fields
        if field.name not in model.AUDIT_EXCLUDE and not field.primary_key
    )


def audit_state(obj: AuditedModel) -> dict[str, canonical.JSONValue]:
    """The record's audited values in canonical form, as the trail describes them."""
    state: dict[str, canonical.JSONValue] = {}
    for attname, quantum, digest in _audited_fields(type(obj)):
        value = getattr(obj, attname)
        if quantum is not None and value is not None:
            # As the database will hand it back: at the column's scale, so the trail
            # says "100000.000000" whether the value came from a form or a row.
            value = Decimal(value).quantize(quantum)
        if digest:
            value = "sha256:" + hashlib.sha256(str(value).encode()).hexdigest() if value else None
        state[attname] = canonical.normalise(value)
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
) -> chain.Appended | None:
    """Append one entry: an event (login, lockout, signature) or a record change.

    Inside :func:`audit_together` the entry is appended at the end of the block (returns None).
    """
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


def audit_together() -> AbstractContextManager[None]:
    """Append the entries of the changes made in this block together, at its end (one round trip).

    The same entries, chained in the same order, in the same transaction: for an
    action that writes several records (a value, the step's state, a signature).
    """
    return chain.together()


def _save(obj: models.Model, *, force_insert: bool = False, update_fields: list[str] | None = None) -> None:
    """Write the record's row: an INSERT, or an UPDATE of ``update_fields``.

    What ``Model.save()`` would send, as one statement written once per model:
    the ORM spent more time building these statements than the database took
    to run them (docs/performance.md). Each value goes through its field's own
    ``pre_save`` and ``get_db_prep_save``, as in the ORM. A model that does more
    on save (its own ``save()``, signal receivers, inheritance, database
    defaults) is saved through the ORM as before.
    """
    model = type(obj)
    if not _plain_save(model) or any(
        signal.has_listeners(model) for signal in (signals.pre_save, signals.post_save)
    ):
        obj._audit_permit = True  # type: ignore[attr-defined]
        try:
            obj.save(force_insert=force_insert, update_fields=update_fields)
        finally:
            obj._audit_permit = False  # type: ignore[attr-defined]
        return
    meta = obj._meta
    obj._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]  # as save() does
    if force_insert:
        pk_set = obj.pk is not None
        sql, fields = _insert_sql(model, connection.vendor, pk_set)
        params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if not pk_set:
                obj.pk = (
                    cursor.fetchone()[0]
                    if connection.features.can_return_columns_from_insert
                    else connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
                )
        obj._state.adding = False
        obj._state.db = connection.alias
        return
    assert update_fields, "an UPDATE names its columns"
    sql, fields = _update_sql(model, connection.vendor, tuple(update_fields))
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
    params.append(meta.pk.get_db_prep_value(obj.pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")


@functools.cache
def _plain_save(model: type[models.Model]) -> bool:
    """Whether saving ``model`` is only writing its row: no save() of its own, one table, plain fields."""
    meta = model._meta
    return (
        model.save is AuditedModel.save
        and not meta.parents
        and not meta.proxy
        and not meta.order_with_respect_to
        and meta.pk is meta.auto_field
        and not any(
            f.generated or getattr(f, "db_default", NOT_PROVIDED) is not NOT_PROVIDED
            for f in meta.local_concrete_fields
        )
    )


@functools.cache
def _insert_sql(model: type[models.Model], vendor: str, pk_set: bool) -> tuple[str, list[models.Field]]:
    meta, qn = model._meta, connection.ops.quote_name
    fields = [f for f in meta.local_concrete_fields if pk_set or f is not meta.auto_field]
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "  # noqa: S608 (names from the model)
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if not pk_set and connection.features.can_return_columns_from_insert:
        sql += f" RETURNING {qn(meta.pk.column)}"
    return sql, fields


@functools.cache
def _update_sql(
    model: type[models.Model], vendor: str, names: tuple[str, ...]
) -> tuple[str, list[models.Field]]:
    meta, qn = model._meta, connection.ops.quote_name
    fields = [cast(models.Field, meta.get_field(name)) for name in names]
    assigned = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    return f"UPDATE {qn(meta.db_table)} SET {assigned} WHERE {qn(meta.pk.column)} = %s", fields  # noqa: S608


@functools.cache
def _attnames(model: type[models.Model]) -> dict[str, str]:
    """A column's attribute by its field's name or its attribute ("lot" and "lot_id": "lot_id")."""
    fields = model._meta.concrete_fields
    return {f.name: f.attname for f in fields} | {f.attname: f.attname for f in fields}


def record_create(obj: M, *, actor: Actor, reason: str = "", action: str = "create") -> M:
    """Insert a new GMP record and its creation entry (every field, old value null)."""
    _fits(obj)
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
    _fits(obj, {_attnames(type(obj))[name] for name in values if name in _attnames(type(obj))})
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

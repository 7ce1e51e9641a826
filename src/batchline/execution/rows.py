"""The few reads on the hot path of a step action, as constant SQL (docs/performance.md).

Building a query through the ORM cost more than running it: about 0.2 ms to
lock the batch and 0.45 ms to read one step on SQLite, against 0.03 ms for the
same rows fetched with a constant statement. These statements never change, so
they are written once; their rows become model instances through Django's own
converters and ``Model.from_db``, exactly as the ORM would make them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from batchline.recipes.models import MasterRecipe, Product
from batchline.sqlrows import Reader

from .models import Batch, BatchStep

# The frozen control recipe is not read: each step row carries its own part.
_batches = Reader(Batch, defer=("control_recipe",))
_steps = Reader(BatchStep)


@functools.cache
def _lock_sql(vendor: str) -> str:
    lock = (
        " FOR NO KEY UPDATE"
        if connection.features.has_select_for_no_key_update
        else " FOR UPDATE"
        if connection.features.has_select_for_update
        else ""
    )
    return f"SELECT {_batches.columns('b')} FROM {Batch._meta.db_table} b WHERE b.id = %s{lock}"  # noqa: S608


def lock_batch(batch_id: int) -> Batch | None:
    """The batch row, locked until the transaction ends (SQLite: BEGIN IMMEDIATE already locks).

    On PostgreSQL the lock is FOR NO KEY UPDATE: it serialises the batch's actions
    (each takes it) but lets another transaction's reference to the batch be
    checked meanwhile. With FOR UPDATE, a transaction that had appended to the
    audit chain (whose lock it holds until it commits) and then, at commit,
    checked its new row's reference to the batch waited for the action holding
    the batch, which waited for the chain: a deadlock.
    """
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(connection.vendor), [batch_id])
        row = cursor.fetchone()
    return None if row is None else _batches.instance(row)


def _roles_sql() -> str:
    """The names of a user's groups (their roles) as a JSON array, for a column of the step read."""
    groups: Any = get_user_model()._meta.get_field("groups")
    through = groups.remote_field.through._meta.db_table
    names = (
        "coalesce(json_agg(g.name), '[]')::text"
        if connection.vendor == "postgresql"
        else "json_group_array(g.name)"
    )
    return (
        f"(SELECT {names} FROM {Group._meta.db_table} g JOIN {through} ug "  # noqa: S608
        f"ON ug.{groups.m2m_reverse_name()} = g.id WHERE ug.{groups.m2m_column_name()} = %s)"
    )


class StepRead(NamedTuple):
    steps: list[BatchStep]
    roles: frozenset[str]  # of the person acting
    others_open: bool | None  # whether a step other than the one read is not done yet (None: not asked)


# Open steps come from the partial index batchstep_open_idx (one entry or two, not every
# step the batch has done). Its condition is written as the index's own, a literal rather
# than a parameter, or SQLite would not use the index.
_OTHERS_OPEN = (
    f"EXISTS (SELECT 1 FROM {BatchStep._meta.db_table} o "  # noqa: S608
    "WHERE o.batch_id = s.batch_id AND NOT (o.state = 'done') AND o.id <> s.id)"
)


def steps_sql(where: str, *, others_open: bool) -> str:
    """The step read: the steps' columns, the person's roles and, if asked, whether others are open."""
    return _steps_sql(connection.vendor, where, others_open)


@functools.cache
def _steps_sql(vendor: str, where: str, others_open: bool) -> str:
    extra = f", {_OTHERS_OPEN}" if others_open else ""
    return (
        f"SELECT {_steps.columns('s')}, {_roles_sql()}{extra} FROM {BatchStep._meta.db_table} s "  # noqa: S608
        f"WHERE {where} ORDER BY s.seq"
    )


def steps_and_roles(
    batch: Batch, keys: Sequence[str] | None, user_id: int | None, *, others_open: bool = False
) -> StepRead:
    """The batch's steps named ``keys`` (all, for None) in order and the roles of ``user_id``, in one statement.

    With ``others_open`` (one key), also whether any other step of the batch is
    not done yet: so a completion knows whether it is the batch's last without
    a statement of its own. Nothing else changes a step while the batch is
    locked, so the answer still holds when the step itself is done.

    Read after :func:`lock_batch`, in a statement of its own: on PostgreSQL a
    statement sees what was committed when it began, so only a read that
    starts once the lock is granted sees what the lock's previous holder wrote.
    """
    where = "s.batch_id = %s"
    params: list[Any] = [user_id, batch.pk]
    if keys is not None:
        if not keys:
            return StepRead([], frozenset(), None)
        where += f" AND s.key IN ({', '.join(['%s'] * len(keys))})"
        params.extend(keys)
    with connection.cursor() as cursor:
        cursor.execute(steps_sql(where, others_open=others_open), params)
        rows = cursor.fetchall()
    steps = []
    for row in rows:
        step = _steps.instance(row)
        step.batch = batch  # the locked instance: no second read of the batch
        steps.append(step)
    width = len(_steps.fields)
    roles = frozenset(json.loads(rows[0][width]) if rows and rows[0][width] else ())
    return StepRead(steps, roles, bool(rows[0][width + 1]) if others_open and rows else None)


def open_steps_remain(batch: Batch) -> bool:
    """Whether any step of ``batch`` is not done yet (from the partial index, as above)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {BatchStep._meta.db_table} WHERE batch_id = %s AND NOT (state = 'done') LIMIT 1",  # noqa: S608
            [batch.pk],
        )
        return cursor.fetchone() is not None


@functools.cache
def _product_sql(vendor: str) -> str:
    return (
        f"SELECT p.name FROM {MasterRecipe._meta.db_table} r JOIN {Product._meta.db_table} p "  # noqa: S608
        "ON p.id = r.product_id WHERE r.id = %s"
    )


def product_name(batch: Batch) -> str:
    """The name of the product ``batch`` makes (one statement; through the ORM it was two)."""
    with connection.cursor() as cursor:
        cursor.execute(_product_sql(connection.vendor), [batch.recipe_id])
        return str(cursor.fetchone()[0])

"""Appending to the hash chain.

Appends must be serialised, or two writers would both chain onto the same
predecessor. On PostgreSQL a transaction-scoped advisory lock does that: it is
held until commit, so ids (taken from the sequence while the lock is held) grow
in commit order and no entry can point at a predecessor that later rolls
back. SQLite needs nothing extra: every write transaction is BEGIN IMMEDIATE
and so already holds the database's single write lock.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction

from batchline.rules import hashchain

from .models import AuditEntry

# Any constant will do; it only has to be the same in every process.
_CHAIN_LOCK_KEY = 0x6261_7463_686C  # "batchl"


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def _head_hash() -> str:
    last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
    return last or hashchain.GENESIS


def in_action_transaction() -> bool:
    """Whether an ``atomic()`` opened by application code is active.

    The test suite wraps each test in its own atomic block (marked
    ``_from_testcase`` by Django); it does not count as the action's
    transaction, so the guards below behave in tests as in production.
    """
    conn = transaction.get_connection()
    return any(not getattr(block, "_from_testcase", False) for block in conn.atomic_blocks)


def append(content: hashchain.EntryContent, *, at: dt.datetime) -> AuditEntry:
    if not in_action_transaction():
        raise RuntimeError("audit entries are written inside the transaction of the change they record")
    _lock_chain()
    prev = _head_hash()
    entry = AuditEntry(
        at=at,
        actor_id=content.actor_id,
        actor_username=content.actor_username,
        actor_name=content.actor_name,
        action=content.action,
        record_type=content.record_type,
        record_id=content.record_id,
        changes=content.changes,
        reason=content.reason,
        via=content.via,
        prev_hash=prev,
        hash=hashchain.entry_hash(prev, content),
    )
    entry.save(force_insert=True)
    return entry

"""Appending to the hash chain: the hot path of every audited write.

Appends must be serialised, or two writers would both chain onto the same
predecessor. On PostgreSQL, ``batchline_chain_head()`` takes a
transaction-scoped advisory lock and then reads the last entry; being a
VOLATILE function, its read takes a fresh snapshot after the lock is granted,
so it sees the entry the previous holder committed. The lock is held until
commit, so ids (taken from the sequence while it is held) grow in commit order
and no entry can point at a predecessor that later rolls back. SQLite needs
nothing extra: every write transaction is BEGIN IMMEDIATE and so already holds
the database's single write lock.

The two statements are written by hand rather than through the ORM: this
module is the only writer of the table, and the ORM's per-query overhead was
over half the cost of an audited write (see docs/performance.md).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from django.db import connection, transaction

from batchline.rules import hashchain

# Any constant will do; it only has to be the same in every process.
CHAIN_LOCK_KEY = 0x6261_7463_686C  # "batchl"

HEAD_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_chain_head() RETURNS varchar
LANGUAGE plpgsql VOLATILE AS $$
DECLARE head varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(CHAIN_LOCK_KEY);
    SELECT hash INTO head FROM audit_auditentry ORDER BY id DESC LIMIT 1;
    RETURN head;
END
$$;
""".replace("CHAIN_LOCK_KEY", str(CHAIN_LOCK_KEY))

_COLUMNS = (
    "at",
    "actor_id",
    "actor_username",
    "actor_name",
    "action",
    "record_type",
    "record_id",
    "changes",
    "reason",
    "via",
    "prev_hash",
    "hash",
)
_INSERT = f"INSERT INTO audit_auditentry ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"  # noqa: S608


def in_action_transaction() -> bool:
    """Whether an ``atomic()`` opened by application code is active.

    The test suite wraps each test in its own atomic block (marked
    ``_from_testcase`` by Django); it does not count as the action's
    transaction, so the guards behave in tests as in production.
    """
    conn = transaction.get_connection()
    return any(not getattr(block, "_from_testcase", False) for block in conn.atomic_blocks)


class Appended(NamedTuple):
    id: int
    hash: str


def append(content: hashchain.EntryContent, *, at: dt.datetime) -> Appended:
    if not in_action_transaction():
        raise RuntimeError("audit entries are written inside the transaction of the change they record")
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("SELECT batchline_chain_head()")
        else:
            cursor.execute("SELECT hash FROM audit_auditentry ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        prev = (row[0] if row else None) or hashchain.GENESIS
        digest = hashchain.entry_hash(prev, content)
        values = [connection.ops.adapt_datetimefield_value(at), *content.fields()[1:], prev, digest]
        if postgres:
            cursor.execute(_INSERT + " RETURNING id", values)
            entry_id = cursor.fetchone()[0]
        else:
            cursor.execute(_INSERT, values)
            entry_id = cursor.lastrowid
    return Appended(entry_id, digest)

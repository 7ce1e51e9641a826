"""Appending to the hash chain: the hot path of every audited write.

Appends must be serialised, or two writers would both chain onto the same
predecessor.

- PostgreSQL: ``batchline_audit_append()`` does the whole append in one round
  trip. It takes a transaction-scoped advisory lock, reads the last hash
  (being VOLATILE, that read takes a fresh snapshot after the lock is
  granted, so it sees what the previous holder committed), links the new
  entry's content digest to it and inserts the row. The lock is held until
  commit, so ids grow in commit order and nobody chains onto an entry that
  later rolls back.
- SQLite: every write transaction is BEGIN IMMEDIATE and so already holds the
  database's single write lock; the head is read and the link computed here.

The content digest is always computed in Python (``rules/hashchain.py``); only
the link step, sha256(prev_hash || digest), runs in PostgreSQL, and the test
suite's ``audit verify`` runs on both databases hold them to one result. The
statements are written by hand rather than through the ORM: this module is
the only writer of the table, and the ORM's overhead was over half the cost
of an audited write (docs/performance.md).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from django.db import connection, transaction

from batchline.rules import hashchain

# Any constant will do; it only has to be the same in every process.
CHAIN_LOCK_KEY = 0x6261_7463_686C  # "batchl"

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
)

APPEND_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_audit_append(
    p_at timestamptz, p_actor_id bigint, p_actor_username varchar, p_actor_name varchar,
    p_action varchar, p_record_type varchar, p_record_id varchar, p_changes text,
    p_reason text, p_via varchar, p_digest varchar,
    OUT entry_id bigint, OUT entry_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE prev varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(CHAIN_LOCK_KEY);
    SELECT hash INTO prev FROM audit_auditentry ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    entry_hash := encode(sha256(convert_to(prev || p_digest, 'SQL_ASCII')), 'hex');
    INSERT INTO audit_auditentry (at, actor_id, actor_username, actor_name, action, record_type,
                                  record_id, changes, reason, via, prev_hash, hash)
    VALUES (p_at, p_actor_id, p_actor_username, p_actor_name, p_action, p_record_type,
            p_record_id, p_changes, p_reason, p_via, prev, entry_hash)
    RETURNING id INTO entry_id;
END
$$;
""".replace("CHAIN_LOCK_KEY", str(CHAIN_LOCK_KEY))

_PG_APPEND = (
    "SELECT entry_id, entry_hash FROM batchline_audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_SQLITE_INSERT = (
    f"INSERT INTO audit_auditentry ({', '.join(_COLUMNS)}, prev_hash, hash) "  # noqa: S608 (constants only)
    f"VALUES ({', '.join(['%s'] * (len(_COLUMNS) + 2))})"
)


class Appended(NamedTuple):
    id: int
    hash: str


def in_action_transaction() -> bool:
    """Whether an ``atomic()`` opened by application code is active.

    The test suite wraps each test in its own atomic block (marked
    ``_from_testcase`` by Django); it does not count as the action's
    transaction, so the guards behave in tests as in production.
    """
    conn = transaction.get_connection()
    return any(not getattr(block, "_from_testcase", False) for block in conn.atomic_blocks)


def append(content: hashchain.EntryContent, *, at: dt.datetime) -> Appended:
    if not in_action_transaction():
        raise RuntimeError("audit entries are written inside the transaction of the change they record")
    fields = content.fields()
    digest = hashchain.content_digest(fields)
    values = [connection.ops.adapt_datetimefield_value(at), *fields[1:]]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_PG_APPEND, [*values, digest])
            entry_id, entry_hash = cursor.fetchone()
            return Appended(entry_id, entry_hash)
        cursor.execute("SELECT hash FROM audit_auditentry ORDER BY id DESC LIMIT 1")
        row = cursor.fetchone()
        prev = row[0] if row else hashchain.GENESIS
        entry_hash = hashchain.link(prev, digest)
        cursor.execute(_SQLITE_INSERT, [*values, prev, entry_hash])
        return Appended(cursor.lastrowid, entry_hash)

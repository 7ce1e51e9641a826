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

Several entries of one action can be appended together (:func:`together`):
the same chain, one entry after another in the order they were made, written
in one round trip at the end of the block instead of one each. On PostgreSQL
``batchline_audit_append_many()`` takes the lock once and links each entry to
the one before; the chain lock is then held from that call to the commit
rather than from the action's first write, so other writers wait only for
the append and the commit, not for the rest of the action.

A savepoint inside the block keeps working: the entries made in it are
appended with the others if it is released and dropped if it is rolled back,
as its rows are. Django forgets the ``on_commit`` callbacks registered inside
a savepoint that rolls back; each such entry registers a marker there, and an
entry whose marker is gone at the end of the block is not appended.

The content digest is always computed in Python (``rules/hashchain.py``); only
the link step, sha256(prev_hash || digest), runs in PostgreSQL, and the test
suite's ``audit verify`` runs on both databases hold them to one result. The
statements are written by hand rather than through the ORM: this module is
the only writer of the table, and the ORM's overhead was over half the cost
of an audited write (docs/performance.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

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

# The same append for several entries of one transaction, linked one after another in
# array order: the lock is taken and the head read once.
APPEND_MANY_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_audit_append_many(
    p_at timestamptz[], p_actor_id bigint[], p_actor_username varchar[], p_actor_name varchar[],
    p_action varchar[], p_record_type varchar[], p_record_id varchar[], p_changes text[],
    p_reason text[], p_via varchar[], p_digest varchar[])
RETURNS TABLE (entry_id bigint, entry_hash varchar)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE prev varchar;
BEGIN
    PERFORM pg_advisory_xact_lock(CHAIN_LOCK_KEY);
    SELECT hash INTO prev FROM audit_auditentry ORDER BY id DESC LIMIT 1;
    prev := coalesce(prev, repeat('0', 64));
    FOR i IN 1 .. coalesce(array_length(p_digest, 1), 0) LOOP
        entry_hash := encode(sha256(convert_to(prev || p_digest[i], 'SQL_ASCII')), 'hex');
        INSERT INTO audit_auditentry (at, actor_id, actor_username, actor_name, action, record_type,
                                      record_id, changes, reason, via, prev_hash, hash)
        VALUES (p_at[i], p_actor_id[i], p_actor_username[i], p_actor_name[i], p_action[i],
                p_record_type[i], p_record_id[i], p_changes[i], p_reason[i], p_via[i], prev, entry_hash)
        RETURNING id INTO entry_id;
        prev := entry_hash;
        RETURN NEXT;
    END LOOP;
END
$$;
""".replace("CHAIN_LOCK_KEY", str(CHAIN_LOCK_KEY))

_PG_APPEND = (
    "SELECT entry_id, entry_hash FROM batchline_audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_PG_APPEND_MANY = (
    "SELECT entry_id, entry_hash FROM batchline_audit_append_many(%s::timestamptz[], %s::bigint[], "
    "%s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], %s::text[], %s::text[], "
    "%s::varchar[], %s::varchar[])"
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


class _Marker:
    """Registered with ``on_commit`` for an entry made inside a savepoint; gone if the savepoint rolls back."""

    __slots__ = ()

    def __call__(self) -> None:
        pass


@dataclass
class _Pending:
    """Entries made inside :func:`together`, at the depth of atomic blocks where it began.

    Each entry made inside a savepoint opened in the block carries its marker.
    """

    depth: int
    entries: list[tuple[hashchain.EntryContent, dt.datetime, _Marker | None]] = field(default_factory=list)

    def kept(self, conn: Any) -> list[tuple[hashchain.EntryContent, dt.datetime]]:
        """The entries whose savepoints (if any) were not rolled back, in the order made."""
        if any(marker is not None for _, _, marker in self.entries):
            alive = {id(func) for _, func, _ in conn.run_on_commit}
            return [(c, at) for c, at, m in self.entries if m is None or id(m) in alive]
        return [(c, at) for c, at, _ in self.entries]


_PENDING = "_batchline_audit_pending"


def append(content: hashchain.EntryContent, *, at: dt.datetime) -> Appended | None:
    """Append one entry now, or, inside :func:`together`, at the end of the block (then None)."""
    if not in_action_transaction():
        raise RuntimeError("audit entries are written inside the transaction of the change they record")
    conn = transaction.get_connection()
    pending: _Pending | None = getattr(conn, _PENDING, None)
    if pending is not None:
        marker = None
        if len(conn.atomic_blocks) > pending.depth:
            # Inside an atomic block (a savepoint) opened in the block: the entry goes if it rolls back.
            marker = _Marker()
            transaction.on_commit(marker)
        pending.entries.append((content, at, marker))
        return None
    return _write([(content, at)])


@contextmanager
def together() -> Iterator[None]:
    """Append the entries made in this block in one call at its end, chained in the order made.

    Runs inside the action's transaction, so the entries still commit or roll
    back with the changes they record. Should the block fail part-way, the
    entries of what it already wrote are appended before the exception goes on
    (a caller that catches it and commits commits them too); if even that
    fails, the transaction is marked to roll back, so no change commits
    without its entry. The entries made in a savepoint opened inside the block
    are appended if it was released and not if it was rolled back, like its
    rows.
    """
    conn = transaction.get_connection()
    if getattr(conn, _PENDING, None) is not None:  # an enclosing block appends them
        yield
        return
    if not in_action_transaction():
        raise RuntimeError("audit entries are written inside the transaction of the change they record")
    pending = _Pending(depth=len(conn.atomic_blocks))
    setattr(conn, _PENDING, pending)
    try:
        yield
    except BaseException:
        setattr(conn, _PENDING, None)
        try:
            _write(pending.kept(conn))
        except Exception:
            transaction.set_rollback(True)
        raise
    setattr(conn, _PENDING, None)
    _write(pending.kept(conn))


def _write(entries: Sequence[tuple[hashchain.EntryContent, dt.datetime]]) -> Appended | None:
    """Append ``entries`` in order; the last one appended, which is the chain's head now."""
    if not entries:
        return None
    rows: list[list[Any]] = []
    digests: list[str] = []
    for content, at in entries:
        fields = content.fields()
        rows.append([connection.ops.adapt_datetimefield_value(at), *fields[1:]])
        digests.append(hashchain.content_digest(fields))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if len(rows) == 1:
                cursor.execute(_PG_APPEND, [*rows[0], digests[0]])
            else:
                columns = [list(column) for column in zip(*rows, strict=True)]
                cursor.execute(_PG_APPEND_MANY, [*columns, digests])
            entry_id, entry_hash = cursor.fetchall()[-1]
            return Appended(entry_id, entry_hash)
        # SQLite: BEGIN IMMEDIATE already holds the database's write lock.
        cursor.execute("SELECT hash FROM audit_auditentry ORDER BY id DESC LIMIT 1")
        head = cursor.fetchone()
        prev = head[0] if head else hashchain.GENESIS
        linked = []
        for values, digest in zip(rows, digests, strict=True):
            entry_hash = hashchain.link(prev, digest)
            linked.append([*values, prev, entry_hash])
            prev = entry_hash
        if len(linked) > 1:
            cursor.executemany(_SQLITE_INSERT, linked[:-1])
        cursor.execute(_SQLITE_INSERT, linked[-1])
        return Appended(cursor.lastrowid, prev)

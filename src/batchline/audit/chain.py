"""Appending to the hash chains: the hot path of every audited write.

The trail is ``CHAINS`` hash chains side by side, joined by the signed
checkpoints (``audit/checkpoints.py``), which record every chain's head. Each
entry has its chain and its position there (``seq``, gapless from 1), so an
entry removed from the middle or the end leaves a hole verification names.
One chain would serialise every audited write of the plant behind one lock;
with several, writers append in parallel (docs/performance.md has the
figures). All entries of one transaction go to one chain, one after another.

- PostgreSQL: ``batchline_audit_append()`` does the whole append in one round
  trip. On a transaction's first append it takes the first head row in
  ``audit_auditchain`` that no other transaction holds (``FOR UPDATE SKIP
  LOCKED``; when all are held it waits for one) and remembers it in a
  transaction-local setting; later appends of the transaction lock the same
  row again, which they already hold. Under the row lock it links the new
  entry's content digest to the head, inserts the row with the next position
  and moves the head. The lock is held until commit, so nobody chains onto an
  entry that later rolls back, and positions on a chain grow in commit order.
- SQLite: every write transaction is BEGIN IMMEDIATE and so already holds the
  database's single write lock; there is one chain (0), its head is read from
  the entries through the (chain, seq) index and the link computed here.

Several entries of one action can be appended together (:func:`together`):
the same chain, one entry after another in the order they were made, written
in one round trip at the end of the block instead of one each. On PostgreSQL
``batchline_audit_append_many()`` takes the head once and links each entry to
the one before; the head is then held from that call to the commit rather
than from the action's first write, so other writers of that chain wait only
for the append and the commit, not for the rest of the action.

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

# More chains than writers that append at the same moment: a writer that finds
# every head held waits. Changing it needs a migration adding head rows.
CHAINS = 16

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

# The chain this transaction appends to, taken on its first append and held until it ends.
_TAKE_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_audit_chain_take() RETURNS smallint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE taken text; c smallint;
BEGIN
    taken := current_setting('batchline.audit_chain', true);
    IF taken IS NOT NULL AND taken <> '' THEN
        RETURN taken::smallint;
    END IF;
    SELECT id INTO c FROM audit_auditchain ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF c IS NULL THEN  -- every head is held: wait for one, spread by backend
        SELECT id INTO c FROM audit_auditchain
        WHERE id = pg_backend_pid() % (SELECT count(*) FROM audit_auditchain) FOR UPDATE;
    END IF;
    IF c IS NULL THEN
        RAISE EXCEPTION 'audit_auditchain has no head rows: run migrate';
    END IF;
    PERFORM set_config('batchline.audit_chain', c::text, true);
    RETURN c;
END
$$;
"""

_APPEND_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_audit_append(
    p_at timestamptz, p_actor_id bigint, p_actor_username varchar, p_actor_name varchar,
    p_action varchar, p_record_type varchar, p_record_id varchar, p_changes text,
    p_reason text, p_via varchar, p_digest varchar,
    OUT entry_id bigint, OUT entry_hash varchar, OUT entry_chain smallint, OUT entry_seq bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE prev varchar;
BEGIN
    entry_chain := batchline_audit_chain_take();
    SELECT seq + 1, hash INTO entry_seq, prev FROM audit_auditchain WHERE id = entry_chain FOR UPDATE;
    entry_hash := encode(sha256(convert_to(prev || p_digest, 'SQL_ASCII')), 'hex');
    INSERT INTO audit_auditentry (at, actor_id, actor_username, actor_name, action, record_type,
                                  record_id, changes, reason, via, chain, seq, prev_hash, hash)
    VALUES (p_at, p_actor_id, p_actor_username, p_actor_name, p_action, p_record_type,
            p_record_id, p_changes, p_reason, p_via, entry_chain, entry_seq, prev, entry_hash)
    RETURNING id INTO entry_id;
    UPDATE audit_auditchain SET seq = entry_seq, hash = entry_hash WHERE id = entry_chain;
END
$$;
"""

# The same append for several entries of one transaction, linked one after another in
# array order: the head is taken and read once.
_APPEND_MANY_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION batchline_audit_append_many(
    p_at timestamptz[], p_actor_id bigint[], p_actor_username varchar[], p_actor_name varchar[],
    p_action varchar[], p_record_type varchar[], p_record_id varchar[], p_changes text[],
    p_reason text[], p_via varchar[], p_digest varchar[])
RETURNS TABLE (entry_id bigint, entry_hash varchar, entry_chain smallint, entry_seq bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE prev varchar;
BEGIN
    entry_chain := batchline_audit_chain_take();
    SELECT seq, hash INTO entry_seq, prev FROM audit_auditchain WHERE id = entry_chain FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_digest, 1), 0) LOOP
        entry_seq := entry_seq + 1;
        entry_hash := encode(sha256(convert_to(prev || p_digest[i], 'SQL_ASCII')), 'hex');
        INSERT INTO audit_auditentry (at, actor_id, actor_username, actor_name, action, record_type,
                                      record_id, changes, reason, via, chain, seq, prev_hash, hash)
        VALUES (p_at[i], p_actor_id[i], p_actor_username[i], p_actor_name[i], p_action[i],
                p_record_type[i], p_record_id[i], p_changes[i], p_reason[i], p_via[i],
                entry_chain, entry_seq, prev, entry_hash)
        RETURNING id INTO entry_id;
        prev := entry_hash;
        RETURN NEXT;
    END LOOP;
    UPDATE audit_auditchain SET seq = entry_seq, hash = prev WHERE id = entry_chain;
END
$$;
"""

# Installed by migration audit 0005; a later change to a function needs a migration that reinstalls it.
FUNCTIONS_SQL = (_TAKE_FUNCTION_SQL, _APPEND_FUNCTION_SQL, _APPEND_MANY_FUNCTION_SQL)

_PG_APPEND = (
    "SELECT entry_id, entry_hash, entry_chain, entry_seq "
    "FROM batchline_audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_PG_APPEND_MANY = (
    "SELECT entry_id, entry_hash, entry_chain, entry_seq FROM batchline_audit_append_many("
    "%s::timestamptz[], %s::bigint[], %s::varchar[], %s::varchar[], %s::varchar[], %s::varchar[], "
    "%s::varchar[], %s::text[], %s::text[], %s::varchar[], %s::varchar[])"
)
_SQLITE_INSERT = (
    f"INSERT INTO audit_auditentry ({', '.join(_COLUMNS)}, chain, seq, prev_hash, hash) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * (len(_COLUMNS) + 4))})"
)


class Appended(NamedTuple):
    id: int
    hash: str
    chain: int
    seq: int


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
            return Appended(*cursor.fetchall()[-1])
        # SQLite: BEGIN IMMEDIATE already holds the database's write lock; one chain.
        cursor.execute("SELECT seq, hash FROM audit_auditentry WHERE chain = 0 ORDER BY seq DESC LIMIT 1")
        seq, prev = cursor.fetchone() or (0, hashchain.GENESIS)
        linked = []
        for values, digest in zip(rows, digests, strict=True):
            seq += 1
            entry_hash = hashchain.link(prev, digest)
            linked.append([*values, 0, seq, prev, entry_hash])
            prev = entry_hash
        if len(linked) > 1:
            cursor.executemany(_SQLITE_INSERT, linked[:-1])
        cursor.execute(_SQLITE_INSERT, linked[-1])
        return Appended(cursor.lastrowid, prev, 0, seq)

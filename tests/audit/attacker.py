"""What someone with write access to the database can do, done with raw SQL behind the application.

These helpers play an attacker who has dropped the append-only triggers: they
edit and delete rows and then recompute every hash of a chain, exactly as a
careful forger would, so the tests can show which control still catches it.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from batchline.audit import verify as audit_verify
from batchline.rules import hashchain


def sql(statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchall() if cursor.description else []


def rehash(*, renumber: bool = True) -> None:
    """Recompute every chain's links and hashes (and close the holes in its positions), heads included."""
    rows = list(audit_verify._rows())
    heads: dict[int, tuple[int, str]] = {}
    for row in rows:
        entry_id, chain = row[0], row[11]
        seq, prev = heads.get(chain, (0, hashchain.GENESIS))
        seq = seq + 1 if renumber else row[12]
        fields = (audit_verify._utc_text(row[1]), *row[2:11])
        new_hash = hashchain.entry_hash(prev, fields)  # type: ignore[arg-type]
        sql(
            "UPDATE audit_auditentry SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [-entry_id, prev, new_hash, entry_id],  # negative first: (chain, seq) stays unique meanwhile
        )
        heads[chain] = (seq, new_hash)
        rows_seq = seq
        sql("UPDATE audit_auditentry SET seq = %s WHERE id = %s", [rows_seq, entry_id])
    if connection.vendor == "postgresql":
        for chain, (seq, hash_) in heads.items():
            sql("UPDATE audit_auditchain SET seq = %s, hash = %s WHERE id = %s", [seq, hash_, chain])


def delete_entries_after(entry_id: int) -> None:
    """Cut off the newest entries and set the heads back, as if they had never been written."""
    sql("DELETE FROM audit_auditentry WHERE id > %s", [entry_id])
    if connection.vendor == "postgresql":
        for (chain,) in sql("SELECT id FROM audit_auditchain"):
            head = sql(
                "SELECT seq, hash FROM audit_auditentry WHERE chain = %s ORDER BY seq DESC LIMIT 1", [chain]
            )
            seq, hash_ = head[0] if head else (0, hashchain.GENESIS)
            sql("UPDATE audit_auditchain SET seq = %s, hash = %s WHERE id = %s", [seq, hash_, chain])

"""What the GMP tables hold, as counts and content hashes (Annex 11 §4.8, §7.1).

A backup's manifest, the verification after a restore and the data-migration
check all describe a database the same way: for every GMP table its row count,
a SHA-256 digest per column (over every row's key and value, in key order) and
one over the table; the data-migration check also keeps a digest per row, so a
changed row is named by its key.

The columns are read from the database, not from the models: before a
migration the code is already the new version but the tables are still the old
ones. Columns are taken in name order, because SQLite's table rebuilds move
them. Values are hashed as the database driver hands them back, so two
descriptions compare only on the same database vendor (a restore, a migration).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps

_FETCH = 5000

# Opens a DB-API cursor on the database described: Django's (a server-side cursor on
# PostgreSQL, so a million audit entries never sit in memory at once) or a plain
# sqlite3 connection's to a backup file.
OpenCursor = Callable[[], AbstractContextManager[Any]]

# Roles and what they may do: not audited models, but GMP meaning (who may sign).
_ROLE_TABLES = ("auth_group", "auth_group_permissions")


@dataclass(frozen=True, slots=True)
class GmpTable:
    name: str
    key: str  # the primary key's column


def gmp_tables() -> list[GmpTable]:
    """Every table holding GMP data: the audited models, the audit trail, the append-only tables,
    the links between audited records (a user's roles) and the roles themselves."""
    from batchline.audit.db import APPEND_ONLY_TABLES
    from batchline.audit.models import AuditedModel, AuditEntry

    found: dict[str, GmpTable] = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        gmp = (
            issubclass(model, AuditedModel)
            or model is AuditEntry
            or meta.db_table in APPEND_ONLY_TABLES
            or meta.db_table in _ROLE_TABLES
        )
        if not gmp and meta.auto_created:  # a many-to-many table between audited records
            gmp = any(
                f.related_model is not None
                and isinstance(f.related_model, type)
                and issubclass(f.related_model, AuditedModel)
                for f in meta.fields
                if f.is_relation
            )
        if gmp:
            found[meta.db_table] = GmpTable(meta.db_table, meta.pk.column)
    return sorted(found.values(), key=lambda t: t.name)


@dataclass
class TableContents:
    count: int = 0
    digest: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # column -> digest
    rows: dict[str, str] | None = None  # key -> digest of the row (data-migration check only)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count, "digest": self.digest, "columns": self.columns}
        if self.rows is not None:
            out["rows"] = self.rows
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableContents:
        return cls(
            count=int(data["count"]),
            digest=str(data["digest"]),
            columns=dict(data["columns"]),
            rows=dict(data["rows"]) if "rows" in data else None,
        )


def _canonical(value: Any) -> bytes:
    """A value as bytes, with its kind, so that NULL, '' and 0 all differ."""
    if value is None:
        return b"n"
    if isinstance(value, bool):
        return b"i1" if value else b"i0"
    if isinstance(value, int):
        return b"i%d" % value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"b" + bytes(value).hex().encode()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return b"t" + value.isoformat().encode()
    if isinstance(value, (dt.date, dt.time)):
        return b"t" + value.isoformat().encode()
    if isinstance(value, (float, Decimal)):
        return b"d" + str(value).encode()
    return b"s" + str(value).encode()


def _framed(value: Any) -> bytes:
    """The canonical bytes with their length in front, so that no two rows run together alike."""
    kind = type(value)
    if kind is str:
        data = b"s" + value.encode()
    elif value is None:
        return b"1:n"
    elif kind is int:
        data = b"i%d" % value
    else:
        data = _canonical(value)
    return b"%d:" % len(data) + data


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_columns(cursor: Any, vendor: str, table: str) -> list[str] | None:
    """The table's columns as the database has them, or None when there is no such table."""
    if vendor == "sqlite":
        cursor.execute(f"PRAGMA table_info({quote(table)})")
        names = [row[1] for row in cursor.fetchall()]
    else:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    return sorted(names) if names else None


def table_contents(
    open_cursor: OpenCursor,
    vendor: str,
    table: GmpTable,
    *,
    columns: Iterable[str] | None = None,
    rows: bool = False,
) -> TableContents | None:
    """Count and digests of one table, over ``columns`` (default: all it has); None if it is missing.

    ``columns`` limits the description to those a snapshot knew, so that a
    column a migration added leaves the digests of the others unchanged.
    """
    with open_cursor() as cursor:
        present = table_columns(cursor, vendor, table.name)
    if present is None:
        return None
    wanted = None if columns is None else set(columns)
    names = [c for c in present if wanted is None or c in wanted]
    if table.key not in present:
        raise ValueError(f"{table.name} has no column {table.key}")
    selected = ", ".join(quote(c) for c in [table.key, *names])
    sql = f"SELECT {selected} FROM {quote(table.name)} ORDER BY {quote(table.key)}"  # noqa: S608 (names from the catalogue)
    per_column = [hashlib.sha256() for _ in names]
    whole = hashlib.sha256()
    out = TableContents(rows={} if rows else None)
    with open_cursor() as cursor:
        cursor.execute(sql)
        # A batch at a time, column by column: the same bytes as row by row, in far fewer calls.
        while batch := cursor.fetchmany(_FETCH):
            out.count += len(batch)
            framed = [list(map(_framed, column)) for column in zip(*batch, strict=True)]
            keys = framed[0]
            for hasher, values in zip(per_column, framed[1:], strict=True):
                hasher.update(b"".join([k + v for k, v in zip(keys, values, strict=True)]))
            joined = [b"".join(parts) for parts in zip(*framed, strict=True)]
            whole.update(b"".join(joined))
            if out.rows is not None:
                for row, data in zip(batch, joined, strict=True):
                    out.rows[str(row[0])] = hashlib.sha256(data).hexdigest()[:32]
    out.columns = {name: hasher.hexdigest() for name, hasher in zip(names, per_column, strict=True)}
    out.digest = whole.hexdigest()
    return out


def database_contents(
    open_cursor: OpenCursor, vendor: str, *, rows: bool = False
) -> dict[str, TableContents]:
    """Every GMP table that exists in the database the cursors read."""
    described: dict[str, TableContents] = {}
    for table in gmp_tables():
        contents = table_contents(open_cursor, vendor, table, rows=rows)
        if contents is not None:
            described[table.name] = contents
    return described


def audit_head(cursor: Any) -> dict[str, Any]:
    """The audit trail's size, newest entry and the head (position, hash) of each of its chains."""
    cursor.execute("SELECT count(*), max(id) FROM audit_auditentry")
    count, last_id = cursor.fetchone()
    cursor.execute(
        "SELECT a.chain, a.seq, a.hash FROM audit_auditentry a WHERE a.seq = "
        "(SELECT max(b.seq) FROM audit_auditentry b WHERE b.chain = a.chain) ORDER BY a.chain"
    )
    heads = {str(chain): [int(seq), str(digest)] for chain, seq, digest in cursor.fetchall()}
    return {"count": int(count), "last_id": last_id, "heads": heads}


def compare_tables(expected: dict[str, TableContents], actual: dict[str, TableContents]) -> list[str]:
    """Differences between two descriptions in words, table by table and column by column."""
    problems: list[str] = []
    for name in sorted(expected.keys() | actual.keys()):
        was, now = expected.get(name), actual.get(name)
        if now is None:
            problems.append(f"table {name} is missing ({was.count if was else 0} rows expected)")
            continue
        if was is None:
            problems.append(f"table {name} ({now.count} rows) was not in the description")
            continue
        if was.count != now.count:
            problems.append(f"table {name} has {now.count} rows, {was.count} expected")
        for column in sorted(was.columns.keys() | now.columns.keys()):
            if column not in now.columns:
                problems.append(f"table {name}: column {column} is missing")
            elif column not in was.columns:
                problems.append(f"table {name}: column {column} was not in the description")
            elif was.columns[column] != now.columns[column]:
                problems.append(f"table {name}: the values of column {column} differ")
        if was.digest != now.digest and not any(p.startswith(f"table {name}") for p in problems):
            problems.append(f"table {name}: its content hash differs")
    return problems

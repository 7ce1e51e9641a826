"""The data-migration check: GMP data before and after a migration, compared (Annex 11 §4.8; A11-06).

``snapshot`` records, for every GMP table, its columns, row count, a digest per
column and one per row (by primary key). ``compare`` describes the tables
again over the columns the snapshot knew and reports, in words:

- differences (the migration changed the meaning or lost data): a table or a
  column gone, a row gone, a row whose values changed, named by key and, where
  the rows are the same set, by column;
- additions (expected of a migration, listed for the record): new tables, new
  columns, new rows.

Only differences make the check fail.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from .contents import GmpTable, TableContents, gmp_tables, table_columns, table_contents
from .services import applied_migrations, django_cursor

SNAPSHOT_FORMAT = "batchline-datacheck/1"
_SHOWN = 10  # keys named per finding


class DatacheckError(Exception):
    """A snapshot cannot be taken, read or compared; the message says why."""


def snapshot_take() -> dict[str, Any]:
    """Every GMP table's columns, count and digests (per column, per row), at one instant."""
    tables: dict[str, Any] = {}
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for table in gmp_tables():
            contents = table_contents(django_cursor, connection.vendor, table, rows=True)
            if contents is not None:
                tables[table.name] = {"key": table.key, **contents.as_json()}
        migrations = applied_migrations()
    return {
        "format": SNAPSHOT_FORMAT,
        "vendor": connection.vendor,
        "database": str(connection.settings_dict["NAME"]),
        "taken_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "migrations": migrations,
        "tables": tables,
    }


def snapshot_write(path: Path, snapshot: dict[str, Any]) -> None:
    if path.exists():
        raise DatacheckError(f"{path} exists: a snapshot never overwrites a file")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(snapshot, f, sort_keys=True, separators=(",", ":"))


def snapshot_read(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            snapshot = json.load(f)
    except FileNotFoundError:
        raise DatacheckError(f"no snapshot {path}") from None
    except (OSError, ValueError) as problem:
        raise DatacheckError(f"{path} is not a data-migration snapshot: {problem}") from None
    if not isinstance(snapshot, dict) or snapshot.get("format") != SNAPSHOT_FORMAT:
        raise DatacheckError(f"{path} is not a data-migration snapshot ({SNAPSHOT_FORMAT})")
    return snapshot


@dataclass
class Comparison:
    differences: list[str] = field(default_factory=list)
    additions: list[str] = field(default_factory=list)
    tables: int = 0
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences


def _keys(keys: list[str]) -> str:
    shown = ", ".join(sorted(keys, key=lambda k: (len(k), k))[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def snapshot_compare(before: dict[str, Any]) -> Comparison:
    """The database now against ``before``: differences (failures) and additions."""
    if before["vendor"] != connection.vendor:
        raise DatacheckError(
            f"the snapshot is of a {before['vendor']} database and this is {connection.vendor}: "
            "compare on the database the snapshot was taken of"
        )
    result = Comparison()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        known = {t.name: t for t in gmp_tables()}
        for name, data in sorted(before["tables"].items()):
            was = TableContents.from_json(data)
            table = known.get(name)
            with connection.cursor() as cursor:
                present = table_columns(cursor, connection.vendor, name)
            if present is None:
                result.differences.append(f"table {name} is gone ({was.count} rows before)")
                continue
            if table is None:  # no model any more, yet the table is there: read it by its old key
                table = GmpTable(name, data["key"])
            gone = sorted(set(was.columns) - set(present))
            for column in gone:
                result.differences.append(f"table {name}: column {column} is gone (it held {was.count} rows)")
            for column in sorted(set(present) - set(was.columns)):
                result.additions.append(f"table {name}: new column {column}")
            now = table_contents(
                django_cursor, connection.vendor, table, columns=set(was.columns) - set(gone), rows=True
            )
            assert now is not None and now.rows is not None and was.rows is not None
            result.tables += 1
            result.rows += now.count
            missing = [k for k in was.rows if k not in now.rows]
            added = [k for k in now.rows if k not in was.rows]
            changed = [k for k, digest in was.rows.items() if k in now.rows and now.rows[k] != digest]
            if missing:
                result.differences.append(
                    f"table {name}: {len(missing)} rows are gone (keys {_keys(missing)})"
                )
            if changed:
                if not missing and not added and not gone:
                    columns = sorted(c for c, d in was.columns.items() if now.columns.get(c) != d)
                    where = f" in column{'s' if len(columns) > 1 else ''} {', '.join(columns)}"
                else:
                    where = ""
                result.differences.append(
                    f"table {name}: {len(changed)} rows changed{where} (keys {_keys(changed)})"
                )
            if added:
                result.additions.append(f"table {name}: {len(added)} new rows (keys {_keys(added)})")
        for name in sorted(set(known) - set(before["tables"])):
            with connection.cursor() as cursor:
                if table_columns(cursor, connection.vendor, name) is not None:
                    result.additions.append(f"new table {name}")
    return result

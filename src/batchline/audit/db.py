"""Append-only enforcement in the database itself (DESIGN invariant 2).

Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the
append-only tables, so not even a bug in the application, the admin or a stray
``manage.py shell`` can rewrite history. Someone with the database owner's
rights can still drop a trigger; the signed checkpoints catch what is then
rewritten, and ``audit verify`` names the missing trigger (:func:`triggers_missing`).

On SQLite a migration that alters a column rebuilds the table and so drops its
triggers; such a migration must put them back, and the ``operations`` app's
check after every ``migrate`` refuses to leave a table without them.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import BaseDatabaseWrapper

APPEND_ONLY_TABLES = (
    "audit_auditentry",
    "signatures_signature",
    "execution_stepvalue",
    "execution_batchexception",
    "materials_ledgerentry",
    "materials_consumption",
    "materials_labelprint",
    "equipment_logbookentry",
    "execution_exceptiondisposition",
    "quality_deviationlink",
    "quality_reviewstage",
    "configuration_configversion",
    "audit_checkpoint",
    "execution_sample",
    "execution_samplelabelprint",
    "execution_labelissue",
    "execution_labelreconciliation",
    "execution_labelexamination",
    "lims_samplerequest",
    "lims_labresult",
    "execution_instrumentreading",
)

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION batchline_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def install_sql(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            _PG_FUNCTION,
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION batchline_refuse_change();",
            f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION batchline_refuse_change();",
        ]
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'append-only: UPDATE refused on {table}'); END;",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'append-only: DELETE refused on {table}'); END;",
        ]
    raise ImproperlyConfigured(f"Batchline runs on SQLite or PostgreSQL, not {vendor}")


def drop_sql(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
        ]
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update;",
        f"DROP TRIGGER IF EXISTS {table}_no_delete;",
    ]


def _run(connection: BaseDatabaseWrapper, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def triggers_install(connection: BaseDatabaseWrapper, tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> None:
    for table in tables:
        _run(connection, install_sql(connection.vendor, table))


def triggers_drop(connection: BaseDatabaseWrapper, tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> None:
    """Remove the protection. Only tests (to simulate an attacker) and test tear-down use it."""
    for table in tables:
        _run(connection, drop_sql(connection.vendor, table))


def _expected(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [f"{table}_append_only", f"{table}_no_truncate"]
    return [f"{table}_no_update", f"{table}_no_delete"]


def triggers_missing(
    connection: BaseDatabaseWrapper, tables: tuple[str, ...] = APPEND_ONLY_TABLES
) -> list[tuple[str, str]]:
    """(table, trigger) for every append-only trigger that is absent, disabled or no longer refuses."""
    missing = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT t.tgname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid "
                "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND p.proname = 'batchline_refuse_change' "
                "AND p.prosrc LIKE %s",
                ["%RAISE EXCEPTION%"],
            )
            present = {row[0] for row in cursor.fetchall()}
        else:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            present = {name for name, sql in cursor.fetchall() if "RAISE(ABORT" in (sql or "")}
    for table in tables:
        for trigger in _expected(connection.vendor, table):
            if trigger not in present:
                missing.append((table, trigger))
    return missing

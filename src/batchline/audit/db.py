"""Append-only enforcement in the database itself (DESIGN invariant 2).

Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the
append-only tables, so not even a bug in the application, the admin or a stray
``manage.py shell`` can rewrite history. Someone with the database owner's
rights can still drop a trigger; the hash chain is what catches that.
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

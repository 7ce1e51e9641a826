"""Django's ModelBackend, with the person and their permissions read in one hand-written statement.

Every request of a logged-in person loads them, and the stock backend does it
in three ORM queries (the user; permissions direct and through groups) whose
compilation cost more than the whole of a cached execution screen, and whose
round trips to PostgreSQL cost more again (docs/performance.md). Here one
statement reads the user row, through Django's raw queries so that the field
converters make it the same ``User`` the ORM would, together with the ids of
the permissions granted to the person directly or through their roles. The
ids are named from a table of all permissions kept per process: permission
rows are made by migrations and never change meaning, ids are never used
twice (sequences on PostgreSQL, AUTOINCREMENT on SQLite), and an id not in
the table reloads it. A test holds the result equal to Django's own answer for
every role.

What a person is granted is still read on every request and never cached
across requests, so taking a role away takes effect at the next click.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import backends
from django.contrib.auth.models import Group, Permission
from django.db import connection

from .models import User

_names: dict[int, str] = {}


def _granted(user_column: str) -> str:
    """The ids of the permissions granted to the user whose id is ``user_column``, one row each."""
    user_permissions = User.user_permissions.through._meta.db_table
    user_groups = User.groups.through._meta.db_table
    group_permissions = Group.permissions.through._meta.db_table
    return (
        f"SELECT up.permission_id AS pid FROM {user_permissions} up WHERE up.user_id = {user_column} "  # noqa: S608
        f"UNION ALL SELECT gp.permission_id FROM {group_permissions} gp "
        f"JOIN {user_groups} ug ON ug.group_id = gp.group_id WHERE ug.user_id = {user_column}"
    )


@cache
def _user_sql() -> str:
    """The user's row, and their permission ids as one comma-separated text column."""
    columns = ", ".join(f"u.{connection.ops.quote_name(f.column)}" for f in User._meta.concrete_fields)
    granted = _granted(f"u.{User._meta.pk.column}")
    if connection.vendor == "postgresql":
        ids = f"(SELECT string_agg(g.pid::text, ',') FROM ({granted}) g)"  # noqa: S608 (names only)
    else:
        ids = f"(SELECT group_concat(g.pid) FROM ({granted}) g)"  # noqa: S608 (names only)
    return (
        f"SELECT {columns}, {ids} AS batchline_permission_ids "  # noqa: S608 (names only)
        f"FROM {User._meta.db_table} u WHERE u.{User._meta.pk.column} = %s"
    )


@cache
def _granted_sql() -> str:
    return _granted("%s")


def forget_permission_names() -> None:
    global _names
    _names = {}


def permission_names(ids: set[int]) -> set[str]:
    """``app_label.codename`` of each permission id, from the per-process table."""
    global _names
    names = _names
    if not ids <= names.keys():
        rows = Permission.objects.values_list("id", "content_type__app_label", "codename")
        names = _names = {pk: f"{app_label}.{codename}" for pk, app_label, codename in rows}  # swapped whole
    return {names[i] for i in ids if i in names}


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        found = list(User.objects.raw(_user_sql(), [user_id]))
        if not found or not self.user_can_authenticate(found[0]):
            return None
        user = found[0]
        ids = user.batchline_permission_ids
        del user.batchline_permission_ids
        if not user.is_superuser:
            user._perm_cache = permission_names({int(i) for i in ids.split(",")} if ids else set())
        return user

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = self._read_all_permissions(user_obj)
        return user_obj._perm_cache

    @staticmethod
    def _read_all_permissions(user_obj: Any) -> set[str]:
        if user_obj.is_superuser:
            return {
                f"{app_label}.{codename}"
                for app_label, codename in Permission.objects.values_list(
                    "content_type__app_label", "codename"
                )
            }
        with connection.cursor() as cursor:
            cursor.execute(_granted_sql(), [user_obj.pk, user_obj.pk])
            ids = {row[0] for row in cursor.fetchall()}
        return permission_names(ids)

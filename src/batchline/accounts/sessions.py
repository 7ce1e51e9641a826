"""Django's database sessions, with the per-request read as one hand-written statement.

Every request of a logged-in person reads their session. Django's store reads
it through the ORM, whose query compilation was the largest single cost of a
cached execution screen (docs/performance.md); the statement below is the
same query (the key, and not yet expired on the server clock). Writing,
creating and deleting sessions are Django's own. Sessions stay server-side
and revocable: logging out or a lockout deletes the row and the next request
finds nothing.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connections, router
from django.utils import timezone


@cache
def _sql() -> str:
    table = Session._meta.db_table
    return f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s"  # noqa: S608


class SessionStore(db.SessionStore):
    def _get_session_from_db(self) -> Any:
        if self.session_key is None:
            return None
        connection = connections[router.db_for_read(self.model)]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(_sql(), [self.session_key, now])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return self.model(session_key=self.session_key, session_data=row[0])

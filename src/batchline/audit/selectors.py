"""Reads of the audit trail shared by the page, the CSV export and the API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .models import AuditEntry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    record_type: str = ""
    record_id: str = ""
    user: str = ""  # username
    action: str = ""
    since: dt.date | None = None  # site-local calendar days, inclusive
    until: dt.date | None = None

    def terms(self) -> list[tuple[str, str]]:
        """Each condition set, as (what, value): what an export names so its rows can be told apart."""
        return [
            (what, str(value))
            for what, value in (
                ("record type", self.record_type),
                ("record ID", self.record_id),
                ("user ID", self.user),
                ("action", self.action),
                ("from day", self.since),
                ("to day", self.until),
            )
            if value
        ]

    def text(self) -> str:
        """``record type = execution.batch; user ID = olga`` or ``none: every entry``."""
        return "; ".join(f"{what} = {value}" for what, value in self.terms()) or "none: every entry"


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min), timezone.get_current_timezone())


def audit_entries(f: AuditFilter) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.all()
    if f.record_type:
        qs = qs.filter(record_type=f.record_type)
    if f.record_id:
        qs = qs.filter(record_id=f.record_id)
    if f.user:
        qs = qs.filter(actor_username=f.user)
    if f.action:
        qs = qs.filter(action=f.action)
    if f.since:
        qs = qs.filter(at__gte=_local_midnight(f.since))
    if f.until:
        qs = qs.filter(at__lt=_local_midnight(f.until + dt.timedelta(days=1)))
    return qs.order_by("-id")


def record_types() -> list[str]:
    return list(AuditEntry.objects.order_by().values_list("record_type", flat=True).distinct())


def changes_of(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    """``[(field, old, new), ...]`` for display."""
    return [(name, old, new) for name, (old, new) in sorted(json.loads(entry.changes).items())]


CSV_HEADER = [
    "entry",
    "time (UTC)",
    "user ID",
    "username",
    "printed name",
    "action",
    "record type",
    "record ID",
    "field",
    "old value",
    "new value",
    "reason",
    "via",
    "hash",
    "previous hash",
]


def csv_rows(qs: QuerySet[AuditEntry], *, preamble: Sequence[list[str]] = ()) -> Iterator[list[str]]:
    """One row per changed field (one row for an event without fields), after ``preamble``'s rows."""
    yield from preamble
    yield CSV_HEADER
    for e in qs.iterator(chunk_size=2000):
        head = [
            str(e.pk),
            e.at.astimezone(dt.UTC).isoformat(),
            "" if e.actor_id is None else str(e.actor_id),
            e.actor_username,
            e.actor_name,
            e.action,
            e.record_type,
            e.record_id,
        ]
        tail = [e.reason, e.via, e.hash, e.prev_hash]
        fields = changes_of(e) or [("", None, None)]
        for name, old, new in fields:
            show = [
                name,
                "" if old is None else json.dumps(old, ensure_ascii=False),
                "" if new is None else json.dumps(new, ensure_ascii=False),
            ]
            yield head + show + tail


SECURITY_ACTIONS = (
    "login_failed",
    "signature_failed",
    "signature_refused",
    "lockout",
    "unlock",
    "session_timeout",
    "password_reset",
    "deactivate",
    "reactivate",
    "roles",
    "refused_after_release",  # an action attempted on a batch QA released or rejected
    "station_refused",  # an entry from a terminal that is no registered station (21 CFR 11.10(h))
)


def security_events(limit: int = 200) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(action__in=SECURITY_ACTIONS).order_by("-id")[:limit]

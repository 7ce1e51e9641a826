"""What the delivery log page reads: messages by destination and state, each with its attempts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, OuterRef, QuerySet, Subquery

from . import destinations as dests
from .models import Delivery, Message


@dataclass(frozen=True)
class LogFilter:
    destination: str = ""
    state: str = ""
    stream: str = ""  # the stream's name, or its beginning ("deviation:", "batch:PCM-0001")
    kind: str = ""

    def terms(self) -> list[tuple[str, str]]:
        return [
            (what, value)
            for what, value in (
                ("destination", self.destination),
                ("state", self.state),
                ("stream", self.stream),
                ("kind", self.kind),
            )
            if value
        ]


def messages(f: LogFilter) -> QuerySet[Message]:
    """The messages the filter selects, newest first, each with its last attempt's outcome."""
    last = Delivery.objects.filter(message=OuterRef("pk")).order_by("-id")
    qs = Message.objects.defer("body").annotate(
        last_error=Subquery(last.values("error")[:1]),
        last_status=Subquery(last.values("status")[:1]),
        last_at=Subquery(last.values("at")[:1]),
    )
    if f.destination:
        qs = qs.filter(destination=f.destination)
    if f.state in Message.State.values:
        qs = qs.filter(state=f.state)
    if f.stream:
        qs = qs.filter(stream__startswith=f.stream)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    return qs.order_by("-id")


def summary() -> list[dict[str, Any]]:
    """Per destination: where it goes (never a password) and its messages by state."""
    configured: dict[str, dests.Destination] = {}
    problems: dict[str, str] = {}
    for name, spec in getattr(settings, "OUTBOX_DESTINATIONS", {}).items():
        try:
            configured[name] = dests.parse(name, spec)
        except dests.DestinationError as exc:
            problems[name] = str(exc)

    def blank(name: str) -> dict[str, Any]:
        d = configured.get(name)
        return {
            "destination": name,
            "pending": 0,
            "delivered": 0,
            "failed": 0,
            "oldest_pending": None,
            "configured": d is not None,
            "target": d.shown if d else problems.get(name, "not configured: its messages wait"),
            "transport": d.type if d else "",
            "signed": bool(d and d.secret),
            "max_attempts": d.max_attempts if d else None,
        }

    rows = {name: blank(name) for name in sorted(set(configured) | set(problems))}
    counted = (
        Message.objects.order_by()
        .values("destination", "state")
        .annotate(n=Count("id"), oldest=Min("created_at"))
    )
    for row in counted:
        entry = rows.setdefault(row["destination"], blank(row["destination"]))
        entry[row["state"]] = row["n"]
        if row["state"] == Message.State.PENDING:
            entry["oldest_pending"] = row["oldest"]
    return [rows[name] for name in sorted(rows)]


def kinds() -> list[str]:
    return list(Message.objects.order_by("kind").values_list("kind", flat=True).distinct())


def message_with_attempts(pk: int) -> tuple[Message, list[Delivery], Message | None] | None:
    """A message, its attempts oldest first, and the earlier message of its stream that holds it back."""
    message = Message.objects.filter(pk=pk).first()
    if message is None:
        return None
    attempts = list(message.deliveries.order_by("id"))
    blocker = None
    if message.state == Message.State.PENDING:
        blocker = (
            Message.objects.filter(destination=message.destination, stream=message.stream, id__lt=message.pk)
            .exclude(state=Message.State.DELIVERED)
            .defer("body")
            .order_by("id")
            .first()
        )
    return message, attempts, blocker


def stream_messages(destination: str, stream: str) -> list[Message]:
    """A stream's messages in order, with their latest attempt (a deviation's page shows its QMS feed)."""
    last = Delivery.objects.filter(message=OuterRef("pk")).order_by("-id")
    return list(
        Message.objects.filter(destination=destination, stream=stream)
        .defer("body")
        .annotate(last_error=Subquery(last.values("error")[:1]), last_at=Subquery(last.values("at")[:1]))
        .order_by("id")
    )

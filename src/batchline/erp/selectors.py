"""What the engineers' page and the API read of the inbound messages: parked ones first, with their reasons."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet

from .handling import key_words
from .models import InboundMessage, MessageState


def messages(*, state: str = "") -> QuerySet[InboundMessage]:
    """Messages, newest first; parked ones oldest first (the first to expire on top)."""
    found = InboundMessage.objects.select_related("received_by").defer("body", "reply")
    if state:
        found = found.filter(state=state)
    if state == MessageState.PARKED:
        return found.order_by("parked_at", "id")
    return found.order_by("-received_at", "-id")


def expires_at(message: InboundMessage) -> dt.datetime | None:
    if message.state != MessageState.PARKED or message.parked_at is None:
        return None
    return message.parked_at + dt.timedelta(hours=settings.BATCHLINE_ERP_PARKED_HOURS)


def message_view(message: InboundMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "bodid": message.bodid,
        "transport": message.transport,
        "message": f"{message.verb}{message.noun}",
        "sender": message.sender,
        "received_by": message.received_by.get_username(),
        "received_at": message.received_at,
        "state": message.state,
        "state_label": message.get_state_display(),
        "code": message.code,
        "reason": message.reason,
        "waits_for": list(message.waits_for),
        "waits_for_words": [key_words(k) for k in message.waits_for],
        "parked_at": message.parked_at,
        "expires_at": expires_at(message),
        "settled_at": message.settled_at,
        "size": message.size,
        "body_sha256": message.body_sha256,
    }


def counts() -> dict[str, int]:
    """How many messages are in each state (one grouped statement)."""
    out = {s.value: 0 for s in MessageState if s != MessageState.RECEIVED}
    for row in InboundMessage.objects.order_by().values("state").annotate(n=Count("id")):
        out[row["state"]] = row["n"]
    return out

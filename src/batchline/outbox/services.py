"""Writing to the outbox; delivery is the worker's (outbox/delivery.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Message


def configured(destination: str) -> bool:
    return destination in getattr(settings, "OUTBOX_DESTINATIONS", {})


def enqueue(
    destination: str,
    *,
    stream: str,
    kind: str,
    body: str | dict[str, Any],
    content_type: str = "",
    key: str = "",
) -> Message | None:
    """The message, in the caller's transaction; nothing when the installation has no such destination.

    ``key`` is the idempotency key the receiver sees (a caller that can name the event, such as
    ``erp:PCM-0001:started``, should); by default the installation's source name, the destination
    and a random UUID.
    """
    if not configured(destination):
        return None
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("an outbox message is written in the transaction of the change it reports")
    if isinstance(body, dict):
        body = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        content_type = content_type or "application/json"
    now = timezone.now()
    message = Message.objects.create(
        destination=destination,
        stream=stream[:200],
        kind=kind,
        key=key or f"{settings.OUTBOX_SOURCE}:{destination}:{uuid.uuid4()}",
        content_type=content_type or "application/octet-stream",
        body=body,
        created_at=now,
        next_attempt_at=now,
    )
    return message

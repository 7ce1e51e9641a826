"""Deviations handed to an external QMS through the outbox's ``qms`` destination.

The payload (docs/qms.md) is the deviation as it stands after the event, with the event's name,
the signature's manifestation and a message id the QMS can use to drop duplicates (a delivery can
be retried after the QMS took it but before its answer arrived); the same id travels as the
message's idempotency key. Each deviation is one stream (``deviation:<number>``), so its events
reach the QMS in the order they happened.

The outbox (src/batchline/outbox/) writes the message in the transaction of the deviation's
change, delivers it right after commit and from the worker's rounds, retries it, signs it with
HMAC-SHA256 when a secret is configured and logs every attempt (/outbox/).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone

from batchline.outbox import delivery, selectors
from batchline.outbox import services as outbox
from batchline.outbox.models import Message

from .models import Deviation

FORMAT = "batchline.deviation/1"
DESTINATION = "qms"


def configured() -> bool:
    return outbox.configured(DESTINATION)


def stream_of(deviation: Deviation) -> str:
    return f"deviation:{deviation.number}"


def enqueue(deviation: Deviation, event: str, payload: dict[str, Any], manifestation: str) -> Message | None:
    """The deviation's event in the outbox, in the caller's transaction; sent once it commits."""
    if not configured():
        return None
    # Unique per event, the same on every retry; the site's prefix tells sites apart.
    message_id = f"{settings.QMS_SOURCE}:qms:{uuid.uuid4()}"
    body = {
        "format": FORMAT,
        "message_id": message_id,
        "event": event,
        "at": timezone.now().isoformat(),
        "signature": manifestation,
        "deviation": payload,
    }
    return outbox.enqueue(
        DESTINATION, stream=stream_of(deviation), kind=f"deviation.{event}", body=body, key=message_id
    )


def deliver_due() -> int:
    """Send the QMS's due messages now (the worker delivers every destination each round)."""
    return delivery.deliver_due(destinations=[DESTINATION])


def feed(deviation: Deviation) -> list[Message]:
    """The deviation's events sent or waiting for the QMS, oldest first, each with its last attempt."""
    return selectors.stream_messages(DESTINATION, stream_of(deviation))

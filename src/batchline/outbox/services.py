"""Writing to the outbox, and an engineer's retry of a failed message; delivery is outbox/delivery.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batchline.audit.services import Actor, ReasonRequired, audit_append
from batchline.rules.verdict import Refused

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
    _deliver_after_commit()
    return message


def _deliver_after_commit() -> None:
    if not settings.OUTBOX_DELIVER_ON_COMMIT:
        return
    # One delivery per transaction, however many messages it wrote. Django drops the callbacks of a
    # transaction that rolls back, so its own list is asked rather than a flag that could outlive it.
    if any(func is _kick for _savepoints, func, _robust in transaction.get_connection().run_on_commit):
        return
    transaction.on_commit(_kick)


def _kick() -> None:
    from .delivery import kick

    kick()


def message_retry(*, actor: Actor, message_id: int, reason: str) -> Message:
    """Send a failed message again: back to pending with its attempts counted anew, due at once.

    Locks the message. Only a failed message is retried (a pending one is on its way, a delivered
    one arrived); the reason is required and the audit trail holds who retried it, when and why
    (21 CFR 11.10(e)). Its earlier attempts stay in the delivery log. The stream it held back
    follows it once it is delivered.
    """
    if not reason.strip():
        raise ReasonRequired("Say why the message is sent again (what was put right at the destination).")
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        if message is None:
            raise Refused.because("OUTBOX_NO_SUCH_MESSAGE", f"There is no outbox message {message_id}.")
        if message.state != Message.State.FAILED:
            raise Refused.because(
                "OUTBOX_NOT_FAILED",
                f"Message {message.pk} is {message.get_state_display().lower()}: only a failed message is retried.",
            )
        before = message.attempts
        message.state = Message.State.PENDING
        message.attempts = 0
        message.next_attempt_at = timezone.now()
        message.lease = ""
        message.save(update_fields=["state", "attempts", "next_attempt_at", "lease"])
        # The stream it held back goes with it (outbox/delivery.py had them wait).
        Message.objects.filter(
            destination=message.destination,
            stream=message.stream,
            id__gt=message.pk,
            state=Message.State.PENDING,
            lease="",
        ).update(next_attempt_at=message.next_attempt_at)
        audit_append(
            actor=actor,
            action="outbox_retry",
            record_type="outbox.message",
            record_id=message.pk,
            changes={
                "state": [Message.State.FAILED.value, Message.State.PENDING.value],
                "attempts": [before, 0],
            },
            reason=reason,
        )
        if configured(message.destination):
            _deliver_after_commit()
    return message

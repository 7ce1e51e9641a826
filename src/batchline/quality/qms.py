"""Deviations handed to an external QMS: an outbox written with each change, delivered after commit.

The payload (docs/qms.md) is the deviation as it stands after the event, with
the event's name, the signature's manifestation and a message id the QMS can
use to drop duplicates (a delivery can be retried after the QMS took it but
before its answer arrived). The body is signed with HMAC-SHA256 when a secret
is configured (``X-Batchline-Signature: sha256=<hex>``).

Delivery never runs inside the transaction that made the change: the outbox
row commits with the deviation, and ``deliver_due`` sends it afterwards, from a
thread started on commit and from ``batchline qms deliver`` (run it every
minute, or with ``--loop``) for retries. A failed attempt waits 30 s, then 1,
2, 4… minutes (at most an hour); after ``QMS_MAX_ATTEMPTS`` it is marked failed
and shown on the deviation's page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from .models import Deviation, QmsDelivery, QmsMessage

FORMAT = "batchline.deviation/1"


def configured() -> bool:
    return bool(getattr(settings, "QMS_WEBHOOK_URL", ""))


def enqueue(
    deviation: Deviation, event: str, payload: dict[str, Any], manifestation: str
) -> QmsMessage | None:
    """The outbox row, in the caller's transaction; a delivery is started once that transaction commits."""
    if not configured():
        return None
    now = timezone.now()
    message = QmsMessage.objects.create(
        deviation=deviation, event=event, payload={}, created_at=now, next_attempt_at=now
    )
    message.payload = {
        "format": FORMAT,
        "message_id": f"{settings.QMS_SOURCE}:{message.pk}",
        "event": event,
        "at": now.isoformat(),
        "signature": manifestation,
        "deviation": payload,
    }
    message.save(update_fields=["payload"])
    transaction.on_commit(_deliver_in_background)
    return message


def _deliver_in_background() -> None:
    def run() -> None:
        try:
            deliver_due()
        finally:
            close_old_connections()

    threading.Thread(target=run, name="qms-delivery", daemon=True).start()


def body_of(message: QmsMessage) -> bytes:
    return json.dumps(message.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature_of(body: bytes) -> str | None:
    secret = getattr(settings, "QMS_WEBHOOK_SECRET", "")
    if not secret:
        return None
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _pause(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


def _post(url: str, body: bytes) -> tuple[int | None, str]:
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310 (the plant configures the URL)
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "Batchline-QMS/1")
    if sig := signature_of(body):
        request.add_header("X-Batchline-Signature", sig)
    try:
        with urllib.request.urlopen(request, timeout=settings.QMS_TIMEOUT_SECONDS) as response:  # noqa: S310
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason if isinstance(exc.reason, str) else str(exc)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))[:2000]


LEASE = dt.timedelta(minutes=2)


def _claim() -> QmsMessage | None:
    """Take the next due message for one attempt: it is leased (due again only after LEASE), so two
    deliverers never send it at once, and no transaction stays open while the QMS is asked."""
    with transaction.atomic():
        now = timezone.now()
        due = QmsMessage.objects.filter(state=QmsMessage.State.PENDING, next_attempt_at__lte=now).order_by(
            "id"
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        message = due.first()
        if message is not None:
            message.next_attempt_at = now + LEASE
            message.save(update_fields=["next_attempt_at"])
        return message


def deliver_due(*, limit: int = 100) -> int:
    """Send every due message once, oldest first; returns how many were delivered."""
    url = getattr(settings, "QMS_WEBHOOK_URL", "")
    if not url:
        return 0
    delivered = 0
    for _ in range(limit):
        message = _claim()
        if message is None:
            break
        body = body_of(message)
        started = time.perf_counter()
        status, error = _post(url, body)
        with transaction.atomic():
            now = timezone.now()
            QmsDelivery.objects.create(
                message=message,
                at=now,
                url=url[:500],
                status=status,
                error=error,
                milliseconds=int((time.perf_counter() - started) * 1000),
            )
            message.attempts += 1
            if status is not None and 200 <= status < 300:
                message.state, message.delivered_at = QmsMessage.State.DELIVERED, now
                delivered += 1
            elif message.attempts >= settings.QMS_MAX_ATTEMPTS:
                message.state = QmsMessage.State.FAILED
            else:
                message.next_attempt_at = now + _pause(message.attempts)
            message.save(update_fields=["attempts", "state", "delivered_at", "next_attempt_at"])
    return delivered
